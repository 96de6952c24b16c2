"""Hydra callback: check a grid before it launches; summarise every multirun when it ends (table, best line,
sweep.csv/json/png) and make its exit code say whether every job succeeded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from tfrun.runner.sweeps.before import Before


class SweepFailed(SystemExit):
    """Exit 1 after a multirun's summary: some of its jobs failed (scripts and CI read the exit code)."""


class SweepSummary(Callback):
    before = Before()  # what the sweep dir held when this invocation's multirun began (an earlier session's jobs)

    @staticmethod
    def _stop_reusing() -> None:
        """Replaced, for a grid, by what ends its jobs' composition reuse (hydra_adapter.compose_each_grid_job_once)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from tfrun.runner.sweeps.optuna_sweeper import OptunaSweeper
        from tfrun.runner.sweeps.precheck import shared_problems
        from tfrun.tasks.core import hydra_adapter

        hydra_adapter.register_plugin(OptunaSweeper)  # Hydra makes the sweeper next, from hydra.sweeper._target_

        from tfrun.runner.records.record import RECORD_NAME

        self.before = Before.of(Path(config.hydra.sweep.dir), RECORD_NAME)

        problems = shared_problems(config)
        if problems:
            from tfrun.runner.job import CONFIG_ERROR_EXIT, report_config_error
            from tfrun.tasks.core.problems import ConfigError

            report_config_error(
                ConfigError(problems), "invalid configuration in every job of the sweep (nothing was launched)"
            )
            raise SystemExit(CONFIG_ERROR_EXIT)
        from tfrun.runner.sweeps import interruption
        from tfrun.runner.sweeps.precheck import planned_jobs

        jobs = planned_jobs(config)
        if jobs:
            self._stop_reusing = hydra_adapter.compose_each_grid_job_once(config, jobs)
        interruption.begin(config, self.before)
        from tfrun.runner.processes import zygote
        from tfrun.runner.sweeps.summary import preload_plotting

        preload_plotting()

        if _trains_here(config):
            launcher = config.hydra.get("launcher") or {}
            joblib = "joblib" in str(launcher.get("_target_", "")).lower()
            zygote.start_for_sweep(int(launcher.get("n_jobs") or -1) if joblib else None)
        else:
            zygote.stop_for_sweep()  # one the command started early (zygote.start_early): these jobs do not use it

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from tfrun.runner.sweeps import interruption
        from tfrun.runner.sweeps.report import print_summary
        from tfrun.runner.sweeps.summary import unsuccessful

        interruption.end()
        self._stop_reusing()
        from tfrun.runner.processes import zygote

        zygote.stop_for_sweep()  # the jobs forked from it (unless TFRUN_NO_FORK=1) have ended
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        if print_summary(sweep_dir, self.before):
            from tfrun.runner import tracking

            tracking.after_sweep(config.get("track"), sweep_dir)
        failed, total = unsuccessful(sweep_dir, self.before)
        if failed:
            print(
                f"[tfrun] {len(failed)} of {total} jobs did not succeed: {', '.join(failed)}: exit 1"
                if total
                else f"[tfrun] {', '.join(failed)}: exit 1",
                flush=True,
            )
            raise SweepFailed(1)


def _trains_here(config: DictConfig) -> bool:
    """Whether the sweep's jobs run TensorFlow on this machine, so forking them from a warm one pays: not for a
    dry run (it imports no TensorFlow) nor for jobs that Vertex AI runs."""
    from tfrun.tasks.core.schema import option_class

    cloud = config.get("cloud") or {}
    return not cloud.get("dry_run", False) and not option_class("cluster", config.get("cluster")).on_vertex
