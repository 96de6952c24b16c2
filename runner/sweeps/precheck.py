"""Before a grid sweep launches: a config problem that every one of its jobs has stops it with exit 2.

Each job would report it anyway, but only after the sweep started (a Vertex tuning job submitted, a
SLURM allocation queued). Hydra's basic sweeper composes every job's config before launching a
batch (`validate_batch_is_legal`); this composes the same configs the same way (`load_sweep_config`) and runs
tfrun's validation on each. Jobs are checked in order and the check stops at the first valid one,
so a sweep that can run costs one composition; a problem is reported only if every job has it.
Sweepers that choose their jobs while they run (Optuna) are not pre-checked: their jobs are not
known in advance, and each rejected trial fails fast (its record says why).
"""

from __future__ import annotations

from omegaconf import DictConfig, open_dict

from tfrun.tasks.core import hydra_adapter
from tfrun.tasks.core.problems import ConfigError, Problem


def planned_jobs(config: DictConfig) -> list[list[str]] | None:
    """Every job's overrides, as the basic sweeper will launch them; None for other sweepers."""
    if not hydra_adapter.is_basic_sweeper(config.hydra.sweeper):
        return None
    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    return hydra_adapter.basic_sweep_jobs([*params, *config.hydra.overrides.task])


def shared_problems(config: DictConfig) -> list[Problem]:
    """The problems every planned job has ([] as soon as one job is valid, or when jobs are not known); an override
    the grid sweeper refuses (`interval()`) is the one problem."""
    try:
        jobs = planned_jobs(config)
    except Exception as exc:  # Hydra's basic sweeper refusing an override kind (a HydraException)
        from tfrun.runner.config.sweep_grammar import from_sweeper

        params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
        refused = from_sweeper(exc, [*params, *config.hydra.overrides.task])
        if refused is None:
            raise
        return [refused]
    if not jobs:
        return []
    from tfrun.runner.config import dirs as config_dirs
    from tfrun.runner.config.validate import validate

    shared: dict[str, Problem] | None = None
    with hydra_adapter.sweep_job_composer(config) as compose:
        for overrides in jobs:
            job_cfg = compose(overrides)  # and HydraConfig says the job's own choices, as the launcher sets them
            sources = config_dirs.command_line_dirs(job_cfg.hydra)
            with open_dict(job_cfg):
                del job_cfg["hydra"]
            try:
                validate(job_cfg, multirun=True, user_config_dirs=sources)
                return []
            except ConfigError as err:
                found = {str(p): p for p in err.problems}
                shared = found if shared is None else {k: v for k, v in shared.items() if k in found}
            if not shared:
                return []
    return list((shared or {}).values())
