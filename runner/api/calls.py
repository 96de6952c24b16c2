"""`tfrun.run` and `tfrun.sweep`: check the config here, run the real command, return its records.

The check is the command's own (tfrun.runner.api.compose), so a bad value raises ConfigError before any
process starts; the run is the command's own (tfrun.runner.api.command), so it makes the same child
processes and the same record as `tfrun OVERRIDES` typed in `cwd`.
"""

from __future__ import annotations

from pathlib import Path

from tfrun.runner.api.command import CommandError, Finished, run_command
from tfrun.runner.api.compose import check_overrides, check_sweep, composed, reported_problems, validated
from tfrun.runner.api.progress import Progress
from tfrun.runner.api.records import Record, load
from tfrun.runner.api.sweeps import Sweep
from tfrun.tasks.core.problems import ConfigError

CONFIG_ERROR_EXIT = 2  # tfrun.runner.job's exit code for a config problem


def _arguments(config_dir: str | Path | None, overrides: list[str]) -> list[str]:
    return [*(["--config-dir", str(config_dir)] if config_dir is not None else []), *overrides]


def _launch(args: list[str], where: Path, progress: Progress) -> Finished:
    try:
        return run_command(args, where, progress.update)
    finally:  # also after Ctrl-C: the line shows how the run ended
        progress.finish()


def _no_record(finished: Finished) -> Exception:
    """Why the command left no record: a config problem only it checks (exit 2), or something else."""
    if finished.exit_code == CONFIG_ERROR_EXIT:
        return ConfigError(reported_problems(finished.errors))
    return CommandError(finished.exit_code, finished.errors)


def run(*overrides: str, config_dir: str | Path | None = None, cwd: str | Path | None = None) -> Record | None:
    """Run one job as `tfrun OVERRIDES` (with `--config-dir config_dir`) in `cwd` would, and return its record.

    A run that fails or is stopped still returns its record (`.status`, `.error`); a bad config raises ConfigError
    before anything starts; Ctrl-C stops the run, leaves an `interrupted` record and re-raises KeyboardInterrupt.
    With `cloud.dry_run=true` the command prints what it would do and nothing runs: None.
    """
    arguments = check_overrides(overrides)
    where = Path(cwd or ".").resolve()
    with composed(arguments, config_dir, where, multirun=False) as cfg:
        config = validated(cfg)
    finished = _launch(_arguments(config_dir, arguments), where, Progress())
    if finished.records:
        return load(finished.records[-1], base=where)
    if finished.exit_code == 0 and config.cloud.enabled and config.cloud.dry_run:
        return None
    raise _no_record(finished)


def sweep(*overrides: str, config_dir: str | Path | None = None, cwd: str | Path | None = None) -> Sweep:
    """Run a multirun as `tfrun -m OVERRIDES` in `cwd` would (`model.n_hidden=1,2`: one job per value), and
    return its jobs' records, best job and summary table.

    A job that fails is one failed record (the sweep goes on, as in the command); a problem every job of a grid
    shares raises ConfigError before anything starts; Ctrl-C stops the running job (its record says
    `interrupted`), ends the sweep and re-raises KeyboardInterrupt.
    """
    arguments = check_overrides(overrides)
    where = Path(cwd or ".").resolve()
    check_sweep(arguments, config_dir, where)
    finished = _launch(["-m", *_arguments(config_dir, arguments)], where, Progress(sweep=True))
    if not finished.records and finished.exit_code != 0:
        raise _no_record(finished)
    return Sweep([load(path, base=where) for path in finished.records])
