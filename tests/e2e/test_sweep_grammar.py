"""Sweep grammar mistakes through the real `tfrun -m`, as a new user makes them: exit 2, tfrun's config error with
one problem line naming the override and what accepts it, no traceback, nothing run (no job dir, no record). No
TensorFlow starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import tfrun

pytestmark = [pytest.mark.e2e]

MISTAKES = [
    pytest.param(
        ["train.learning_rate=interval(0.001,0.1)"],
        ["train.learning_rate='interval(0.001,0.1)'", "needs a sampling sweeper: sweep=optuna", "range()"],
        id="interval-with-the-grid-sweeper",
    ),
    pytest.param(
        ["train.learning_rate=tag(log,interval(0.001,0.1))", "model.n_hidden=1,2"],
        ["train.learning_rate='tag(log,interval(0.001,0.1))'", "sweep=optuna"],
        id="log-interval-with-the-grid-sweeper",
    ),
    pytest.param(
        ["train.learning_rate=tag(log,0.001,0.1)"],
        ["train.learning_rate='tag(log,0.001,0.1)'", "expected tag(TAG, …, SWEEP)", "tag(log, interval(0.001, 0.1))"],
        id="tag-without-a-sweep",
    ),
    pytest.param(
        ["sweep=optuna", "train.learning_rate=tag(lg,interval(0.001,0.1))"],
        ["train.learning_rate='tag(lg,interval(0.001,0.1))'", "expected tag(log, SWEEP)", "lg is none"],
        id="a-tag-no-sweeper-reads",
    ),
    pytest.param(
        ["train.epochs=nosuch(1,2)"],
        ["train.epochs='nosuch(1,2)'", "nosuch() is none", "choice(), range(), interval()"],
        id="unknown-function",
    ),
    pytest.param(
        ["train.epochs=range(a,b)"],
        ["train.epochs='range(a,b)'", "expected range(start, stop[, step]) with numbers"],
        id="range-of-words",
    ),
    pytest.param(
        ["train.epochs=range(1,5,0)"],
        ["train.epochs='range(1,5,0)'", "step 0 never reaches stop"],
        id="range-step-0",
    ),
    pytest.param(
        ["train.epochs=range(5,1)"],
        ["train.epochs='range(5,1)'", "gives no value"],
        id="empty-range",
    ),
    pytest.param(
        ["train.epochs=choice()"],
        ["train.epochs='choice()'", "expected choice(a, b, …) with at least one value"],
        id="empty-choice",
    ),
]


@pytest.mark.parametrize("overrides, words", MISTAKES)
def test_a_sweep_grammar_mistake_is_one_line_and_exit_2(workdir: Path, overrides: list[str], words: list[str]):
    proc = tfrun("-m", *overrides, "hydra.sweep.dir=multi", cwd=workdir, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output and proc.stdout == "", output
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("tfrun: invalid configuration"), output
    problem = lines[1]
    assert problem.startswith("  - ") and " is not allowed: expected " in problem, output
    for word in words:
        assert word in problem, f"{word!r} missing from {problem!r}"
    assert not (workdir / "multi").exists() or not list((workdir / "multi").glob("*/record.json"))
