"""job=promote: an alias (a label) moves to a version of a model, in the registry the source belongs to.

One job for one idea, used by several registries: MLflow's aliases (`source=models:/NAME/VERSION`), and any
registry added to PROMOTERS. Each entry says which sources it handles (from the source's form and the
target), which offline rules it adds to validation, what it checks in the runner before anything runs (the
version exists, the server answers), and the function the `promote` step calls in the child. A source no entry
handles is exit 2 before anything runs, naming what each one accepts.

The step's result holds a `promotion` section (the runner copies it into the record): the registry, the model,
the alias, the version it now points at and the one it pointed at before, so a promote is undone by promoting
that one. This module imports nothing heavy: the runner reads PROMOTERS while it validates.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Iterator, Optional

from tfrun.tasks.core.problems import Problem, PromoteError  # noqa: F401 (PromoteError: re-exported)
from tfrun.tasks.registry import config as mlflow_registry
from tfrun.tasks.tfserving import promote as tfserving_promote
from tfrun.tasks.vertex import promote as vertex_promote


@dataclass(frozen=True)
class Promoter:
    """One registry's way of moving an alias, from two modules of the same shape. `rules` is imported as the runner
    validates (no SDK): `ACCEPTS` (the sources it handles, for the message when none handles a source),
    `handles(source, target name)`, `problems(config)` (offline rules: the alias's form, ...). `steps` (default: the
    rules' module) is imported only when called: `check(config)` in the runner before anything runs (PromoteError:
    exit 2) and `promote_step(cfg, ctx)` in the child (a step result with `summary` and `promotion`)."""

    name: str  # the registry, as the record's promotion.registry says it
    rules: ModuleType
    steps: str = ""  # a module name

    @property
    def accepts(self) -> str:
        return str(self.rules.ACCEPTS)

    def handles(self, source: str, target: str) -> bool:
        return bool(self.rules.handles(source, target))

    def problems(self, config: Any) -> Iterator[Problem]:
        return self.rules.problems(config)

    def step(self, function: str) -> Callable[..., Any]:
        """`check` or `promote_step` of the steps' module."""
        return getattr(importlib.import_module(self.steps or self.rules.__name__), function)


PROMOTERS: list[Promoter] = [
    Promoter("mlflow", mlflow_registry, steps="tfrun.tasks.registry.steps"),  # its rules pure, its steps MLflow's
    Promoter("vertex", vertex_promote),
    Promoter("tfserving", tfserving_promote),
]


def accepted() -> str:
    """What job=promote's source can be, one phrase per promoter."""
    return "; ".join(p.accepts for p in PROMOTERS)


def for_source(source: Any, target: str) -> Optional[Promoter]:
    """The promoter that handles this source with this target, or None."""
    text = str(source or "").strip()
    return next((p for p in PROMOTERS if text and p.handles(text, target)), None)


def check(config: Any) -> None:
    """The runner's check before the record is written (a version that exists, a server that answers)."""
    promoter = for_source(config.source, config.target.name)
    if promoter is not None:
        promoter.step("check")(config)


def step(cfg: Any, ctx: Any) -> dict[str, Any]:
    """The `promote` step: the source's promoter moves the alias and says from which version to which."""
    promoter = for_source(cfg.source, str(cfg.target.name))
    if promoter is None:  # validation refused it already; a config edited by hand in between
        raise PromoteError(f"source={cfg.source} target={cfg.target.name}: no registry promotes it ({accepted()})")
    return promoter.step("promote_step")(cfg, ctx)
