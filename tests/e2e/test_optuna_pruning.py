"""tfrun's Optuna sweeper with a pruner, through the real command: a clearly bad learning rate is pruned, the job
stops after that epoch, its record, the summary and sweep.csv say `pruned`, the study knows, the sweep exits 0;
rerunning the pruned trial's command line trains it fully; pruner mistakes are exit 2 before any job."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.helpers import BIN, command_env, tfrun

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
FAST = ["train.verbose=0", "train.callbacks.tensorboard=false"]
EPOCHS = 3
# Two good and two hopeless learning rates on a grid whose order (seed 1) puts a good one in the first batch of two
# and a hopeless one in the second: the median pruner (1 finished trial needed) must stop that one at epoch 1 or 2.
SPACE = ["train.learning_rate=choice(0.3,0.0000001)", "model.n_neurons=choice(16,32)"]
FIXED = ["model.n_hidden=1", "train.optimizer=sgd", f"train.epochs={EPOCHS}", "data.limit=400"]


def _records(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/record.json")}


def test_median_pruner_prunes_a_bad_learning_rate_in_parallel_jobs(workdir: Path):
    proc = tfrun(
        "-m",
        "sweep=optuna",
        "sweep.pruner=median",
        "sweep.n_startup_trials=1",
        "sweep.n_warmup_steps=1",
        "hydra/sweeper/sampler=grid",
        "hydra.sweeper.sampler.seed=1",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_jobs=2",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *SPACE,
        *FIXED,
        *FAST,
        "hydra.sweep.dir=multiruns/pruned",
        cwd=workdir,
        timeout=900,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "did not succeed" not in out and "Traceback" not in out, out
    sweep = workdir / "multiruns/pruned"
    jobs = _records(sweep)
    assert sorted(jobs) == ["0", "1", "2", "3"], out
    statuses = {job: r["status"] for job, r in jobs.items()}
    pruned = [job for job, status in statuses.items() if status == "pruned"]
    assert pruned and set(statuses.values()) <= {"succeeded", "pruned"}, statuses
    for job in pruned:
        record = jobs[job]
        assert "0.3" not in " ".join(record["command"]["overrides"]), "a good learning rate was pruned"
        info = record["pruned"]
        assert 1 <= info["epoch"] < EPOCHS and info["monitor"] == "val_accuracy" and info["pruner"] == "median"
        assert len(info["reported"]) == info["epoch"] and info["value"] == info["reported"][-1]
        assert [s["name"] for s in record["steps"]][-1] == "train", "nothing after training runs"
        assert all(s["status"] == "succeeded" for s in record["steps"])
        assert record["artifacts"] == [] and record["error"] is None
        assert len(record["metrics"]["history"]["val_accuracy"]) == info["epoch"], "stopped at that epoch's end"
        assert "TFRUN_OPTUNA_TRIAL" not in json.dumps(record["config"])
    with open(sweep / "sweep.csv") as f:
        rows = {row["job"]: row["status"] for row in csv.DictReader(f)}
    assert rows == statuses
    summary = json.loads((sweep / "sweep.json").read_text())
    assert {j["job"]: j["status"] for j in summary["jobs"]} == statuses
    assert summary["best"]["job"] not in pruned
    with sqlite3.connect(sweep / "optuna.db") as conn:
        states = dict(conn.execute("select number, state from trials").fetchall())
    assert {str(n): s for n, s in states.items()} == {
        job: "PRUNED" if status == "pruned" else "COMPLETE" for job, status in statuses.items()
    }
    assert not (sweep / ".tfrun-trials").exists(), "every link file went once its trial was told"

    rerun = subprocess.run(
        [str(BIN / "tfrun-records"), "rerun", str(sweep / pruned[0])],
        cwd=workdir,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    again = [json.loads(p.read_text()) for p in (sweep / pruned[0]).glob("reruns/*/record.json")]
    assert again and again[0]["status"] == "succeeded" and "pruned" not in again[0], rerun.stdout
    assert len(again[0]["metrics"]["history"]["val_accuracy"]) == EPOCHS, "the rerun trained every epoch"


@pytest.mark.parametrize(
    "args, words",
    [
        (["sweep.pruner=medain"], ["sweep.pruner", "medain", "median"]),
        (["sweep.pruner=median", "optimized_metric=f1"], ["sweep.pruner", "optimized_metric=f1"]),
        (["sweep.pruner=median", "hydra.sweeper.storage=null"], ["hydra.sweeper.storage", "sweep.pruner=median"]),
        (["sweep.pruner=hyperband", "sweep.reduction_factor=1"], ["sweep.reduction_factor", "1"]),
        (["train.learning_rate=interval(0.1,0.01)"], ["train.learning_rate", "low < high"]),
    ],
)
def test_pruner_and_space_mistakes_are_exit_2_before_any_job(workdir: Path, args: list[str], words: list[str]):
    proc = tfrun("-m", "sweep=optuna", *args, "hydra.sweep.dir=multiruns/bad", cwd=workdir, timeout=120)
    message = proc.stdout + proc.stderr
    assert proc.returncode == 2, message
    for word in words:
        assert word in message, f"{word!r} missing from:\n{message}"
    assert "Traceback" not in message
    assert not list((workdir / "multiruns/bad").glob("*/record.json")), "no job ran"
