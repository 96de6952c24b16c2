"""`train.resume=true`: continue the latest unfinished run of the same config from its backup.

Runs are matched by `resume_key`, the config hash without train.resume
itself, among the records under ./runs and ./multiruns. The backup is
copied, not moved, so the earlier run dir stays as it was.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

from tfrun.runner.records.record import find_all, load
from tfrun.tasks.core.record_io import resume_key  # noqa: F401 (the key's home: records of any version compute it)

SEARCH_DIRS = ("runs", "multiruns")
UNFINISHED = ("failed", "interrupted")  # not "pruned": the sweep's pruner ended it on purpose, it is not resumed


def latest_unfinished(key: str, exclude: Path) -> Optional[Path]:
    """The run dir of the newest failed/interrupted run with this key and a backup to resume from."""
    dirs = [d for d in SEARCH_DIRS if Path(d).is_dir()]
    candidates = []
    for path in find_all(dirs):
        run_dir = path.parent
        if run_dir.resolve() == exclude.resolve():
            continue
        try:
            record = load(path)
        except (OSError, ValueError):
            continue
        backup = run_dir / "backup"
        if (
            record.get("resume_key") == key
            and record.get("status") in UNFINISHED
            and backup.is_dir()
            and any(backup.iterdir())
        ):
            candidates.append((record.get("started_at", ""), run_dir))
    return max(candidates)[1] if candidates else None


def adopt_backup(source_run: Path, run_dir: Path) -> None:
    """Copy an earlier run's backup into this run dir, where the training callbacks look for it."""
    target = run_dir / "backup"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source_run / "backup", target)
