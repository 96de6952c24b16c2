"""The commands' promised exit codes and one-line answers: `tfrun --version`, `tfrun-serve` without a model."""

from __future__ import annotations

import importlib.metadata
import subprocess

import pytest

from tests.helpers import BIN, command_env
from tfrun.runner import serve_cli


def test_tfrun_version_prints_tfruns_version_and_exits_0(tmp_path):
    proc = subprocess.run(
        [str(BIN / "tfrun"), "--version"], cwd=tmp_path, env=command_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == f"tfrun {importlib.metadata.version('tfrun')}"
    assert "Hydra" not in proc.stdout + proc.stderr
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "runs").exists(), "nothing composed or run"


def test_tfrun_serve_without_a_model_is_a_bad_flag(capsys: pytest.CaptureFixture[str]):
    assert serve_cli.main([]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "--model_base_path" in err and "--model_config_file" in err
