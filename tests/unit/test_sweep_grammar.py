"""Sweep override mistakes read before Hydra starts and a sweeper's refusal, each one line (no TensorFlow, no
composition): the command's own checks are in tests/e2e/test_sweep_grammar.py."""

from __future__ import annotations

import pytest

from tfrun.runner.config.sweep_grammar import before_hydra, from_sweeper


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", "train.epochs=1,2", "model.n_hidden=range(1,4)", "hydra/launcher=joblib"],
        ["-m", "train.learning_rate=interval(0.001,0.1)", "sweep=optuna"],  # the sweeper decides (from_sweeper)
        ["-m", "sweep=optuna", "train.learning_rate=tag(log,interval(0.001,0.1))"],
        ["-m", "train.epochs=range(3,1,-1)", "+tuning.params.model.dropout={type:double,min:0.0,max:0.5}"],
        ["train.epochs=3", "--cfg", "job", "hydra.run.dir=runs/x"],
        ["train.epochs=range(1,5,0)"],  # no -m: Hydra says a sweep needs it
    ],
)
def test_good_command_lines_pass(argv: list[str]):
    assert before_hydra(argv) is None


@pytest.mark.parametrize(
    "token, words",
    [
        ("train.epochs=nosuch(1,2)", ["nosuch() is none"]),
        ("train.epochs=range(1,5,0)", ["step 0 never reaches stop"]),
        ("train.epochs=range(1.0,2.0,0.0)", ["step 0 never reaches stop"]),
        ("train.epochs=range(5,1)", ["gives no value"]),
        ("train.learning_rate=tag(log)", ["expected tag(TAG, …, SWEEP)"]),
        ("train.epochs=[1,2", ["override grammar reads", "override_grammar"]),
        ("train.learning_rate=tag(lg,interval(0.001,0.1))", ["expected tag(log, SWEEP)", "lg is none"]),
    ],
)
def test_each_mistake_is_one_line_naming_the_override(token: str, words: list[str]):
    problem = before_hydra(["-m", "train.verbose=0", token])
    key, _, value = token.partition("=")
    assert problem is not None and (problem.key, problem.value) == (key, value), problem
    line = str(problem)
    assert "\n" not in line and all(word in line for word in words), line


def test_the_basic_sweepers_refusal_names_the_interval():
    refusal = Exception("BasicSweeper does not support sweep type : INTERVAL_SWEEP")
    argv = ["-m", "model.n_hidden=1,2", "train.learning_rate=tag(log,interval(0.001,0.1))"]
    problem = from_sweeper(refusal, argv)
    assert problem is not None and problem.value == "tag(log,interval(0.001,0.1))" and "sweep=optuna" in str(problem)
    assert from_sweeper(Exception("something else"), argv) is None
