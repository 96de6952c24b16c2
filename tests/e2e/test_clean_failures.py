"""Mistakes found only once TensorFlow runs say so in one message, without a Python traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import read_record, tfrun

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_gpu_hardware_without_a_gpu_is_its_message_alone(workdir: Path):
    proc = tfrun("hardware=gpu", "train.epochs=1", "hydra.run.dir=runs/gpu", cwd=workdir, timeout=180)
    console = proc.stdout + proc.stderr
    assert proc.returncode == 1, console
    assert "Traceback" not in console, console
    assert "hardware=gpu asks for" in console and "Use hardware=cpu here" in console
    record = read_record(workdir / "runs/gpu")
    assert record["status"] == "failed" and record["error"]["type"] == "HardwareUnavailable"
    assert record["error"]["step"] == "hardware"
