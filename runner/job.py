"""One tfrun job: validate -> plan -> record -> execute in a child -> finish the record.

This module validates; tfrun.runner.processes.execute plans, records and runs. It is imported (with the
record, supervisor and cloud modules) only once the config is valid, so a rejected config answers
without loading them.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from tfrun.runner.config import deploy, k8s, promote
from tfrun.runner.config import dirs as config_dirs
from tfrun.runner.config.validate import validate
from tfrun.runner.unstarted import remove_if_unstarted
from tfrun.tasks.core.problems import ConfigError

CONFIG_ERROR_EXIT = 2
FAILED_METRIC = float("nan")  # what a failed job returns to a sweeper (Optuna marks the trial failed)


def report_config_error(err: ConfigError, heading: str = "invalid configuration (nothing was run)") -> None:
    sys.stderr.write(f"tfrun: {heading}:\n")
    for problem in err.problems:
        sys.stderr.write(f"  - {problem}\n")
    sys.stderr.write("Fix the value(s) above; `tfrun --cfg job` prints the composed config.\n")


def _run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def _work_from_launch_folder(hydra_cfg: Any) -> None:
    """hydra.job.chdir=true put us in the run dir: go back, so every path means what it means without it.

    data.path, models_dir, --config-dir, the user's modules and the paths tfrun prints are all relative to
    the folder tfrun was started from (Hydra's runtime.cwd); the run dir is absolute. Hydra returns to its own
    folder after the job, as it does after any job it chdir'd for.
    """
    launch = hydra_cfg.runtime.cwd
    if launch and os.getcwd() != launch:
        os.chdir(launch)


def run_job(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    _work_from_launch_folder(hydra_cfg)
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    overrides = list(hydra_cfg.overrides.task)
    if multirun:
        from tfrun.runner.sweeps import interruption

        if interruption.stopping(Path(hydra_cfg.runtime.cwd) / hydra_cfg.sweep.dir):
            remove_if_unstarted(run_dir)  # a joblib worker's queued job, after Ctrl-C: it never started
            return FAILED_METRIC
    user_dirs = config_dirs.command_line_dirs(hydra_cfg)
    try:
        deploy.prepare(cfg, overrides)  # job=deploy: its source checked, its data config adopted
        k8s.prepare(cfg, overrides)  # job=k8s source=…: its source checked, its model name adopted
        config = validate(cfg, multirun, user_dirs, config_dirs.searchpath_dirs(hydra_cfg))
        _tracker_answers(config)
        promote.check(config)  # job=promote: the version exists and its registry answers, before the record
    except ConfigError as err:
        report_config_error(err)
        if multirun:  # the sweep goes on; this job's record says why it did not run
            from tfrun.runner.processes import execute

            execute.record_config_error(run_dir, _run_id(), err, overrides)
            return FAILED_METRIC
        remove_if_unstarted(run_dir)
        raise SystemExit(CONFIG_ERROR_EXIT) from None

    if config.cloud.enabled and config.cloud.dry_run:
        from tfrun.runner import dry_run

        print("\n".join(dry_run.lines(config, _run_id(), overrides, user_dirs)), flush=True)
        remove_if_unstarted(run_dir)
        return FAILED_METRIC
    from tfrun.runner.processes import execute  # see the module docstring: only for a valid config

    metric = execute.run(cfg, config, run_dir, _run_id(), overrides, multirun, user_dirs)
    return FAILED_METRIC if metric is None else metric


def _tracker_answers(config: Any) -> None:
    """track.required=true: the tracking server must answer before anything runs (ConfigError otherwise)."""
    track = config.track
    if not track.logs_to_mlflow or not track.required:
        return
    from tfrun.runner.tracking.mlflow_log import reachable

    why = reachable(track.tracking_uri, float(track.timeout_s))
    if why:
        from tfrun.tasks.core.problems import Problem

        raise ConfigError(
            [
                Problem(
                    "track.uri",
                    track.tracking_uri,
                    f"a tracking server that answers (track.required=true; it did not: {why}), or track.required=false",
                )
            ]
        )
