"""The config composed and validated in this process, as the `tfrun` command would in the same folder.

`tfrun.compose` returns it; `tfrun.run` and `tfrun.sweep` check it first, so a bad value raises
`ConfigError` in a fraction of a second, before any process (or TensorFlow) starts. The problems are the
`Problem`s the command prints as `  - ...` lines (exit 2 there): the same validation code, the same
composition (tfrun.tasks.core.hydra_adapter.composer), the same wording of Hydra's errors
(tfrun.runner.config.compose_errors).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfrun.tasks.core.problems import ConfigError, Problem

PROBLEM_LINE = re.compile(r"^([^=\s]+)=(.*) is not allowed: expected (.*)$")
NOT_AN_OVERRIDE = "a KEY=VALUE override as a string (config_dir= gives --config-dir; tfrun.sweep runs a multirun)"


@dataclass(frozen=True)
class Reported(Problem):
    """A problem known by the text tfrun prints for it (Hydra's own message, a check only the command makes)."""

    text: str = ""

    def __str__(self) -> str:
        return self.text


def check_overrides(overrides: Sequence[Any]) -> list[str]:
    """The overrides as the command's arguments; a flag or a non-string is a ConfigError."""
    bad = [o for o in overrides if not isinstance(o, str) or o.startswith("-")]
    if bad:
        raise ConfigError(Problem("overrides", o, NOT_AN_OVERRIDE) for o in bad)
    return list(overrides)


@contextlib.contextmanager
def composed(overrides: Sequence[str], config_dir: str | Path | None, cwd: Path, multirun: bool) -> Iterator[Any]:
    """The composed config (with its `hydra` node) in `cwd`, Hydra set up as in the command meanwhile."""
    import tfrun.runner.cli  # noqa: F401  (its module set-up, as the command's: schemas stored, resolvers added)
    from tfrun.runner.config import compose_errors
    from tfrun.tasks.core import hydra_adapter
    from tfrun.tasks.core.paths import CONFIG_PATH

    with contextlib.chdir(cwd):  # relative paths (--config-dir, the user's code) as the command in cwd sees them
        folder = None if config_dir is None else str(config_dir)
        if folder is not None and not os.path.isdir(folder):
            raise ConfigError(
                [Problem("config_dir", folder, f"a folder of your configs (--config-dir), relative to {cwd}")]
            )
        with hydra_adapter.compose_patched(single_run=False), hydra_adapter.composer(CONFIG_PATH, folder) as compose:
            try:
                cfg = compose(list(overrides), multirun)
            except Exception as exc:  # the command reports any composition error with exit 2
                raise ConfigError([_composition_problem(exc, list(overrides), compose_errors)]) from None
            yield cfg


def _composition_problem(exc: Exception, argv: list[str], compose_errors: Any) -> Problem:
    """The problem the command prints for a composition error (tfrun.runner.config.compose_errors.report)."""
    problem = compose_errors.problem_of(exc, argv)
    if problem is not None:
        return problem
    first, *rest = compose_errors.other_problem_lines(exc, argv) or [exc.__class__.__name__]
    return Reported("config", None, first, text=first + "".join(f"\n    {line.strip()}" for line in rest))


def validated(cfg: Any, multirun: bool = False) -> Any:
    """tfrun's validation of a composed config (as tfrun.runner.job.run_job calls it): the typed Config."""
    from omegaconf import OmegaConf, open_dict

    from tfrun.runner.config import deploy
    from tfrun.runner.config import dirs as config_dirs
    from tfrun.runner.config.validate import validate

    user_dirs = config_dirs.command_line_dirs(cfg.hydra)
    searchpath_dirs = config_dirs.searchpath_dirs(cfg.hydra)
    overrides = [str(o) for o in OmegaConf.select(cfg, "hydra.overrides.task", default=None) or []]
    with open_dict(cfg):
        del cfg["hydra"]
    deploy.prepare(cfg, overrides)  # job=deploy: its source checked, its data config adopted (as run_job does)
    return validate(cfg, multirun, user_dirs, searchpath_dirs)


def compose(*overrides: str, config_dir: str | Path | None = None, cwd: str | Path | None = None) -> Any:
    """The validated config of `tfrun OVERRIDES` (a `tfrun.tasks.core.schema.Config`), nothing run; ConfigError
    with every problem otherwise."""
    arguments = check_overrides(overrides)
    with composed(arguments, config_dir, Path(cwd or ".").resolve(), multirun=False) as cfg:
        return validated(cfg)


def check_sweep(overrides: Sequence[str], config_dir: str | Path | None, cwd: Path) -> None:
    """What `tfrun -m` checks before it launches: a problem every job of a grid shares is a ConfigError (one job's
    own problem is that job's failed record, as in the command)."""
    from tfrun.runner.sweeps.precheck import shared_problems

    with composed(overrides, config_dir, cwd, multirun=True) as cfg:
        problems = shared_problems(cfg)
    if problems:
        raise ConfigError(problems)


def reported_problems(lines: Sequence[str]) -> list[Problem]:
    """The problems in the command's own report (its `  - ` lines), for a check only the command makes (a
    tracking server that must answer): the command's text, kept as it printed it."""
    texts: list[list[str]] = []
    for line in lines:
        if line.startswith("  - "):
            texts.append([line[4:].rstrip()])
        elif line.startswith("    ") and texts:
            texts[-1].append(line.strip())
    if not texts:
        texts = [[line.rstrip() for line in lines if line.strip()] or ["tfrun exited with code 2"]]
    problems: list[Problem] = []
    for text in texts:
        named = PROBLEM_LINE.match(text[0])  # Problem's own format: key, value (as repr) and what is allowed
        key, value, allowed = named.groups() if named else ("config", None, text[0])
        problems.append(Reported(key, value, allowed, text="\n    ".join(text)))
    return problems
