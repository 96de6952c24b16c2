"""job=rollback on the running replica groups of a model: each group goes back to the older version, one replica at
a time, before any version folder is set aside.

A group serves versions by number (TF Serving's `specific` policy) and its labels name numbers, so a folder set aside
while a group still serves it, or a label still naming it, would leave a replica serving nothing there. So, in every
running group of the model, each version being set aside is replaced by the target version, in the versions served
and in the labels (a label that named a rolled-back version now names the target), through
`ReplicaGroup.apply`: the target is loaded and AVAILABLE, the labels move, the rolled-back versions are unloaded,
one replica after the other (tasks/tfserving/replicas.py). A group that serves none of them is left as it is.
Only when every group has moved does job=rollback set the folders aside (tasks/tfserving/steps.py:rollback_step).
"""

from __future__ import annotations

from typing import Any, Callable

from tfrun.tasks.tfserving.replicas import GroupError, Replica, ReplicaGroup


class GroupRollbackFailed(RuntimeError):
    """A replica did not reach the older version; the message says which replicas moved (no folder was moved)."""

    user_facing = True


def plan(versions: list[int], labels: dict[str, int], target: int, newer: list[int]) -> tuple[list[int], dict]:
    """The versions and labels a group serves after the rollback: every version of `newer` replaced by `target`."""

    def back(v: int) -> int:
        return target if v in newer else v

    return sorted({back(v) for v in versions}), {k: back(v) for k, v in labels.items()}


def roll_back(
    groups: list[ReplicaGroup],
    target: int,
    newer: list[int],
    *,
    timeout: float,
    relative: Callable[[Any], str],
) -> list[dict[str, Any]]:
    """Move every group off `newer` onto `target`, one replica at a time; per group what moved where."""
    done: list[dict[str, Any]] = []
    for group in groups:
        versions, labels = plan(group.versions, group.labels, target, newer)
        entry: dict[str, Any] = {
            "group": relative(group.folder),
            "balancer": group.balancer.rest_url,
            "versions_before": list(group.versions),
            "labels_before": dict(group.labels),
            "versions_after": versions,
            "labels_after": labels,
            "moved_labels": {k: [group.labels[k], v] for k, v in labels.items() if group.labels[k] != v},
            "replicas": [],
        }
        if versions == sorted(group.versions) and labels == group.labels:
            entry["unchanged"] = True  # it serves none of the versions set aside
            done.append(entry)
            continue
        steps: list[dict[str, Any]] = entry["replicas"]

        def record(replica: Replica, step: dict[str, Any], steps: list = steps) -> None:
            steps.append({**step, "grpc_target": replica.grpc_target})

        try:
            group.apply(versions, labels, timeout=timeout, on_replica=record)
        except GroupError as err:
            moved = [f"{entry['group']} replica(s) {', '.join(str(s['replica']) for s in steps) or 'none'}"]
            moved += [f"{d['group']} (all {len(d['replicas'])})" for d in done if d["replicas"]]
            raise GroupRollbackFailed(
                f"{err}; moved to version {target} so far: {'; '.join(moved)}; no version folder was set aside: "
                "run the same job=rollback again to finish"
            ) from None
        done.append(entry)
    return done
