"""Mistakes in a command line's sweep overrides as tfrun's config problems (exit 2, the override named with what
accepts it) instead of Hydra's text or a traceback.

Two moments: `before_hydra(argv)` reads a multirun's command line before Hydra composes anything (an override its
grammar cannot read, an unknown function, a function given the wrong arguments, a `range()` with step 0 or no values,
a tag no sweeper reads; tfrun.runner.cli calls it for -m / hydra.mode=MULTIRUN only, and for a single run once Hydra
has refused an override, so a run's start-up does not pay for parsing its overrides twice); the rest depends on the
sweeper, and `from_sweeper(exc, tokens)` names the override a sweeper refused (Hydra's basic
sweeper, which runs a grid, takes no `interval()`: it cannot sample). tfrun.runner.sweeps.precheck asks it before a
grid launches.
"""

from __future__ import annotations

import re
from typing import Iterable

from tfrun.tasks.core import hydra_adapter
from tfrun.tasks.core.problems import Problem

GRAMMAR_URL = "https://hydra.cc/docs/advanced/override_grammar/extended/"
FUNCTIONS = {  # what each of Hydra's override functions accepts, as a user would write it
    "choice": "choice(a, b, …) with at least one value",
    "range": "range(start, stop[, step]) with numbers and a step that is not 0 (stop excluded)",
    "interval": "interval(low, high) with two numbers (it samples: sweep=optuna)",
    "tag": "tag(TAG, …, SWEEP): tags, then one sweep, e.g. tag(log, interval(0.001, 0.1))",
    "glob": "glob(pattern) or glob(include=[…], exclude=[…]) over a group's options",
    "shuffle": "shuffle(a, b, …), shuffle(range(…)) or shuffle(choice(…))",
    "sort": "sort(a, b, …), sort(list=[…], reverse=true) or sort(range(…))",
}
CASTS = ("int", "float", "str", "bool", "json_str")
TAGS = ("log",)  # the tags tfrun's Optuna sweeper reads (a log scale); the basic sweeper reads none
GRID = "a value the basic sweeper of tfrun -m runs as a grid: a,b,c, choice(), range() or glob()"
_EVALUATING = re.compile(r"while evaluating '(\w+)\(")
_UNKNOWN = re.compile(r"Unknown function '(\w+)'")
_UNSUPPORTED = re.compile(r"does not support sweep type\s*:\s*(\w+)")


def override_tokens(argv: Iterable[str]) -> list[str]:
    """The command line's `key=value` words (flags and their values left out)."""
    return [a for a in argv if "=" in a and not a.startswith("-")]


def _problem(token: str, allowed: str) -> Problem:
    key, _, value = token.partition("=")
    return Problem(key, value, allowed)


def _unreadable(token: str, err: BaseException) -> Problem:
    """What is wrong with an override Hydra's grammar refused, and what its function accepts."""
    text = str(err)
    cause = str(err.__cause__).strip().splitlines()[0] if err.__cause__ and str(err.__cause__).strip() else ""
    unknown = _UNKNOWN.search(text)
    if unknown:
        known = ", ".join(f"{name}()" for name in FUNCTIONS)
        return _problem(
            token, f"one of Hydra's functions {known} or a cast {', '.join(CASTS)}: {unknown.group(1)}() is none"
        )
    called = _EVALUATING.search(text)
    if called and called.group(1) in FUNCTIONS:
        return _problem(token, f"{FUNCTIONS[called.group(1)]} (Hydra: {cause})")
    if called:
        return _problem(token, f"{called.group(1)}() with the arguments it takes (Hydra: {cause})")
    first = text.splitlines()[0] if text else type(err).__name__
    return _problem(token, f"a value Hydra's override grammar reads ({first}; {GRAMMAR_URL})")


def _range_problem(token: str) -> Problem | None:
    """A range() whose values cannot be listed (step 0) or that has none."""
    arguments = hydra_adapter.range_arguments(token)
    if arguments is None:
        return None
    start, stop, step = arguments
    if step == 0:
        return _problem(token, f"{FUNCTIONS['range']}: step 0 never reaches stop")
    if (stop - start) * step < 0:
        return _problem(token, f"{FUNCTIONS['range']}: from {start} to {stop} by {step} gives no value")
    return None


def _tag_problem(token: str) -> Problem | None:
    """A tag no sweeper reads (`tag(lg, interval(…))`): the sweepers would ignore it, and the search space with it."""
    unknown = sorted(hydra_adapter.sweep_tags(token) - set(TAGS))
    if not unknown:
        return None
    return _problem(
        token,
        f"tag({', '.join(TAGS)}, SWEEP): {', '.join(TAGS)} is the tag tfrun's sweepers read ({', '.join(unknown)} is none)",
    )


def before_hydra(argv: list[str]) -> Problem | None:
    """The first sweep override mistake of a command line; None when there is none."""
    from hydra.errors import OverrideParseException

    multirun = "-m" in argv or "--multirun" in argv
    for token in override_tokens(argv):
        try:
            problem = (_range_problem(token) or _tag_problem(token)) if multirun else None
            if not multirun:
                hydra_adapter.sweep_kind(token)  # readable at all (a sweep without -m is Hydra's to refuse)
        except OverrideParseException as err:
            return _unreadable(token, err)
        if problem:
            return problem
    return None


def from_sweeper(exc: BaseException, tokens: Iterable[str]) -> Problem | None:
    """A sweeper's refusal of an override kind (Hydra's basic sweeper: no interval()), naming the override."""
    unsupported = _UNSUPPORTED.search(str(exc))
    if not unsupported:
        return None
    kind = unsupported.group(1).removesuffix("_SWEEP").lower()
    for token in override_tokens(tokens):
        try:
            if hydra_adapter.sweep_kind(token) == kind:
                return _problem(token, f"{GRID}; {kind}() samples values, so it needs a sampling sweeper: sweep=optuna")
        except Exception:  # noqa: BLE001 - an unreadable override was reported before Hydra started
            continue
    return None
