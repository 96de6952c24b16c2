"""What a sweep dir held when this invocation's multirun began, so a restarted sweep (a continued Optuna study, a
resumed grid) tells its own jobs from an earlier session's.

Each job folder and record is remembered by its file identity (inode, modification time in ns, size), not compared
with a clock: a record the previous session wrote a moment before this one started is still the previous session's
(a file's time may lag the clock by a timer tick, and a margin for that claimed such a record as this run's), and
one this invocation rewrote (a resumed job's) has a new identity.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

_Identity = tuple[int, int, int]


def _identity(path: Path) -> _Identity | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


@dataclass(frozen=True)
class Before:
    """The sweep dir's job folders and their records as they were; `Before()` is an empty (new) sweep dir."""

    found: dict[str, _Identity] = field(default_factory=dict)  # path relative to the sweep dir -> identity

    @classmethod
    def of(cls, sweep_dir: Path, record_name: str) -> Before:
        found: dict[str, _Identity] = {}
        try:
            entries = list(os.scandir(sweep_dir))
        except OSError:
            return cls()
        for entry in entries:
            if not entry.is_dir():
                continue
            for path in (Path(entry.path), Path(entry.path) / record_name):
                identity = _identity(path)
                if identity is not None:
                    found[str(path.relative_to(sweep_dir))] = identity
        return cls(found)

    def is_new(self, sweep_dir: Path, path: Path) -> bool:
        """`path` (a job folder or a record in one) was made or changed since: this invocation's."""
        identity = _identity(path)
        return identity is not None and self.found.get(str(path.relative_to(sweep_dir))) != identity
