"""--help, --cfg job and a rejected config answer without importing TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PROBE, command_env


@pytest.mark.parametrize(
    "args, code",
    [
        (["--help"], 0),
        (["--cfg", "job"], 0),
        (["train.epochs=-3"], 2),
        (["data=unknown"], 2),
    ],
)
def test_no_tensorflow_import(tmp_path: Path, args: list[str], code: int):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)],
        cwd=tmp_path,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert f"CODE={code}" in proc.stdout, proc.stdout + proc.stderr
    assert "HEAVY=\n" in proc.stdout, proc.stdout


def test_help_lists_groups_and_exit_codes(tmp_path: Path):
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "tfrun"), "--help"],
        cwd=tmp_path,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    for word in ("data:", "digits", "model:", "mlp", "hardware:", "strategy:", "target:", "Exit codes"):
        assert word in proc.stdout, word
