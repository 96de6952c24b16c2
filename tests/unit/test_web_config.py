"""target=web's bad inputs and missing tools: one line each naming the key and the command that installs it,
exit 2, before training (no TensorFlow, no socket)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import assert_rejected_offline

BAD_WEB = [
    pytest.param(["target.browser=/nonexistent/chromium"], ["target.browser", "/nonexistent/chromium",
                                                            "apt-get install chromium"], id="no-browser"),
    pytest.param(["target.node=no-such-node"], ["target.node", "no-such-node", "apt-get install nodejs npm"],
                 id="no-node"),
    pytest.param(["target.node_modules=/nowhere"], ["target.node_modules", "scripts/web_setup.sh (npm ci)"],
                 id="no-npm-packages"),
    pytest.param(["target.converter=/nowhere"], ["target.converter", "scripts/web_setup.sh", "--no-deps"],
                 id="no-converter"),
    pytest.param(["target.quantize=int4"], ["target.quantize", "int4", "float16", "uint8", "uint16"],
                 id="unknown-quantization"),
    pytest.param(["target.backend=webgpu"], ["target.backend", "webgpu", "wasm", "cpu"], id="unknown-backend"),
    pytest.param(["target.parity_atol=-1"], ["target.parity_atol", "-1", ">= 0"], id="negative-tolerance"),
]


@pytest.mark.parametrize("overrides, words", BAD_WEB)
def test_bad_web_input_exits_2_before_training(workdir: Path, overrides: list[str], words: list[str]):
    assert_rejected_offline(["target=web", *overrides], words, workdir)
