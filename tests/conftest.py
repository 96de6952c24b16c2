"""Shared helpers: run the real tfrun commands from the test environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
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


def assert_rejected(proc: subprocess.CompletedProcess, words: list[str], run_dir: Path) -> str:
    """A config error as tfrun reports it: exit 2, every word in the message, no traceback, no run dir left."""
    message = proc.stdout + proc.stderr
    assert proc.returncode == 2, message
    for word in words:
        assert word in message, f"{word!r} missing from:\n{message}"
    assert "Traceback" not in message
    assert not run_dir.exists(), "a rejected config must not leave a run dir"
    return message


def read_record(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "record.json").read_text())


def write_user_project(root: Path, modules: dict[str, str], configs: dict[str, str]) -> Path:
    """A user's project in root: its modules (dedented) at the top, its configs under my_conf/ (tfrun's
    `--config-dir my_conf`)."""
    for name, text in modules.items():
        (root / name).write_text(textwrap.dedent(text))
    for name, text in configs.items():
        path = root / "my_conf" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def run_failing_on_user_code(project: Path, overrides: list[str], run_dir: str, step: str, words: list[str],
                             own_files: tuple[str, ...], timeout: float) -> str:
    """`tfrun --config-dir my_conf OVERRIDES train.epochs=1` in a user's project, which must fail on the user's
    code: exit 1 and a failed record (in project/run_dir) whose UserCodeError at `step` holds every word, the
    first shown in tfrun's one-line error, and no traceback of tfrun's own files. The run's output."""
    proc = tfrun("--config-dir", "my_conf", *overrides, "train.epochs=1", f"hydra.run.dir={run_dir}", cwd=project,
                 timeout=timeout)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    record = read_record(project / run_dir)
    assert record["status"] == "failed"
    error = record["error"]
    assert error["type"] == "UserCodeError" and error["step"] == step, error
    for word in words:
        assert word in error["message"], error["message"]
    assert f"[tfrun] error: UserCodeError: {words[0]}" in output
    for own in own_files:
        assert own not in output, f"a traceback of tfrun's {own} was shown:\n{output}"
    return output


@pytest.fixture(scope="module")
def compose_cfg():
    """Compose tfrun's config in-process with Hydra's compose API (no subprocess, no TensorFlow)."""
    from hydra import compose, initialize_config_dir

    from tasks.core import schema

    schema.register()

    def _compose(*overrides: str):
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))

    return _compose


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty directory to launch tfrun from (runs/ and models/ land here)."""
    return tmp_path
