"""track=mlflow's bad inputs exit 2 before training, and composing or rejecting a config never imports MLflow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import assert_rejected_offline, command_env


@pytest.mark.parametrize("overrides, words", [
    (["track.uri=htp:/nowhere"], ["track.uri", "htp:/nowhere", "http(s)://HOST[:PORT]", "sqlite:///PATH"]),
    (["track.experiment="], ["track.experiment", "an experiment name"]),
    (["track.timeout_s=0"], ["track.timeout_s", "0", ">= 0.1"]),
])
def test_bad_tracking_input_exits_2(workdir: Path, overrides: list[str], words: list[str]):
    assert_rejected_offline(["track=mlflow", *overrides], words, workdir)


@pytest.mark.parametrize("argv", [["track=mlflow", "--cfg", "job"], ["track=mlflow", "train.epochs=0"]])
def test_mlflow_is_not_imported_to_compose_or_reject(workdir: Path, argv: list[str]):
    probe = ("import sys; sys.argv = ['tfrun', *%r]\nimport runner.cli\ntry:\n    runner.cli.main()\n"
             "except SystemExit:\n    pass\nprint('IMPORTED' if 'mlflow' in sys.modules else 'NOT IMPORTED')" % argv)
    proc = subprocess.run([sys.executable, "-c", probe], cwd=workdir, env=command_env(TFRUN_NO_PRESTART="1"),
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip().endswith("NOT IMPORTED"), proc.stdout + proc.stderr
