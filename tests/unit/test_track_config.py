"""track=mlflow's bad inputs exit 2 before training, and composing or rejecting a config never imports MLflow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import assert_rejected_offline, command_env


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["track.uri=htp:/nowhere"], ["track.uri", "htp:/nowhere", "http(s)://HOST[:PORT]", "sqlite:///PATH"]),
        (["track.experiment="], ["track.experiment", "an experiment name"]),
        (["track.timeout_s=0"], ["track.timeout_s", "0", ">= 0.1"]),
    ],
)
def test_bad_tracking_input_exits_2(workdir: Path, overrides: list[str], words: list[str]):
    assert_rejected_offline(["track=mlflow", *overrides], words, workdir)


@pytest.mark.parametrize("argv", [["track=mlflow", "--cfg", "job"], ["track=mlflow", "train.epochs=0"]])
def test_mlflow_is_not_imported_to_compose_or_reject(workdir: Path, argv: list[str]):
    probe = (
        "import sys; sys.argv = ['tfrun', *%r]\nimport tfrun.runner.cli\ntry:\n    tfrun.runner.cli.main()\n"
        "except SystemExit:\n    pass\nprint('IMPORTED' if 'mlflow' in sys.modules else 'NOT IMPORTED')" % argv
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=workdir,
        env=command_env(TFRUN_NO_PRESTART="1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.strip().endswith("NOT IMPORTED"), proc.stdout + proc.stderr


def test_track_mlflow_without_the_extra_says_how_to_install_it(workdir: Path):
    """As if mlflow were not installed (an import hook refuses it): one line naming the extra, exit 2."""
    probe = (
        "import sys\n"
        "class NoMlflow:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'mlflow' or name.startswith('mlflow.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, NoMlflow())\n"
        "sys.argv = ['tfrun', 'track=mlflow', 'hydra.run.dir=runs/x']\n"
        "import tfrun.runner.cli\ntfrun.runner.cli.main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=workdir,
        env=command_env(TFRUN_NO_PRESTART="1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert (
        "track='mlflow' is not allowed: expected the mlflow extra installed: pip install 'tfrun[mlflow]'" in proc.stderr
    ), proc.stderr
    assert not list(workdir.rglob("record.json")), "nothing was run"
