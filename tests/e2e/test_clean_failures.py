"""Mistakes found only once TensorFlow runs say so in one message, without a Python traceback."""

from __future__ import annotations

import json
import subprocess
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


def test_tf_config_worker_that_never_comes_is_named_when_the_timeout_set_ends(workdir: Path):
    """A 2-worker TF_CONFIG where only worker 0 runs (a real process): the job fails form_timeout_s after
    worker 0 starts to join (TensorFlow's import does not count), naming worker:1 and its address."""
    from datetime import datetime

    from tests.helpers import BIN, command_env
    from tfrun.runner.processes.cluster_layout import free_ports

    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    env = command_env(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    timeout_s = 6
    proc = subprocess.run(
        [
            str(BIN / "tfrun"),
            "strategy=multi_worker",
            "cluster=tf_config",
            f"cluster.form_timeout_s={timeout_s}",
            "train.epochs=1",
            "hydra.run.dir=runs/tf_config",
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    console = proc.stdout + proc.stderr
    assert proc.returncode == 1, console
    assert "Traceback" not in console, console
    record = read_record(workdir / "runs/tf_config")
    error = record["error"]
    assert error["type"] == "ClusterFormationTimeout", error
    assert f"worker:1 (127.0.0.1:{ports[1]})" in error["message"] and "main" not in error["message"], error
    assert error["missing_tasks"] == [f"worker:1 (127.0.0.1:{ports[1]})"]
    assert f"cluster.form_timeout_s={timeout_s} s" in console and "worker:1" in console
    joining = next(s for s in record["steps"] if s["name"] == "strategy")["started_at"]
    waited = (datetime.fromisoformat(record["ended_at"]) - datetime.fromisoformat(joining)).total_seconds()
    assert timeout_s - 0.5 <= waited <= timeout_s + 2.5, f"failed {waited:.1f} s after joining began"


EXPORT_ROOM = 160_000  # bytes a file may grow to: the record and run.log fit, the wide model's variables do not


def _file_size_limit() -> None:
    """In the tfrun process (and so its child): a file may not grow past EXPORT_ROOM. The kernel then refuses the
    write (EFBIG; Python starts with SIGXFSZ ignored), as a full disk refuses one (ENOSPC): a models folder without
    room, made without privileges. tests/unit/test_full_disk.py writes to /dev/full for ENOSPC itself."""
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (EXPORT_ROOM, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def _tfrun_without_room(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    from tests.helpers import BIN, command_env

    return subprocess.run(
        [str(BIN / "tfrun"), "model.n_neurons=256", "train.epochs=1", "train.callbacks.tensorboard=false", *args],
        cwd=workdir,
        env=command_env(TFRUN_NO_FORK="1"),  # a fresh child inherits the limit (a zygote's fork would not)
        preexec_fn=_file_size_limit,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_an_export_without_room_is_one_line_and_a_failed_record(workdir: Path):
    """The models folder has no room for the export (~340 kB of variables): ExportWriteError naming the folder."""
    proc = _tfrun_without_room(workdir, "train.callbacks.backup_and_restore=false", "hydra.run.dir=runs/full")
    console = proc.stdout + proc.stderr
    assert proc.returncode == 1, console
    assert "Traceback" not in console, console
    assert "[tfrun] error: ExportWriteError: the export could not be written to models/digits_mlp: file too large" in (
        console
    ), console
    record = read_record(workdir / "runs/full")
    assert record["status"] == "failed" and record["error"]["type"] == "ExportWriteError"
    assert record["error"]["step"] == "export" and "models_dir" in record["error"]["message"]
    assert [p.name for p in (workdir / "models/digits_mlp").iterdir()] == [], "nothing half-written is left"


def test_a_checkpoint_without_room_is_one_line_too(workdir: Path):
    """The run dir has no room for the training's backup checkpoint (TensorFlow's writer refuses, inside fit)."""
    proc = _tfrun_without_room(workdir, "hydra.run.dir=runs/full")
    console = proc.stdout + proc.stderr
    assert proc.returncode == 1, console
    assert "Traceback" not in console, console
    assert console.count("no room to write during step train: file too large") == 1, console
    record = read_record(workdir / "runs/full")
    assert record["status"] == "failed" and record["error"]["step"] == "train"
    assert record["error"]["message"].startswith("no room to write during step train: file too large (free space")
