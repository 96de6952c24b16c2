"""Strategy x hardware x cluster rules, TF_CONFIG validation and local cluster layout (no TensorFlow)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.helpers import assert_rejected, command_env, tfrun
from tfrun.runner.processes import zygote
from tfrun.runner.processes.cluster_layout import cluster_layout, free_ports, local_cluster_tasks
from tfrun.runner.processes.commands import child_command, server_command
from tfrun.tasks.core.schema.distribute import LocalCluster
from tfrun.tasks.core.tf_config import problems as tf_config_problems
from tfrun.tasks.strategy import effective_batch, make_cross_device_ops

BAD = [
    pytest.param(["strategy=tpu"], ["hardware", "cpu", "strategy=tpu"], id="tpu-strategy-without-tpu-hardware"),
    pytest.param(["hardware=tpu"], ["strategy", "default", "hardware=tpu"], id="tpu-hardware-without-tpu-strategy"),
    pytest.param(["strategy=multi_worker"], ["cluster", "none", "local", "tf_config"], id="multi-worker-no-cluster"),
    pytest.param(["strategy=parameter_server"], ["cluster", "none", "local"], id="ps-no-cluster"),
    pytest.param(
        ["strategy=parameter_server", "cluster=local", "cluster.ps=0"],
        ["cluster.ps", "0", "at least 1"],
        id="ps-zero-ps",
    ),
    pytest.param(
        ["strategy=mirrored", "strategy.cross_device_ops=nccl"],
        ["strategy.cross_device_ops", "nccl", "GPUs"],
        id="nccl-on-cpu",
    ),
    pytest.param(
        ["strategy=multi_worker", "cluster=local", "strategy.communication=nccl"],
        ["strategy.communication", "nccl", "ring"],
        id="nccl-communication-on-cpu",
    ),
    pytest.param(
        ["strategy=mirrored", "hardware.logical_devices=3"],
        ["train.batch_size", "32", "multiple of the 3", "batch_policy=round"],
        id="batch-not-divisible",
    ),
    pytest.param(["hardware.logical_devices=65"], ["hardware.logical_devices", "65", "[1, 64]"], id="too-many-devices"),
    pytest.param(
        ["cluster=local"], ["cluster", "local", "none with strategy=default"], id="cluster-without-cluster-strategy"
    ),
    pytest.param(
        ["strategy=mirrored", "strategy.cross_device_ops=fast"],
        ["strategy.cross_device_ops", "fast", "hierarchical_copy"],
        id="unknown-cross-device-ops",
    ),
    pytest.param(["strategy=multi_worker", "cluster=tf_config"], ["TF_CONFIG", "None", "JSON"], id="tf-config-missing"),
    pytest.param(
        ["strategy=tpu", "hardware=tpu"], ["strategy.tpu", "None", "grpc://HOST:8470"], id="tpu-without-address"
    ),
    pytest.param(
        ["strategy=multi_worker", "cluster=local", "cluster.workers=0"],
        ["cluster.workers", "0", ">= 1"],
        id="zero-workers",
    ),
    pytest.param(
        ["strategy=multi_worker", "cluster=local", "+cluster.task_env={gpu_1:{A:b}}"],
        ["cluster.task_env.gpu_1", "worker_0"],
        id="bad-task-env-key",
    ),
]


@pytest.mark.parametrize("overrides, words", BAD)
def test_distribution_rules_exit_2(workdir: Path, overrides: list[str], words: list[str]):
    proc = tfrun(*overrides, "hydra.run.dir=runs/bad", cwd=workdir, timeout=60)
    assert_rejected(proc, words, workdir / "runs" / "bad")


@pytest.mark.parametrize(
    "raw, key",
    [
        ("{not json", "TF_CONFIG"),
        ('{"task": {"type": "worker", "index": 0}}', "TF_CONFIG.cluster"),
        ('{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG.task"),
        ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', "TF_CONFIG.task.index"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "TF_CONFIG.task.type"),
        ('{"cluster": {"worker": ["no-port"]}, "task": {"type": "worker", "index": 0}}', "TF_CONFIG.cluster"),
        ('{"cluster": {"boss": ["a:1"]}, "task": {"type": "boss", "index": 0}}', "TF_CONFIG.cluster"),
    ],
)
def test_malformed_tf_config_named(raw: str, key: str):
    problems = list(tf_config_problems(raw))
    assert problems and problems[0].key == key, problems


def test_valid_tf_config_has_no_problems():
    raw = json.dumps({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 1}})
    assert list(tf_config_problems(raw)) == []


def test_malformed_tf_config_through_the_command(workdir: Path):
    import subprocess
    import sys

    env = command_env(TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 5}}')
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "tfrun"), "strategy=multi_worker", "cluster=tf_config"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "TF_CONFIG.task.index=5" in proc.stderr and "[0, 0]" in proc.stderr


def test_layouts():
    assert cluster_layout("multi_worker", 2, None, False) == {"worker": 2}
    assert cluster_layout("multi_worker", 3, None, True) == {"chief": 1, "worker": 3}
    assert cluster_layout("parameter_server", 2, None, False) == {"chief": 1, "worker": 2, "ps": 1}
    assert cluster_layout("parameter_server", 2, 3, False) == {"chief": 1, "worker": 2, "ps": 3}


@pytest.mark.parametrize("zygote_socket", [None, "/tmp/tfrun-zygote-test/socket"], ids=["fresh", "forked"])
def test_local_parameter_server_tasks_get_their_own_tf_config(monkeypatch, zygote_socket):
    # the servers' command depends on whether a zygote is set (tests/unit/conftest.py unsets the suite's)
    monkeypatch.delenv(zygote.NO_FORK_ENV, raising=False)
    if zygote_socket:
        monkeypatch.setenv(zygote.ZYGOTE_ENV, zygote_socket)
    config = SimpleNamespace(
        strategy=SimpleNamespace(name="parameter_server"),
        cluster=LocalCluster(workers=2, ps=1, task_env={"worker_1": {"EXTRA": "1"}}),
    )
    tasks, spec = local_cluster_tasks(config, b"{}", {"BASE": "x"})
    assert [t.name for t in tasks] == ["chief:0", "worker:0", "worker:1", "ps:0"]
    addresses = [a for kind in spec.values() for a in kind]
    assert len(set(addresses)) == 4 and all(a.startswith("127.0.0.1:") for a in addresses)
    by_name = {t.name: t for t in tasks}
    assert by_name["chief:0"].reports and by_name["chief:0"].runs_plan
    assert not by_name["worker:0"].runs_plan and not by_name["ps:0"].runs_plan
    assert by_name["worker:0"].cmd == (
        zygote.server_client_command(zygote_socket) if zygote_socket else server_command()
    )
    assert by_name["chief:0"].cmd == (zygote.client_command(zygote_socket) if zygote_socket else child_command())
    tf_config = json.loads(by_name["worker:1"].env["TF_CONFIG"])
    assert tf_config == {"cluster": spec, "task": {"type": "worker", "index": 1}}
    assert by_name["worker:1"].env["EXTRA"] == "1" and "EXTRA" not in by_name["worker:0"].env


def test_multi_worker_chief_is_worker_0():
    config = SimpleNamespace(strategy=SimpleNamespace(name="multi_worker"), cluster=LocalCluster(workers=3))
    tasks, _ = local_cluster_tasks(config, b"{}", {})
    assert [t.name for t in tasks if t.reports] == ["worker:0"] and all(t.runs_plan for t in tasks)


def test_free_ports_are_distinct():
    ports = free_ports(8)
    assert len(set(ports)) == 8


def test_batch_policy():
    assert effective_batch(32, 2, "error") == 32
    assert effective_batch(32, 3, "round") == 33
    with pytest.raises(ValueError, match="batch_policy=round"):
        effective_batch(32, 3, "error")


class _Ops:
    """Records which cross-device-ops class a strategy would get."""

    class distribute:  # noqa: N801 - mirrors tf.distribute
        NcclAllReduce = staticmethod(lambda: "NcclAllReduce")
        HierarchicalCopyAllReduce = staticmethod(lambda: "HierarchicalCopyAllReduce")
        ReductionToOneDevice = staticmethod(lambda: "ReductionToOneDevice")


@pytest.mark.parametrize(
    "choice, on_gpu, expected",
    [
        ("auto", True, "NcclAllReduce"),
        ("auto", False, "ReductionToOneDevice"),
        ("hierarchical_copy", True, "HierarchicalCopyAllReduce"),
        ("nccl", True, "NcclAllReduce"),
    ],
)
def test_cross_device_ops_choice(choice: str, on_gpu: bool, expected: str):
    assert make_cross_device_ops(_Ops, choice, on_gpu) == expected
