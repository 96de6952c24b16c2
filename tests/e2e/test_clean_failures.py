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
