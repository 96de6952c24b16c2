"""Sweep summaries from hand-made records: order, best job, reproduce line, files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tfrun.runner.sweeps.before import Before
from tfrun.runner.sweeps.summary import collect, render, sessions, summarise, swept, unsuccessful


def _job(
    sweep: Path,
    job: str,
    status: str,
    overrides: list[str],
    metric: float | None,
    name: str = "holdout_accuracy",
    error: dict | None = None,
) -> None:
    (sweep / job).mkdir(parents=True, exist_ok=True)
    record = {
        "status": status,
        "seconds": 1.5,
        "command": {"overrides": overrides},
        "config": {"optimized_metric": name},
        "metrics": {"final": {} if metric is None else {name: metric}},
        "error": error,
    }
    (sweep / job / "record.json").write_text(json.dumps(record))


def test_best_first_failures_last_and_reproduce_line(tmp_path: Path):
    _job(tmp_path, "0", "succeeded", ["train.learning_rate=0.001", "model.n_hidden=1", "train.epochs=3"], 0.91)
    _job(tmp_path, "1", "succeeded", ["train.learning_rate=0.01", "model.n_hidden=1", "train.epochs=3"], 0.97)
    _job(
        tmp_path,
        "2",
        "failed",
        ["train.learning_rate=0.1", "model.n_hidden=1", "train.epochs=3"],
        None,
        error={"type": "KeyError", "message": "boom"},
    )
    summary = summarise(tmp_path)
    assert [r.job for r in summary.sorted_rows()] == ["1", "0", "2"]
    assert summary.best_command() == "tfrun train.learning_rate=0.01 model.n_hidden=1 train.epochs=3"
    text = render(summary)
    assert "job 2 failed: KeyError: boom" in text and "best: job 1" in text
    assert "train.epochs" not in text.splitlines()[0], "only swept parameters get a column"
    rows = list(csv.DictReader(open(tmp_path / "sweep.csv")))
    assert [r["job"] for r in rows] == ["1", "0", "2"] and rows[2]["error"] == "KeyError: boom"
    assert json.loads((tmp_path / "sweep.json").read_text())["best"]["job"] == "1"
    assert (tmp_path / "sweep.png").stat().st_size > 1000


def test_loss_is_minimised(tmp_path: Path):
    _job(tmp_path, "0", "succeeded", ["a=1"], 0.3, name="holdout_loss")
    _job(tmp_path, "1", "succeeded", ["a=2"], 0.1, name="holdout_loss")
    summary = collect(tmp_path)
    assert not summary.maximize and summary.best.job == "1"


def test_hydra_overrides_left_out_of_the_reproduce_line(tmp_path: Path):
    _job(tmp_path, "0", "succeeded", ["sweep=optuna", "hydra.sweep.dir=x", "model.n_neurons=64"], 0.9)
    assert summarise(tmp_path).best_command() == "tfrun model.n_neurons=64"


def test_no_success_means_no_best(tmp_path: Path):
    _job(tmp_path, "0", "failed", ["a=1"], None, error={"type": "X", "message": "y"})
    summary = summarise(tmp_path)
    assert summary.best is None and "no job succeeded" in render(summary)


def test_swept_parameters():
    from tfrun.runner.sweeps.summary import Row

    rows = [
        Row("0", "succeeded", ["a=1", "b=2"], 1.0, {}, 1.0, None, "0"),
        Row("1", "succeeded", ["a=3", "b=2"], 1.0, {}, 1.0, None, "1"),
    ]
    assert swept(rows) == ["a"]


def test_the_exit_code_counts_only_this_invocations_jobs(tmp_path: Path):
    """A resumed sweep's earlier-session records (an interrupted job since re-run) do not fail it."""
    _job(tmp_path, "0", "interrupted", ["a=1"], None)  # written by an earlier session a moment ago
    _job(tmp_path, "1", "failed", ["a=1"], None, error={"type": "KeyError", "message": "boom"})
    before = Before.of(tmp_path, "record.json")
    _job(tmp_path, "1", "succeeded", ["a=1"], 0.9)  # re-run now: a new record in the earlier session's folder
    _job(tmp_path, "2", "failed", ["a=2"], None, error={"type": "KeyError", "message": "boom"})
    assert unsuccessful(tmp_path, before) == (["job 2 (failed)"], 2)
    assert sessions(tmp_path, before) == (2, 1)
    assert unsuccessful(tmp_path, Before()) == (["job 0 (interrupted)", "job 2 (failed)"], 3)


def test_a_tuning_job_that_failed_before_any_trial_is_named(tmp_path: Path):
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "record.json").write_text(json.dumps({"status": "failed", "job": "tune"}))
    assert unsuccessful(tmp_path, Before()) == (["the tuning job (failed)"], 0)
