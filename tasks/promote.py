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
from typing import Any, Callable, Iterator, Optional

from tfrun.tasks.core.problems import Problem, PromoteError  # noqa: F401 (PromoteError: re-exported)
from tfrun.tasks.core.schema import option_class
from tfrun.tasks.registry import config as mlflow_registry
from tfrun.tasks.tfserving import promote as tfserving_promote
from tfrun.tasks.vertex import promote as vertex_promote


@dataclass(frozen=True)
class Promoter:
    """One registry's way of moving an alias. `check` and `promote` are "module:function" names, imported only
    when called (the runner validates without the registries' SDKs)."""

    name: str  # the registry, as the record's promotion.registry says it
    accepts: str  # the sources it handles, for the message when none handles a source
    handles: Callable[[str, str], bool]  # (source, target name) -> whether this promoter moves this source's alias
    problems: Callable[[Any], Iterator[Problem]]  # offline rules on the validated Config (the alias's form, ...)
    check: Optional[str]  # (config) -> None in the runner before anything runs; raises PromoteError (exit 2)
    promote: str  # (cfg, ctx) -> step result with `summary` and `promotion`, in the child


def _mlflow_handles(source: str, target: str) -> bool:
    return mlflow_registry.is_reference(source) and not option_class("target", target).deploys


def _mlflow_problems(config: Any) -> Iterator[Problem]:
    why = mlflow_registry.alias_problem(config.alias)
    if why is not None:
        yield Problem("alias", config.alias, f"{mlflow_registry.ALIAS_RULE} (it is {why})")
    try:
        mlflow_registry.parse(str(config.source))
    except ValueError as err:
        yield Problem("source", config.source, f"{mlflow_registry.REFERENCE_FORMS} ({err})")
    if not mlflow_registry.mlflow_installed():
        yield Problem(
            "source", config.source, "the mlflow extra installed for models:/ sources: pip install 'tfrun[mlflow]'"
        )


PROMOTERS: list[Promoter] = [
    Promoter(
        name="mlflow",
        accepts="models:/NAME/VERSION or models:/NAME@ALIAS (MLflow's model registry, target=none)",
        handles=_mlflow_handles,
        problems=_mlflow_problems,
        check="tfrun.tasks.registry.steps:check",
        promote="tfrun.tasks.registry.steps:promote",
    ),
    Promoter(
        name="vertex",
        accepts=vertex_promote.ACCEPTS,
        handles=vertex_promote.handles,
        problems=vertex_promote.problems,
        check="tfrun.tasks.vertex.promote:check",
        promote="tfrun.tasks.vertex.promote:promote_step",
    ),
    Promoter(
        name="tfserving",
        accepts=tfserving_promote.ACCEPTS,
        handles=tfserving_promote.handles,
        problems=tfserving_promote.problems,
        check="tfrun.tasks.tfserving.promote:check",
        promote="tfrun.tasks.tfserving.promote:promote_step",
    ),
]


def accepted() -> str:
    """What job=promote's source can be, one phrase per promoter."""
    return "; ".join(p.accepts for p in PROMOTERS)


def for_source(source: Any, target: str) -> Optional[Promoter]:
    """The promoter that handles this source with this target, or None."""
    text = str(source or "").strip()
    return next((p for p in PROMOTERS if text and p.handles(text, target)), None)


def _load(name: str) -> Callable[..., Any]:
    module, function = name.split(":")
    return getattr(importlib.import_module(module), function)


def check(config: Any) -> None:
    """The runner's check before the record is written (a version that exists, a server that answers)."""
    promoter = for_source(config.source, config.target.name)
    if promoter is not None and promoter.check:
        _load(promoter.check)(config)


def step(cfg: Any, ctx: Any) -> dict[str, Any]:
    """The `promote` step: the source's promoter moves the alias and says from which version to which."""
    promoter = for_source(cfg.source, str(cfg.target.name))
    if promoter is None:  # validation refused it already; a config edited by hand in between
        raise PromoteError(f"source={cfg.source} target={cfg.target.name}: no registry promotes it ({accepted()})")
    return _load(promoter.promote)(cfg, ctx)
