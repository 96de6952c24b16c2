"""The `tfrun` command: a Hydra app whose job is tfrun.runner.job.run_job.

Module level imports only Hydra, the schemas and --help's flags, so --help, --cfg and config errors answer
without loading TensorFlow. What only some command lines need is imported there: a sweep's override checks and
zygote (-m), the warm child (a single run), the config error's report (an error). `tfrun --cfg job` pays for
little more than a bare Hydra app does (bench/bench_cfg_job.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.errors import ConfigCompositionException, OverrideParseException
from omegaconf import DictConfig, OmegaConf

from tfrun.runner.config import help as help_text
from tfrun.tasks.core import hydra_adapter, schema, vertex_env
from tfrun.tasks.core.paths import CONFIG_PATH
from tfrun.tasks.core.problems import Problem

schema.register()
OmegaConf.register_new_resolver(
    "tfrun_add", lambda a, b: int(a) + int(b), replace=True
)  # see tfrun.runner.sweeps.optuna_resume


_job_started = False


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="config")
def _app(cfg: DictConfig) -> float | None:
    global _job_started
    _job_started = True
    from tfrun.runner.job import run_job

    return run_job(cfg)


def _conf_dir() -> Path:
    if CONFIG_PATH.startswith("pkg://"):
        from importlib.resources import files

        return Path(str(files("tfrun.conf")))
    return Path(CONFIG_PATH)


def _report_composition_error(exc: Exception) -> None:
    """A composition error raised before any job, in tfrun's format with exit 2 (Hydra prints its own text,
    which for a preset's unknown option names neither the preset nor the key). HYDRA_FULL_ERROR=1 keeps
    Hydra's traceback; any other error is Hydra's to report."""
    if _job_started or os.environ.get("HYDRA_FULL_ERROR") == "1":
        return
    from tfrun.runner.config import sweep_grammar

    refused = sweep_grammar.from_sweeper(exc, sys.argv[1:])  # e.g. interval() with the basic (grid) sweeper
    if refused:
        _report_problem(refused)
    if isinstance(exc, OverrideParseException):  # a run's override Hydra cannot read (a sweep's: before Hydra)
        unreadable = sweep_grammar.before_hydra(sys.argv[1:])
        if unreadable:
            _report_problem(unreadable)
    if not isinstance(exc, ConfigCompositionException):
        return
    from tfrun.runner.config import compose_errors

    compose_errors.report(exc, sys.argv[1:])
    raise SystemExit(2) from None


def _report_problem(problem: Problem) -> NoReturn:
    """One config problem in tfrun's format, exit 2."""
    from tfrun.runner.config import compose_errors

    sys.stderr.write(f"{compose_errors.HEADER}\n  - {problem}\n{compose_errors.FOOTER}\n")
    raise SystemExit(2) from None


def is_multirun(argv: list[str]) -> bool:
    """-m / --multirun or hydra.mode=MULTIRUN on the command line: a sweep, whose overrides are checked and whose
    zygote may start before Hydra. A single run, --cfg or --help pays neither."""
    for arg in argv:
        if arg in ("-m", "--multirun"):
            return True
        key, _, value = arg.lstrip("+").partition("=")
        if key == "hydra.mode" and value.removeprefix("RunMode.") in ("MULTIRUN", "2"):
            return True
    return False


def _version() -> str:
    """tfrun's installed version (Hydra's own --version would print Hydra's)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tfrun")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def main() -> None:
    """Entry point. Hydra reports composition errors with exit 1; tfrun makes them 2 (bad config)."""
    if "--version" in sys.argv[1:]:  # answered before any composition or warm child
        print(f"tfrun {_version()}")
        return
    if help_text.wants_help(sys.argv[1:]):
        print(help_text.render(_conf_dir(), sys.argv[1:]))
        return
    if os.environ.get(vertex_env.PROJECT_ENV) and vertex_env.inside_vertex():  # the user's staged project
        from tfrun.tasks.vertex.replica_project import enter

        enter(os.environ[vertex_env.PROJECT_ENV])
    if vertex_env.in_trial():  # Vertex appends a tuning trial's values as --<parameter id>=<value>
        sys.argv[1:] = vertex_env.trial_overrides(sys.argv[1:], hydra_adapter.hydra_flags())
    argv = sys.argv[1:]
    single_run = hydra_adapter.is_single_run(argv)
    if is_multirun(argv):  # only a sweep pays for these before Hydra (`tfrun --cfg job` and a run's start-up do not)
        from tfrun.runner.config import sweep_grammar

        mistake = sweep_grammar.before_hydra(argv)  # a sweep override's mistake, named in one line
        if mistake:
            _report_problem(mistake)
        from tfrun.runner.processes import zygote

        zygote.start_early(argv)  # a plain local sweep's zygote imports TensorFlow while Hydra composes
    if single_run:
        from tfrun.runner.processes import warm_child

        warm_child.start(argv)  # TensorFlow's import in the child overlaps Hydra's composition
    try:
        with (
            hydra_adapter.errors_first_to(_report_composition_error),
            hydra_adapter.compose_patched(single_run),
        ):
            _app()
    except SystemExit as exc:
        from tfrun.runner.sweeps.callback import SweepFailed

        if exc.code == 1 and not _job_started and not isinstance(exc, SweepFailed):
            raise SystemExit(2) from None
        raise
    except KeyboardInterrupt:  # Ctrl-C during a sweep: the running job's record already says interrupted
        from tfrun.runner.sweeps import interruption

        interruption.interrupted()  # a sweep's records left running finished, the summary of what finished
        print("[tfrun] interrupted", flush=True)
        raise SystemExit(130) from None
    finally:
        if single_run:
            warm_child.discard()


if __name__ == "__main__":  # `python -m tfrun.runner.cli`: how a Vertex job's prebuilt image runs tfrun
    main()
