"""A run dir Hydra made for a job that never started: only Hydra's own files inside, so it goes.

Hydra creates a job's folder (its `.hydra/` configs, the log file) before tfrun's job code runs; a job refused
before its record exists (an invalid config outside a sweep, a queued sweep job after Ctrl-C) would otherwise
leave a folder that looks like a run and holds none.
"""

from __future__ import annotations

import shutil
from pathlib import Path

HYDRA_ONLY = frozenset({".hydra", "tfrun.log"})


def remove_if_unstarted(run_dir: Path) -> None:
    """Remove run_dir if it holds nothing but Hydra's files."""
    try:
        if not run_dir.is_dir() or not {p.name for p in run_dir.iterdir()} <= HYDRA_ONLY:
            return
    except OSError:
        return
    shutil.rmtree(run_dir, ignore_errors=True)
