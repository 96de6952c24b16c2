"""Shared helpers: run the real tfrun commands from the test environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["tests.fakes.gcs", "tests.fakes.vertex.fixture"]  # fixtures of the cloud fakes (gcs_emulator, fake_vertex, ...)

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


def command_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.pop("HYDRA_FULL_ERROR", None)
    env.update(extra)
    return env


def tfrun(*args: str, cwd: Path, timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess:
    """Run `tfrun ARGS` in cwd and capture its output."""
    proc = subprocess.run([str(BIN / "tfrun"), *args], cwd=cwd, env=command_env(), capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"tfrun {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def read_record(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "record.json").read_text())


@pytest.fixture(scope="module")
def compose_cfg():
    """Compose tfrun's config in-process with Hydra's compose API (no subprocess, no TensorFlow)."""
    from hydra import compose, initialize_config_dir

    from runner import schema

    schema.register()

    def _compose(*overrides: str):
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))

    return _compose


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty directory to launch tfrun from (runs/ and models/ land here)."""
    return tmp_path
