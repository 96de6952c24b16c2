"""target=web's bad inputs and missing tools: one line each naming the key and the command that installs it,
exit 2, before training (no TensorFlow, no socket)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import assert_rejected_offline

BAD_WEB = [
    pytest.param(
        ["target.browser=/nonexistent/chromium"],
        ["target.browser", "/nonexistent/chromium", "apt-get install chromium"],
        id="no-browser",
    ),
    pytest.param(
        ["target.node=no-such-node"], ["target.node", "no-such-node", "apt-get install nodejs npm"], id="no-node"
    ),
    pytest.param(
        ["target.node_modules=/nowhere"], ["target.node_modules", "scripts/web_setup.sh (npm ci)"], id="no-npm-packages"
    ),
    pytest.param(
        ["target.converter=/nowhere"], ["target.converter", "scripts/web_setup.sh", "--no-deps"], id="no-converter"
    ),
    pytest.param(
        ["target.quantize=int4"], ["target.quantize", "int4", "float16", "uint8", "uint16"], id="unknown-quantization"
    ),
    pytest.param(["target.backend=webgpu"], ["target.backend", "webgpu", "wasm", "cpu"], id="unknown-backend"),
    pytest.param(["target.parity_atol=-1"], ["target.parity_atol", "-1", ">= 0"], id="negative-tolerance"),
    pytest.param(
        ["target.format=tflite", "target.quantization=dynamic"],
        ["target.quantization", "dynamic", "cannot load the dynamic-range ops", "FULLY_CONNECTED version 12"],
        id="tflite-dynamic-range",
    ),
    pytest.param(
        ["target.format=tflite", "target.quantize=uint8"],
        ["target.quantize", "uint8", "none with target.format=tflite"],
        id="tflite-with-quantize",
    ),
    pytest.param(
        ["target.quantization=int8"],
        ["target.quantization", "int8", "target.format=tflite"],
        id="graph-model-with-tflite-mode",
    ),
    pytest.param(["target.format=onnx"], ["target.format", "onnx", "graph_model", "tflite"], id="unknown-format"),
    pytest.param(
        ["target.serve=true", "target.port=70000"], ["target.port", "70000", "[0, 65535]"], id="port-out-of-range"
    ),
    pytest.param(
        ["target.serve=true", "target.host='my host'"], ["target.host", "an address to bind"], id="host-with-a-space"
    ),
]


@pytest.mark.parametrize("overrides, words", BAD_WEB)
def test_bad_web_input_exits_2_before_training(workdir: Path, overrides: list[str], words: list[str]):
    assert_rejected_offline(["target=web", *overrides], words, workdir)


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["serve_web.port=-1"], ["serve_web.port", "-1", "[0, 65535]"]),
        (["serve_web.duration_s=0"], ["serve_web.duration_s", "0", "> 0"]),
    ],
)
def test_bad_serve_web_input_exits_2(workdir: Path, overrides: list[str], words: list[str]):
    assert_rejected_offline(["job=serve_web", *overrides], words, workdir)
