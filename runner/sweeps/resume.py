"""`tfrun-records resume SWEEP_DIR`: rerun only the grid jobs that are missing, failed or interrupted (pruned ones
with --pruned).

The job list is rebuilt from the sweep's own multirun.yaml with Hydra's
basic sweeper, so job numbers and overrides are exactly the original ones;
each rerun writes into its original job dir (the old record is kept under
attempts/).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tfrun.runner.records import legacy
from tfrun.runner.records.record import RECORD_NAME, load
from tfrun.tasks.core import hydra_adapter
from tfrun.tasks.core.record_io import PRUNED

RERUN_STATUSES = ("failed", "interrupted", "running")  # not "pruned": the sweep's pruner stopped it, on purpose


def planned_jobs(sweep_dir: Path) -> list[list[str]]:
    """Every job's overrides, in Hydra's job-number order."""
    from omegaconf import OmegaConf

    manifest = sweep_dir / "multirun.yaml"
    if not manifest.is_file():
        raise FileNotFoundError(
            f"{manifest} not found: resume needs a grid sweep made by tfrun -m "
            "(Optuna sweeps resume by running the same command again)"
        )
    config = OmegaConf.to_container(OmegaConf.load(manifest))
    return hydra_adapter.basic_sweep_jobs(legacy.sweep_overrides(config))


def jobs_to_rerun(sweep_dir: Path, pruned: bool = False) -> list[tuple[int, list[str], str]]:
    """(job number, overrides, why) for each job without a finished record: missing, failed, interrupted or stale;
    a pruned job only when `pruned` (its pruner judged it, so by default it counts as done)."""
    statuses = (*RERUN_STATUSES, PRUNED) if pruned else RERUN_STATUSES
    todo = []
    for number, overrides in enumerate(planned_jobs(sweep_dir)):
        path = sweep_dir / str(number) / RECORD_NAME
        if not path.is_file():
            todo.append((number, overrides, "missing"))
            continue
        status = load(path).get("status")
        if status in statuses:
            todo.append((number, overrides, status))
    return todo


def rerun(tfrun: list[str], sweep_dir: Path, number: int, overrides: list[str], quote) -> int:
    """Run one job again, alone, in its original job dir (overrides are already in Hydra syntax)."""
    from omegaconf import OmegaConf

    from tfrun.runner.config import dirs as config_dirs

    sources = config_dirs.from_multirun(OmegaConf.to_container(OmegaConf.load(sweep_dir / "multirun.yaml")))
    return subprocess.run(
        [*tfrun, *sources, *overrides, f"hydra.run.dir={quote(str(sweep_dir / str(number)))}"]
    ).returncode
