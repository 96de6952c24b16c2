"""What a model registry reference and an alias are, checked in pure Python before anything connects.

`models:/NAME/VERSION` and `models:/NAME@ALIAS` are MLflow's own URIs for a registered model's version. An
alias follows MLflow's rules (mlflow.utils.validation: letters, digits, `_` and `-`, at most 255 characters,
not `latest` and not `v<digits>`, which MLflow reserves), so a bad one is exit 2 here, not an error from the
server after the run started.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from tfrun.tasks.core.problems import Problem
from tfrun.tasks.core.schema import option_class
from tfrun.tasks.core.schema.track import LOCAL_STORE

PREFIX = "models:/"
ALIAS_CHARS = re.compile(r"^[\w\-]+$", re.ASCII)
RESERVED_VERSION_ALIAS = re.compile(r"^[vV]\d+$")
MAX_ALIAS = 255
URI_ENV = "MLFLOW_TRACKING_URI"
ALIAS_RULE = (
    "an MLflow alias: letters, digits, '_' and '-', at most 255 characters, not 'latest' and not v<digits> "
    "(MLflow reserves them), e.g. champion"
)
REFERENCE_FORMS = "models:/NAME/VERSION or models:/NAME@ALIAS"
ACCEPTS = f"{REFERENCE_FORMS} (MLflow's model registry, target=none)"  # job=promote's sources (tfrun.tasks.promote)


@dataclass(frozen=True)
class Reference:
    """A parsed `models:/…` reference: a registered model and either a version number or an alias."""

    given: str
    name: str
    version: Optional[int] = None
    alias: Optional[str] = None


def is_reference(source: Any) -> bool:
    return isinstance(source, str) and source.strip().startswith(PREFIX)


def alias_problem(alias: Any) -> Optional[str]:
    """Why `alias` is no MLflow alias, or None when it is one."""
    if not isinstance(alias, str) or not alias:
        return "empty"
    if len(alias) > MAX_ALIAS:
        return f"longer than {MAX_ALIAS} characters"
    if not ALIAS_CHARS.match(alias):
        return "characters other than letters, digits, '_' and '-'"
    if alias.lower() == "latest" or RESERVED_VERSION_ALIAS.match(alias):
        return "reserved by MLflow"
    return None


def parse(given: str) -> Reference:
    """`models:/NAME/VERSION` or `models:/NAME@ALIAS`; ValueError naming the form otherwise."""
    text = given.strip()
    rest = text[len(PREFIX) :] if text.startswith(PREFIX) else ""
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        why = alias_problem(alias)
        if name and "/" not in name and why is None:
            return Reference(text, name, alias=alias)
        if name and "/" not in name:
            raise ValueError(f"{text}: the alias {alias!r} is not an MLflow alias ({why})")
    else:
        name, _, version = rest.rpartition("/")
        if name and "/" not in name and version.isdigit() and int(version) > 0:
            return Reference(text, name, version=int(version))
    raise ValueError(f"{text} is not {REFERENCE_FORMS} (VERSION a number from 1)")


def mlflow_installed() -> bool:
    """Whether mlflow can be imported, found without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec("mlflow") is not None
    except (ImportError, ValueError):
        return False


def registry_uri(track: Any) -> str:
    """The MLflow store the registry lives in: track=mlflow's (track.uri, else the local store), else
    MLFLOW_TRACKING_URI, else the local store in the launch folder (track=mlflow's default)."""
    if track is not None and option_class("track", track).logs_to_mlflow:
        return str(getattr(track, "uri", None) or LOCAL_STORE)
    return os.environ.get(URI_ENV) or LOCAL_STORE


def timeout_s(track: Any) -> float:
    """Each registry request's limit: track.timeout_s with track=mlflow, else track=mlflow's default."""
    return float(getattr(track, "timeout_s", None) or 5.0)


# ------------------------------------------------------------------ job=promote's offline rules (tfrun.tasks.promote)
def handles(source: str, target: str) -> bool:
    """A models:/ reference with a target that deploys nothing: the alias moves in MLflow's registry."""
    return is_reference(source) and not option_class("target", target).deploys


def problems(config: Any) -> Iterator[Problem]:
    """The alias is an MLflow alias, the source a reference, and mlflow is installed to reach the registry."""
    why = alias_problem(config.alias)
    if why is not None:
        yield Problem("alias", config.alias, f"{ALIAS_RULE} (it is {why})")
    try:
        parse(str(config.source))
    except ValueError as err:
        yield Problem("source", config.source, f"{REFERENCE_FORMS} ({err})")
    if not mlflow_installed():
        yield Problem(
            "source", config.source, "the mlflow extra installed for models:/ sources: pip install 'tfrun[mlflow]'"
        )
