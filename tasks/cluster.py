"""This process's place in a cluster, read from TF_CONFIG (pure Python).

The chief (task `chief`, or worker 0 when the cluster has no chief) writes
the export, TensorBoard logs and results; other workers must still take
part in collective saves, so they write to dirs of their own that they remove.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional


def tf_config() -> Optional[dict]:
    raw = os.environ.get("TF_CONFIG")
    return json.loads(raw) if raw else None


def task_name() -> str:
    """e.g. "worker:1"; "main" outside a cluster."""
    spec = tf_config()
    if not spec:
        return "main"
    return f"{spec['task']['type']}:{spec['task']['index']}"


def is_chief() -> bool:
    spec = tf_config()
    if not spec:
        return True
    task = spec["task"]
    if task["type"] == "chief":
        return True
    return task["type"] == "worker" and task["index"] == 0 and "chief" not in spec["cluster"]


def worker_dir(path: Path) -> Path:
    """A long-lived dir for callbacks: `path` on the chief, `path`/<task> elsewhere (removed by the caller)."""
    return path if is_chief() else path.parent / f".{path.name}-{task_name().replace(':', '-')}"


def local_io_device(cluster_name: str, strategy: Any) -> Optional[str]:
    """The device that saves for a Vertex job under ParameterServerStrategy: this process's CPU.

    Without it each ps task writes its variables' shards itself, to its own disk; Vertex's replicas share
    none (TensorFlow's SaveOptions/CheckpointOptions experimental_io_device). None everywhere else.
    """
    from runner import vertex_env

    spec = tf_config()
    if cluster_name != "vertex" or not vertex_env.inside_vertex() or not spec \
            or not type(strategy).__name__.startswith("ParameterServerStrategy"):
        return None
    return f"/job:{spec['task']['type']}/replica:0/task:{spec['task']['index']}/device:CPU:0"
