"""This process's place in a cluster, read from TF_CONFIG (pure Python).

The chief (task `chief`, or worker 0 when the cluster has no chief) writes
the export, TensorBoard logs and results; other workers must still take
part in collective saves, so they write to dirs of their own that they remove.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from tfrun.tasks.core import vertex_env
from tfrun.tasks.core.tf_config import is_chief, task_name  # noqa: F401 (the steps ask through this module)
from tfrun.tasks.core.tf_config import read as tf_config


def worker_dir(path: Path) -> Path:
    """A long-lived dir for callbacks: `path` on the chief, `path`/<task> elsewhere (removed by the caller)."""
    return path if is_chief() else path.parent / f".{path.name}-{task_name().replace(':', '-')}"


def on_vertex(cluster: Any) -> bool:
    """cluster=vertex (`cluster` is the config's node or the option's name). Ask only inside a Vertex replica
    (vertex_env.inside_vertex() first): it imports the schemas, which a training process needs nowhere else."""
    from tfrun.tasks.core.schema import option_class

    return option_class("cluster", cluster).on_vertex


def local_io_device(cluster_name: str, strategy: Any) -> Optional[str]:
    """The device that saves for a Vertex job under ParameterServerStrategy: this process's CPU.

    Without it each ps task writes its variables' shards itself, to its own disk; Vertex's replicas share
    none (TensorFlow's SaveOptions/CheckpointOptions experimental_io_device). None everywhere else.
    """
    spec = tf_config()
    if (
        not vertex_env.inside_vertex()  # first: the schema is read only inside a Vertex replica
        or not on_vertex(cluster_name)
        or not spec
        or not type(strategy).__name__.startswith("ParameterServerStrategy")
    ):
        return None
    return f"/job:{spec['task']['type']}/replica:0/task:{spec['task']['index']}/device:CPU:0"
