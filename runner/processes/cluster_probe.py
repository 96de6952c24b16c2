"""Which tasks of a cluster never came: those whose TF_CONFIG address accepts no connection.

A task that has started listens on its address (TensorFlow's server starts before the task waits for
the others), so when a cluster does not form in time the addresses that refuse or ignore a connection
name the missing tasks — worker:1, not the local process that is left waiting. Pure standard library.
"""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Mapping

PROBE_S = 0.5  # per address; all are probed at once


def cluster_spec(envs: Iterable[Mapping[str, str]]) -> dict[str, list[str]]:
    """The cluster spec of the first task environment that has a readable TF_CONFIG ({} if none)."""
    for env in envs:
        try:
            spec = json.loads(env.get("TF_CONFIG") or "null")
        except ValueError:
            continue
        cluster = spec.get("cluster") if isinstance(spec, dict) else None
        if isinstance(cluster, dict):
            return {kind: list(addresses) for kind, addresses in cluster.items() if isinstance(addresses, list)}
    return {}


def answers(address: str, timeout: float = PROBE_S) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def absent(spec: Mapping[str, list[str]], timeout: float = PROBE_S) -> list[str]:
    """'type:index (host:port)' of every task whose address does not accept a connection, in spec order."""
    tasks = [(f"{kind}:{i}", address) for kind, addresses in spec.items() for i, address in enumerate(addresses)]
    if not tasks:
        return []
    with ThreadPoolExecutor(max_workers=min(32, len(tasks))) as pool:
        up = list(pool.map(lambda task: answers(task[1], timeout), tasks))
    return [f"{name} ({address})" for (name, address), ok in zip(tasks, up) if not ok]
