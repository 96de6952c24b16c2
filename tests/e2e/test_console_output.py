"""A plain CPU run's console shows tfrun's lines and the epoch lines; TensorFlow's C++ start-up lines
(oneDNN, cuda drivers, cuInit) go to run.log only."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import BIN, command_env
from tfrun.runner.processes.tf_log_filter import level_of

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

START_UP = (
    "oneDNN custom operations are on",
    "Could not find cuda drivers",
    "failed call to cuInit",
    "absl::InitializeLog",
)


def test_tensorflow_start_up_lines_go_to_run_log_not_the_console(tmp_path: Path):
    env = command_env()
    env.pop("TF_CPP_MIN_LOG_LEVEL")  # the tests' quiet default would hide what a user sees
    proc = subprocess.run(
        [str(BIN / "tfrun"), "train.epochs=1", "hydra.run.dir=runs/a"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    console = proc.stdout + proc.stderr
    assert proc.returncode == 0, console

    log = (tmp_path / "runs" / "a" / "run.log").read_text()
    cpp_lines = [line for line in log.splitlines() if level_of(line.encode()) is not None]
    assert cpp_lines, f"run.log has no TensorFlow C++ log line to hide:\n{log}"
    assert any(text in log for text in START_UP)
    for text in START_UP:
        assert text not in console, f"{text!r} on the console:\n{console}"
    assert not [line for line in console.splitlines() if level_of(line.encode()) is not None]
    assert "[tfrun] succeeded" in console and " - loss: " in console  # tfrun's lines and the epoch line


def test_int8_conversion_lines_go_to_run_log_not_the_console(tmp_path: Path):
    env = command_env()
    env.pop("TF_CPP_MIN_LOG_LEVEL")
    proc = subprocess.run(
        [
            str(BIN / "tfrun"),
            "target=tflite",
            "target.quantization=int8",
            "target.max_accuracy_drop=1.0",  # one epoch: the gate is not what this test is about
            "train.epochs=1",
            "train.verbose=0",
            "hydra.run.dir=runs/int8",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    console = proc.stdout + proc.stderr
    assert proc.returncode == 0, console
    log = (tmp_path / "runs" / "int8" / "run.log").read_text()
    assert "fully_quantize: " in log, "the converter's line is kept in run.log"
    assert "fully_quantize" not in console and "inference_type" not in console, console
    assert not [line for line in console.splitlines() if level_of(line.encode()) is not None]
    assert "tflite_convert" in console and "[tfrun] succeeded" in console
