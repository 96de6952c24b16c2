"""job=promote target=tfserving: a version label moves to a version in every running replica group of the model.

    tfrun job=promote target=tfserving source=models/digits_mlp/0003 alias=stable
    tfrun job=promote target=tfserving source=runs/deploy3 alias=stable     # the version that run deployed

The source names a version: a version folder of a TF Serving repository (`<base>/<model>/<NNNN>`), or the run dir
(or record.json) of a succeeded target=tfserving run (its deployment's version). The groups are the replica groups
serving that model, found in `<base>/<model>/.groups/` (a kept-running `target.replicas`/`target.split` run puts
its group there). In each group, the label moves one replica at a time, through the model config file every replica
re-reads (TF Serving's `version_labels`): the version is loaded where it is not yet, the label moves once it is
AVAILABLE, and a version no label names any more is unloaded (tasks/tfserving/replicas.py). The record's
`promotion` names the version the label left; its `undo` moves it back (a rollback is a promote of that version).

`handles` and `problems` import nothing heavy (the runner reads them while it validates); `check` runs in the runner
before the record, `promote_step` in the child.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from tfrun.tasks.core.problems import Problem
from tfrun.tasks.core.record_io import succeeded_run

ACCEPTS = (
    "a TF Serving version folder <base>/<model>/<NNNN> or a target=tfserving run dir (target=tfserving: the label "
    "moves in the model's running replica groups)"
)


@dataclass(frozen=True)
class ServingVersion:
    """The version a promote names: its model's folder, the model's name and the version number."""

    model_dir: Path
    model_name: str
    version: int


def handles(source: str, target: str) -> bool:
    """target=tfserving with a source that is no MLflow reference."""
    from tfrun.tasks.core.schema import option_class
    from tfrun.tasks.core.schema.targets import TfservingTarget

    return issubclass(option_class("target", target), TfservingTarget) and not source.startswith("models:/")


def resolve(source: str) -> ServingVersion:
    """The version a source names; ValueError saying why it names none."""
    path = Path(source.strip())
    if path.name.isdigit() and path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise ValueError(f"{path} holds no saved_model.pb")
        return ServingVersion(path.parent.resolve(), path.parent.name, int(path.name))
    record, data = succeeded_run(str(path), f"{source} is neither a version folder <base>/<model>/<NNNN> nor a run dir")
    entry = next((d for d in data.get("deployments") or [] if d.get("kind") == "tfserving"), None)
    if entry is None:
        raise ValueError(f"{record} has no target=tfserving deployment")
    from tfrun.tasks.core.sources import _exported_path  # noqa: PLC2701 - the one rule for a record's paths

    folder = _exported_path(record, data, str(entry["version_path"]))  # relative to where the run was launched
    if not folder.is_dir():
        raise ValueError(f"the version {entry['version_path']} that {record} deployed is not there any more")
    return ServingVersion(folder.parent.resolve(), str(entry["model_name"]), int(entry["version"]))


def problems(config: Any) -> Iterator[Problem]:
    """The label is a TF Serving label (not a number), the source names a version."""
    from tfrun.tasks.core.schema.targets import LABEL_RE

    if not LABEL_RE.fullmatch(str(config.alias or "")):
        yield Problem("alias", config.alias, "a version label of letters, digits, '_' or '-', not all digits")
    try:
        resolve(str(config.source))
    except ValueError as err:
        yield Problem("source", config.source, f"{ACCEPTS} ({err})")


def check(config: Any) -> None:
    """In the runner, before the record: some replica group serves the model now (PromoteError, exit 2, if not)."""
    from tfrun.tasks.core.problems import PromoteError
    from tfrun.tasks.tfserving.replicas import RUNNING, ReplicaGroup

    version = resolve(str(config.source))
    if not ReplicaGroup.running(version.model_dir):
        raise PromoteError(
            f"no replica group serves {version.model_name} now (none alive in {version.model_dir / RUNNING}): start "
            "one with target=tfserving target.replicas=N target.keep_running=true"
        )


def promote_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    """Move the label in every running group of the model, one replica at a time; what it pointed at before."""
    from tfrun.tasks.core.record_io import relative
    from tfrun.tasks.tfserving.replicas import ReplicaGroup

    version = resolve(str(cfg.source))
    label = str(cfg.alias)
    groups = ReplicaGroup.running(version.model_dir)
    if not groups:
        raise RuntimeError(f"no replica group serves {version.model_name} any more")
    moved = []
    for group in groups:
        before = group.labels.get(label)
        steps = group.move_label(label, version.version, timeout=float(cfg.target.start_timeout_s))
        moved.append(
            {
                "group": relative(group.folder),
                "balancer": group.balancer.rest_url,
                "previous_version": before,
                "labels": dict(group.labels),
                "served_versions": list(group.versions),
                "replicas": steps,
            }
        )
    previous = next((m["previous_version"] for m in moved if m["previous_version"] is not None), None)
    undo = None
    if previous is not None:
        from tfrun.tasks.tfserving.repository import version_dir

        undo = f"source={relative(version_dir(version.model_dir, previous))} alias={label} target=tfserving"
    return {
        "summary": f"label {label!r} of {version.model_name} -> version {version.version} (was {previous}) in "
        f"{len(moved)} replica group(s), one replica at a time",
        "promotion": {
            "registry": "tfserving",
            "model": version.model_name,
            "alias": label,
            "version": version.version,
            "previous_version": previous,
            "undo": undo,
            "groups": moved,
        },
    }
