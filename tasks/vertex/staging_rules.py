"""Rules for what a Vertex job stages of the user's project, checked before anything is uploaded.

A user's `_target_` code, `--config-dir` folders and local data files travel with the job
(tfrun.tasks.core.project_files); the user's pip requirements go into the staged wheel's metadata, so
Vertex's prebuilt image installs them with tfrun's pinned set. Every problem here is found from
this machine's files alone: no SDK, no network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Optional

from tfrun.tasks.core import project_files
from tfrun.tasks.core.problems import Problem, at_least

PINNED_HERE = ("tfrun", "tensorflow", "tf-keras", "keras")  # a version of these would fight tfrun's own pins


def requirement_lines(value: Any) -> tuple[list[tuple[str, str]], Optional[Problem]]:
    """cluster.requirements as (where, requirement) pairs: a list of strings, or a requirements file's lines."""
    if value is None:
        return [], None
    if isinstance(value, str):
        path = Path(value).expanduser()
        if not path.is_file():
            return [], Problem(
                "cluster.requirements",
                value,
                "a list of pip requirements (e.g. '[scikit-learn>=1.3]') or the path of an existing requirements file",
            )
        lines = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append((f"{value}:{number}", line))
        return lines, None
    if isinstance(value, (list, tuple)):
        return [(f"cluster.requirements[{i}]", str(item)) for i, item in enumerate(value)], None
    return [], Problem("cluster.requirements", value, "a list of pip requirement strings or a requirements file path")


def requirement_problems(cluster: Any) -> Iterator[Problem]:
    """Each requirement parses as one (PEP 508: a name and versions, not a path, URL or pip option)."""
    lines, problem = requirement_lines(cluster.requirements)
    if problem is not None:
        yield problem
        return
    if lines and cluster.container != "prebuilt":
        yield Problem(
            "cluster.requirements",
            cluster.requirements,
            f"null with cluster.container={cluster.container}: an image brings its own packages "
            "(build them into it), only the prebuilt image installs requirements",
        )
        return
    if not lines:
        return
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # the cloud extra brings packaging; without it the cloud steps cannot run either
        yield Problem("cluster.requirements", cluster.requirements, "the cloud extra installed (packaging)")
        return
    for where, line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement as err:
            yield Problem(where, line, f"a pip requirement such as 'scikit-learn>=1.3' ({err})")
            continue
        if req.url:
            yield Problem(
                where,
                line,
                "a requirement from a package index (name and versions): a URL or local "
                "path does not reach the replicas; stage the code with --config-dir's "
                "project instead",
            )
        elif _canonical(req.name) in PINNED_HERE and req.specifier:
            yield Problem(
                where,
                line,
                f"{req.name} without a version: tfrun pins it for the replicas (the version installed here)",
            )


def plan_of(config: Any, config_dirs: list[str]) -> project_files.ProjectPlan:
    """What this config stages (StagingError for a folder or file that is not there)."""
    return project_files.plan(
        Path(os.getcwd()),
        project_files.config_targets(config).values(),
        config_dirs,
        project_files.data_paths(config) if config.cluster.stage_data else {},
    )


def staging_problems(config: Any, config_dirs: list[str]) -> Iterator[Problem]:
    cluster = config.cluster
    yield from at_least("cluster.max_stage_mb", cluster.max_stage_mb, 1)
    yield from requirement_problems(cluster)
    if not cluster.stage_data:
        for key, value in project_files.data_paths(config).items():
            yield Problem(
                key,
                value,
                "a gs:// path with cluster.stage_data=false (a local file does not exist on "
                "the replicas): put it on Cloud Storage, or stage it (cluster.stage_data=true)",
            )
    shipped: Optional[set[str]] = None
    for key, target in project_files.config_targets(config).items():
        top = target.split(".", 1)[0]
        where = f"{key}._target_" if "[" not in key else key
        if top in ("runner", "tasks"):
            yield Problem(where, target, "a module not named like tfrun's own packages (runner, tasks)")
        elif project_files.module_location(top) is None:  # not the project's: an installed package, if any
            dists = _distributions(top)
            if not dists:
                continue  # not found at all: the user-code check reports it
            shipped = _shipped(cluster) if shipped is None else shipped
            if not dists & shipped:
                yield Problem(
                    where,
                    target,
                    f"a module the replicas have: {top} comes from "
                    f"{', '.join(sorted(dists))}, installed here but neither in tfrun's pinned set nor in "
                    "cluster.requirements, and not in the working directory or on PYTHONPATH (staged)",
                )
    try:
        project = plan_of(config, config_dirs)
    except project_files.StagingError as err:
        yield Problem("cluster", "vertex", f"a project that can be staged: {err}")
        return
    cap = cluster.max_stage_mb * 1_000_000
    if isinstance(cluster.max_stage_mb, int) and cluster.max_stage_mb >= 1 and project.total_bytes > cap:
        largest = ", ".join(f"{f.name} ({project_files.megabytes(f.bytes)})" for f in project.largest())
        yield Problem(
            "cluster.max_stage_mb",
            cluster.max_stage_mb,
            f"at least {project.total_bytes / 1e6:.0f} to stage this project ({project.describe()}); "
            f"largest: {largest}. Leave files out with .gitignore, or put data on Cloud Storage",
        )


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _distributions(top: str) -> set[str]:
    """The installed distributions that provide a top-level module name."""
    from importlib import metadata

    return {_canonical(d) for d in metadata.packages_distributions().get(top, [])}


def _shipped(cluster: Any) -> set[str]:
    """What every replica has: tfrun's pinned set (tfrun.tasks.vertex.package) and the user's requirements."""
    from packaging.requirements import Requirement

    from tfrun.tasks.vertex.package import DIST, REPLICA_EXTRAS, closure, own_requirements

    names = set(closure(own_requirements() + list(REPLICA_EXTRAS))) | {DIST}
    for _, line in requirement_lines(cluster.requirements)[0]:
        try:
            names.add(_canonical(Requirement(line).name))
        except ValueError:
            pass  # reported by requirement_problems
    return {_canonical(n) for n in names}
