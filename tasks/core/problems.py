"""Config problems: one bad value, named by key, with what is allowed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator


@dataclass(frozen=True)
class Problem:
    key: str
    value: Any
    allowed: str

    def __str__(self) -> str:
        return f"{self.key}={self.value!r} is not allowed: expected {self.allowed}"


class PromoteError(ValueError):
    """job=promote that cannot happen (no such version, a registry that does not answer): one line saying why.

    Raised by a promoter's check (tfrun.tasks.promote.PROMOTERS) in the runner, which reports it as a config error
    (exit 2); here, beside ConfigError, so every registry's module can raise it without importing tfrun.tasks.promote.
    """


class ConfigError(Exception):
    """Raised with every problem found, so one run reports them all."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def at_least(key: str, value: float, low: float) -> Iterator[Problem]:
    if value < low:
        yield Problem(key, value, f"a number >= {low}")


def between(
    key: str, value: float, low: float, high: float, *, low_inclusive: bool = False, high_inclusive: bool = False
) -> Iterator[Problem]:
    above = value >= low if low_inclusive else value > low
    below = value <= high if high_inclusive else value < high
    if not (above and below):
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        yield Problem(key, value, f"a number in {left}{low}, {high}{right}")


def one_of(key: str, value: Any, allowed: Iterable[Any]) -> Iterator[Problem]:
    allowed = tuple(allowed)
    if value not in allowed:
        yield Problem(key, value, "one of " + ", ".join(str(a) for a in allowed))


def did_you_mean(name: str, candidates: Iterable[str], *, prefix: str = "", n: int = 3) -> str:
    """' (did you mean train.epochs?)' for a misspelt key or name; '' when nothing is close."""
    import difflib

    close = difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.6)
    return " (did you mean " + " or ".join(f"{prefix}{c}" for c in close) + "?)" if close else ""
