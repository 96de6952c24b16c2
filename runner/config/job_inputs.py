"""What a job needs on disk, found before anything starts: each missing thing one Problem (exit 2, no traceback).

job=rollback needs a version to roll back to, job=serve_web a page bundle, and a training run a models folder it
can create or write, on a file system that is not full (else it would fail after training). Read with the
standard library and the repository's own rule (tfrun.tasks.tfserving.repository, no TensorFlow).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Iterator, Optional

from tfrun.tasks.core.problems import Problem

MIN_FREE_BYTES = 1 << 20  # below this a file system is full for an export (the digits mlp's alone is 222 kB)


def _rollback(config: Any) -> Iterator[Problem]:
    from tfrun.tasks.tfserving import repository

    r = config.rollback
    model = Path(r.base_path) / r.model_name
    try:
        repository.rollback_versions(model, r.to_version)
    except (FileNotFoundError, ValueError) as err:
        yield Problem("job", "rollback", f"a repository with a version to roll back to ({err})")


def _serve_web(config: Any) -> Iterator[Problem]:
    s = config.serve_web
    folder = Path(s.base_path) / s.model_name
    bundles = [b for b in folder.glob("[0-9]*.web") if (b / "index.html").is_file()] if folder.is_dir() else []
    if s.version is not None:
        bundles = [b for b in bundles if int(b.name.split(".")[0]) == int(s.version)]
    if not bundles:
        which = f"version {s.version}" if s.version is not None else "any version"
        yield Problem(
            "job",
            "serve_web",
            f"a page bundle to serve (none for {which} in {folder}: write one with `tfrun target=web`, "
            "or set serve_web.model_name / serve_web.version)",
        )


def unwritable(folder: Path) -> Optional[str]:
    """Why `folder` cannot be created or written (None when it can): its first existing ancestor decides."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return f"{folder}: no existing parent folder"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    free = shutil.disk_usage(probe).free
    if free < MIN_FREE_BYTES:  # a full disk: the export would fail after training
        return f"the file system of {probe} is full ({free:,} bytes free)"
    return None


def problems(config: Any) -> Iterator[Problem]:
    job = config.job.value
    if job == "rollback":
        yield from _rollback(config)
    elif job == "serve_web":
        yield from _serve_web(config)
    elif job == "train":
        why = unwritable(Path(config.models_dir) / config.model_name)
        if why:
            yield Problem("models_dir", config.models_dir, f"a folder exports can be written to ({why})")
