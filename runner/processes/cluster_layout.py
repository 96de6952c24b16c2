"""The processes of a local cluster: tasks, free loopback ports, one TF_CONFIG each; each task forks from the
zygote when one is set (TF_CONFIG is read at run time, so one warm TensorFlow serves every task)."""

from __future__ import annotations

import socket
from typing import Any

from tfrun.runner.processes.commands import job_child_command, job_server_command
from tfrun.runner.processes.supervisor import TaskSpec
from tfrun.tasks.core import tf_config
from tfrun.tasks.core.schema import option_class

HOST = "127.0.0.1"


def free_ports(n: int) -> list[int]:
    """N ports the OS reports free on loopback (held open together so they differ)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def cluster_layout(strategy: str, workers: int, ps: int | None, chief: bool) -> dict[str, int]:
    """How many tasks of each type (tfrun.tasks.core.tf_config.task_counts, which job=k8s renders too)."""
    return tf_config.task_counts(option_class("strategy", strategy).chief_dispatches, workers, ps, chief)


def local_cluster_tasks(config: Any, job: bytes, env: dict[str, str]) -> tuple[list[TaskSpec], dict[str, list[str]]]:
    """TaskSpecs for every process of a cluster=local job, and the cluster spec they share."""
    strategy = config.strategy.name
    layout = cluster_layout(strategy, config.cluster.workers, config.cluster.ps, config.cluster.chief)
    ports = iter(free_ports(sum(layout.values())))
    spec = {kind: [f"{HOST}:{next(ports)}" for _ in range(count)] for kind, count in layout.items()}
    reporter = ("chief", 0) if "chief" in spec else ("worker", 0)
    tasks = []
    for kind, addresses in spec.items():
        for index in range(len(addresses)):
            task_env = dict(env)
            task_env["TF_CONFIG"] = tf_config.compose(spec, kind, index)
            task_env.update(config.cluster.task_env.get(f"{kind}_{index}", {}))
            runs_plan = tf_config.runs_plan(option_class("strategy", strategy).chief_dispatches, kind)
            tasks.append(
                TaskSpec(
                    name=f"{kind}:{index}",
                    cmd=job_child_command() if runs_plan else job_server_command(),
                    env=task_env,
                    stdin=job if runs_plan else b"",
                    reports=(kind, index) == reporter,
                    runs_plan=runs_plan,
                )
            )
    return tasks, spec
