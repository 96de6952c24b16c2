"""TF_CONFIG, the cluster description every TensorFlow task reads: parsed and checked in one place.

Read by the steps (is this task the chief?), the Vertex replica (which task am I?) and validation
(cluster=tf_config: is the environment's TF_CONFIG well formed?). Written here too: how many tasks of each type
a cluster has and the TF_CONFIG each task gets, for cluster=local's processes and job=k8s's replicas alike.
Pure Python.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator, Mapping, Optional

from tfrun.tasks.core.problems import Problem, one_of

TASK_TYPES = ("chief", "worker", "ps", "evaluator")


def task_counts(chief_dispatches: bool, workers: int, ps: int | None, chief: bool) -> dict[str, int]:
    """How many tasks of each type. With parameter servers (the strategy's `chief_dispatches`) the task running the
    plan is the chief (coordinator)."""
    if chief_dispatches:
        return {"chief": 1, "worker": workers, "ps": 1 if ps is None else ps}
    layout = {"worker": workers}
    if chief:
        layout = {"chief": 1, **layout}
    return layout


def runs_plan(chief_dispatches: bool, kind: str) -> bool:
    """Whether a task of this type runs the plan (else it runs a TensorFlow server the chief dispatches to)."""
    return not chief_dispatches or kind == "chief"


def compose(cluster: Mapping[str, list[str]], kind: str, index: int | str) -> str:
    """The TF_CONFIG of task `kind`:`index` of `cluster` ({type: ["host:port", ...]}), as JSON text."""
    return json.dumps({"cluster": dict(cluster), "task": {"type": kind, "index": index}})


def read(env: Mapping[str, str] | None = None) -> Optional[dict[str, Any]]:
    """The parsed TF_CONFIG, None when unset (ValueError when it is not JSON: validation reports that)."""
    raw = (os.environ if env is None else env).get("TF_CONFIG")
    return json.loads(raw) if raw else None


def task(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """This task's entry ({"type": "chief", "index": 0, ...}); {} outside a cluster or when unreadable."""
    try:
        return dict((read(env) or {}).get("task") or {})
    except ValueError:
        return {}


def task_name(env: Mapping[str, str] | None = None) -> str:
    """e.g. "worker:1"; "main" outside a cluster."""
    spec = read(env)
    if not spec:
        return "main"
    return f"{spec['task']['type']}:{spec['task']['index']}"


def is_chief(env: Mapping[str, str] | None = None) -> bool:
    """The chief writes the export and logs: task `chief`, or worker 0 when the cluster has no chief."""
    spec = read(env)
    if not spec:
        return True
    me = spec["task"]
    if me["type"] == "chief":
        return True
    return me["type"] == "worker" and me["index"] == 0 and "chief" not in spec["cluster"]


def problems(raw: Optional[str]) -> Iterator[Problem]:
    """TF_CONFIG's shape: {"cluster": {type: ["host:port", ...]}, "task": {"type": t, "index": i}}."""
    example = '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
    if not raw:
        yield Problem("TF_CONFIG", raw, f"a JSON cluster description in the environment, e.g. {example}")
        return
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as exc:
        yield Problem("TF_CONFIG", raw, f"valid JSON ({exc.msg} at char {exc.pos}), e.g. {example}")
        return
    cluster, task = (spec.get("cluster"), spec.get("task")) if isinstance(spec, dict) else (None, None)
    if (
        not isinstance(cluster, dict)
        or not cluster
        or not all(
            isinstance(v, list) and v and all(isinstance(a, str) and ":" in a for a in v) for v in cluster.values()
        )
    ):
        yield Problem("TF_CONFIG.cluster", cluster, 'a mapping of task type to a non-empty list of "host:port"')
        return
    for kind in cluster:
        yield from one_of("TF_CONFIG.cluster", kind, TASK_TYPES)
    if not isinstance(task, dict):
        yield Problem("TF_CONFIG.task", task, '{"type": <one of the cluster\'s task types>, "index": <int>}')
        return
    yield from one_of("TF_CONFIG.task.type", task.get("type"), list(cluster))
    index = task.get("index")
    size = len(cluster.get(task.get("type"), []))
    if not isinstance(index, int) or not 0 <= index < max(size, 1):
        yield Problem("TF_CONFIG.task.index", index, f"an integer in [0, {max(size - 1, 0)}]")
