"""How a job of tfrun's Optuna sweeper finds its trial: a link file per job, passed on in the environment.

The sweeper writes `<sweep dir>/.tfrun-trials/<job number>.json` (storage, study, trial) before it launches the
job and removes it once the study was told. The job's runner reads its own (by job number, from Hydra's config)
and hands it to the job's process as TRIAL_ENV (tfrun.tasks.pruning), which reports each epoch to the trial. The
job's config, record hash and command line never mention the trial: `tfrun-records rerun` of a pruned trial trains
it fully, without Optuna.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tfrun.tasks.pruning import TRIAL_ENV

FOLDER = ".tfrun-trials"
SWEEPER = "tfrun.runner.sweeps.optuna_sweeper.OptunaSweeper"


def _path(sweep_dir: Path, number: int) -> Path:
    return sweep_dir / FOLDER / f"{number}.json"


def absolute_storage(storage: str) -> str:
    """A relative sqlite path as an absolute one (the job may run elsewhere than the launch folder)."""
    prefix = "sqlite:///"
    if storage.startswith(prefix) and not storage.startswith(prefix + "/"):
        return prefix + str(Path(storage[len(prefix) :]).resolve())
    return storage


def write(sweep_dir: Path, number: int, study: Any, trial: Any, storage: str) -> None:
    link = {
        "storage": absolute_storage(str(storage)),
        "study_name": study.study_name,
        "trial_number": trial.number,
        "trial_id": trial._trial_id,  # what optuna.trial.Trial(study, trial_id) takes in the job's process
    }
    path = _path(sweep_dir, number)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(link))
    tmp.replace(path)


def remove(sweep_dir: Path, number: int) -> None:
    path = _path(sweep_dir, number)
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()  # the last one
    except OSError:
        pass


def job_env(hydra_cfg: Any) -> dict[str, str]:
    """In a job of tfrun's Optuna sweeper that prunes: {TRIAL_ENV: the link}; otherwise nothing."""
    if str(hydra_cfg.sweeper.get("_target_", "")) != SWEEPER:
        return {}
    link = _path(Path(str(hydra_cfg.sweep.dir)), int(hydra_cfg.job.num))
    if not link.is_file():
        return {}
    return {TRIAL_ENV: link.read_text()}
