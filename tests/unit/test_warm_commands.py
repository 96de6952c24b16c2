"""The suite's `tfrun` commands forked from a warm Python (tests/warm_commands.py) answer as the console script
started afresh does: same exit status, same output, same files, and the offline guard still sees what they do."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import BIN, ROOT, WARM, command_env
from tests.warm_commands import WarmCommands

COMMANDS = [
    ["train.epochs=0", "model.n_neurons=0", "hydra.run.dir=runs/bad"],  # refused: exit 2, the problems listed
    ["--cfg", "job", "train.epochs=3"],  # printed config: exit 0
    ["--help"],
    ["model=nope", "hydra.run.dir=runs/bad"],  # Hydra's composition error made tfrun's exit 2
    ["job=rollback", "hydra.run.dir=runs/r"],  # nothing to roll back to: exit 2 after composing
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a)[:40])
def test_a_forked_command_answers_as_a_fresh_one(tmp_path: Path, args: list[str]):
    import subprocess

    fresh_dir, warm_dir = tmp_path / "fresh", tmp_path / "warm"
    fresh_dir.mkdir()
    warm_dir.mkdir()
    env = command_env()
    fresh = subprocess.run([str(BIN / "tfrun"), *args], cwd=fresh_dir, env=env, capture_output=True, text=True)
    warm = WARM.run(args, warm_dir, env, timeout=60)
    assert WARM.last_forked, "the command ran afresh: the warm server did not fork it"
    assert (warm.returncode, warm.stdout, warm.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert sorted(p.name for p in warm_dir.rglob("*")) == sorted(p.name for p in fresh_dir.rglob("*"))


def test_the_offline_guard_sees_a_forked_commands_imports_and_connections(tmp_path: Path):
    """tests/fakes/offline's sitecustomize runs in the forked command as it would at a fresh Python's start."""
    log = tmp_path / "blocked.log"
    env = command_env(TFRUN_OFFLINE_LOG=str(log))
    env["PYTHONPATH"] = f"{ROOT / 'tests' / 'fakes' / 'offline'}:{env.get('PYTHONPATH', '')}".rstrip(":")
    proc = WARM.run(["track=mlflow", "track.uri=http://127.0.0.1:9", "train.epochs=1"], tmp_path, env, timeout=60)
    assert WARM.last_forked
    assert proc.returncode != 0
    blocked = log.read_text().splitlines()
    assert "import tensorflow" in blocked and "connect ('127.0.0.1', 9)" in blocked, proc.stdout + proc.stderr


def test_an_environment_the_server_lacks_runs_afresh(tmp_path: Path):
    env = command_env(PYTHONHASHSEED="123")  # read at the interpreter's start: a fork would not have it
    proc = WARM.run(["--cfg", "job"], tmp_path, env, timeout=60)
    assert not WARM.last_forked
    assert proc.returncode == 0 and "train:" in proc.stdout


def test_a_server_that_would_hold_tensorflow_serves_nothing_and_commands_run_fresh(tmp_path: Path):
    """A server that imported TensorFlow would hide a command's own import from the offline guard: it stops."""
    (tmp_path / "sitecustomize.py").write_text(
        "import sys, types\nsys.modules['tensorflow'] = types.ModuleType('tf')\n"
    )
    env = {**command_env(), "PYTHONPATH": str(tmp_path)}
    broken = WarmCommands(lambda: env)
    try:
        proc = broken.run(["--cfg", "job"], tmp_path, env, timeout=60)
    finally:
        broken.stop()
    assert proc.returncode == 0 and "train:" in proc.stdout
    assert not broken.last_forked
