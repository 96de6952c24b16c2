"""Multirun sweeps through the real command: launchers, failures, resume, Optuna, summaries."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import BIN, as_foreground, command_env, read_record, tfrun

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
FAST = ["train.verbose=0", "train.callbacks.tensorboard=false"]


def records(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/record.json")}


def test_grid_with_joblib_summary_and_reproducible_best(workdir: Path):
    proc = tfrun(
        "-m",
        "train.learning_rate=0.001,0.01",
        "model.n_hidden=1,2",
        "train.epochs=2",
        "data.limit=800",
        *FAST,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweep.dir=multiruns/grid",
        cwd=workdir,
        timeout=600,
        check=True,
    )
    sweep = workdir / "multiruns/grid"
    jobs = records(sweep)
    assert sorted(jobs) == [str(i) for i in range(4)] and all(r["status"] == "succeeded" for r in jobs.values())
    # joblib's workers fork their jobs from a warm TensorFlow too (from one of the sweep's own when this test
    # process's zygote was started without their thread variables)
    assert all(r["child"]["start"] == "forked" for r in jobs.values()), [r["child"] for r in jobs.values()]
    versions = sorted(r["artifacts"][0]["version"] for r in jobs.values())
    assert versions == [1, 2, 3, 4], "parallel jobs get distinct export versions"
    for name in ("sweep.csv", "sweep.json", "sweep.png"):
        assert (sweep / name).stat().st_size > 0, name
    summary = json.loads((sweep / "sweep.json").read_text())
    metrics = [j["metric"] for j in summary["jobs"]]
    assert metrics == sorted(metrics, reverse=True) and summary["best"]["metric"] == max(metrics)
    assert "reproduce: tfrun " in proc.stdout
    command = summary["best"]["command"].split()[1:]
    alone = tfrun(*command, "hydra.run.dir=runs/best", cwd=workdir, check=True)
    assert read_record(workdir / "runs/best")["metrics"]["final"]["holdout_accuracy"] == summary["best"]["metric"], (
        alone.stdout
    )
    # A sweep's jobs export without the Keras layer traces (faster): `rerun --verify` of one still reproduces it, and
    # its signature answers as the rerun's (a single run, with the traces) does.
    best = summary["best"]["job"]
    verified = subprocess.run(
        [str(BIN / "tfrun-records"), "rerun", f"multiruns/grid/{best}", "--verify", "--run-dir", "runs/verified"],
        cwd=workdir,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert verified.returncode == 0 and "verified: identical metrics and weights" in verified.stdout, verified.stdout
    rerun = read_record(workdir / "runs/verified")["artifacts"][0]
    assert [r["artifacts"][0]["layer_traces"] for r in jobs.values()] == [False] * 4 and rerun["layer_traces"] is True
    _same_answers(workdir / jobs[str(best)]["artifacts"][0]["path"], workdir / rerun["path"])


def _same_answers(export: Path, reference: Path) -> None:
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).uniform(0, 16, size=(32, 8, 8)).astype("float32"))
    answers = [tf.saved_model.load(str(p)).signatures["serving_default"](pixels=x) for p in (export, reference)]
    assert sorted(answers[0]) == sorted(answers[1]) == ["probabilities"]
    np.testing.assert_array_equal(answers[0]["probabilities"].numpy(), answers[1]["probabilities"].numpy())


def _csv(path: Path, good: bool) -> None:
    rng = np.random.default_rng(0)
    y = np.arange(200) % 2
    x = rng.normal(size=(200, 4)) + y[:, None] * 2
    rows = [",".join(f"{v:.3f}" for v in row) + f",{label}" for row, label in zip(x, y)]
    if not good:  # a text feature: validation reads only the labels, so the loader meets it in the child
        rows[150] = "0.1,0.2,n/a,0.4,1"
    path.write_text("a,b,c,d,label\n" + "\n".join(rows) + "\n")


def test_failed_job_does_not_stop_the_sweep_and_resume_reruns_only_it(workdir: Path):
    _csv(workdir / "good.csv", True)
    _csv(workdir / "bad.csv", False)  # fails at run time in the child
    proc = tfrun(
        "-m",
        "data=files",
        "data.path=good.csv,bad.csv",
        "train.epochs=2",
        *FAST,
        "hydra.sweep.dir=multiruns/failing",
        cwd=workdir,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the sweep went on, and its exit code says one failed
    assert "1 of 2 jobs did not succeed: job 1 (failed): exit 1" in proc.stdout
    sweep = workdir / "multiruns/failing"
    jobs = records(sweep)
    assert jobs["0"]["status"] == "succeeded" and jobs["1"]["status"] == "failed"
    assert "bad.csv line 152: column 'c' holds 'n/a'" in jobs["1"]["error"]["message"]
    summary = json.loads((sweep / "sweep.json").read_text())
    failed = next(j for j in summary["jobs"] if j["job"] == "1")
    assert failed["status"] == "failed" and "DataFileError" in failed["error"]
    assert "job 1 failed: DataFileError" in proc.stdout

    _csv(workdir / "bad.csv", True)  # fix the data, then resume
    first_job_id = jobs["0"]["run_id"]
    resume = subprocess.run(
        [str(BIN / "tfrun-records"), "resume", "multiruns/failing"],
        cwd=workdir,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resume.returncode == 0, resume.stdout + resume.stderr
    assert "job 1 (failed)" in resume.stdout and "job 0" not in resume.stdout.split("job  status")[0]
    after = records(sweep)
    assert after["0"]["run_id"] == first_job_id, "the succeeded job was not rerun"
    assert after["1"]["status"] == "succeeded" and after["1"]["previous_attempts"] == [jobs["1"]["run_id"]]
    nothing = subprocess.run(
        [str(BIN / "tfrun-records"), "resume", "multiruns/failing"],
        cwd=workdir,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert nothing.returncode == 0 and "nothing to resume" in nothing.stdout


def _complete_trials(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet, or busy
        return 0


def test_optuna_sweep_killed_and_restarted_continues_its_study(workdir: Path):
    args = [
        str(BIN / "tfrun"),
        "-m",
        "sweep=optuna",
        "hydra.sweeper.n_trials=6",
        "train.epochs=1",
        "data.limit=200",
        *FAST,
        "hydra.sweep.dir=multiruns/study",
    ]
    sweep = workdir / "multiruns/study"
    first = subprocess.Popen(
        args,
        cwd=workdir,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=as_foreground,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and first.poll() is None:
        # the study, not the job records, says when a trial counts: Optuna is told after the job ends. With
        # n_jobs=1 job 3's folder also means trials 0-2 were told (seen once under load: this loop never read 3
        # complete trials from the study's file and the sweep ran to its end)
        if (sweep / "3").exists() or (sweep / "optuna.db").exists() and _complete_trials(sweep / "optuna.db") >= 3:
            break
        time.sleep(0.5)
    first.send_signal(signal.SIGINT)
    out, _ = first.communicate(timeout=120)
    assert first.returncode == 130, out
    done_before = _complete_trials(sweep / "optuna.db")
    assert 3 <= done_before < 6
    first_session = {job: r["run_id"] for job, r in records(sweep).items()}

    second = subprocess.run(args, cwd=workdir, env=command_env(), capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert _complete_trials(sweep / "optuna.db") == 6
    jobs = records(sweep)
    # a job interrupted after its record but before Optuna heard of it is re-run: >= 6 records
    assert sum(r["status"] == "succeeded" for r in jobs.values()) >= 6
    assert all(jobs[job]["run_id"] == run_id for job, run_id in first_session.items()), (
        "the restarted sweep numbered its jobs after the existing ones: no job dir was overwritten"
    )


def test_submitit_local_jobs_each_get_their_own_hardware(workdir: Path):
    tfrun(
        "-m",
        "hydra/launcher=submitit_local",
        "hardware.logical_devices=1,3",
        "train.epochs=1",
        *FAST,
        "hydra.sweep.dir=multiruns/submitit",
        cwd=workdir,
        timeout=600,
        check=True,
    )
    jobs = records(workdir / "multiruns/submitit")
    logical = {name: r["environment"]["devices"]["logical"] for name, r in jobs.items()}
    assert logical == {"0": ["/device:CPU:0"], "1": ["/device:CPU:0", "/device:CPU:1", "/device:CPU:2"]}
    assert all(r["status"] == "succeeded" for r in jobs.values())


def test_optuna_study_is_continued_only_with_the_settings_it_was_made_with(workdir: Path):
    """Same study name, another fixed override: exit 2 before any job, naming the difference and the ways out;
    the same settings with more trials continue it, and the summary says which jobs ran now."""
    base = ["-m", "sweep=optuna", "data.limit=200", *FAST, "hydra.sweeper.n_jobs=1"]
    sweep = workdir / "multiruns/optuna/digits_mlp"  # the default sweep dir follows the study name
    first = tfrun(*base, "hydra.sweeper.n_trials=2", "train.epochs=1", cwd=workdir, timeout=600, check=True)
    assert sorted(records(sweep)) == ["0", "1"]

    other = tfrun(*base, "hydra.sweeper.n_trials=2", "train.epochs=2", cwd=workdir, timeout=300)
    message = other.stdout + other.stderr
    assert other.returncode == 2, message
    for words in ("digits_mlp", "train.epochs=1", "train.epochs=2", "hydra.sweeper.study_name=", "optuna.db"):
        assert words in message, f"{words!r} missing from:\n{message}"
    assert "Traceback" not in message and "reproduce:" not in message
    assert sorted(records(sweep)) == ["0", "1"], "no job ran"

    space = tfrun(
        *base,
        "hydra.sweeper.n_trials=2",
        "train.epochs=1",
        "hydra.sweeper.params.model.n_hidden=range(1,2)",
        cwd=workdir,
        timeout=300,
    )
    assert space.returncode == 2 and "model.n_hidden" in space.stderr, space.stdout + space.stderr

    more = tfrun(*base, "hydra.sweeper.n_trials=3", "train.epochs=1", cwd=workdir, timeout=600, check=True)
    assert "1 job(s) ran now, 2 came from before" in more.stdout, more.stdout
    assert "2 job(s) ran now, 0 came from before" in first.stdout, first.stdout
    assert sorted(records(sweep)) == ["0", "1", "2"]
    assert all(r["config"]["train"]["epochs"] == 1 for r in records(sweep).values())


def _training(record_path: Path) -> bool:
    """The record says its job is running its train step (read while it may be replaced: atomic, but retried)."""
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return False
    return record["status"] == "running" and any(
        s["name"] == "train" and s["status"] == "running" for s in record["steps"]
    )


def test_ctrl_c_on_a_joblib_sweep_leaves_every_started_job_interrupted_and_prints_the_summary(workdir: Path):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) while both workers train: exit 130, each
    started job's record `interrupted` (not `running`), the queued third job never started, a summary, no
    traceback; resume would rerun all three."""
    sweep = workdir / "multiruns/joblib"
    proc = subprocess.Popen(
        [
            str(BIN / "tfrun"),
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "train.epochs=1000,1001,1002",
            *FAST,
            "hydra.sweep.dir=multiruns/joblib",
        ],
        cwd=workdir,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if sum(_training(p) for p in sweep.glob("*/record.json")) == 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the sweep ended before both jobs trained"
        time.sleep(1)
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, out
    jobs = records(sweep)
    assert sorted(jobs) == ["0", "1"], f"the queued job started: {sorted(jobs)}\n{out}"
    assert {job: r["status"] for job, r in jobs.items()} == {"0": "interrupted", "1": "interrupted"}, out
    assert "Traceback" not in out, out
    assert "best: no job succeeded" in out and "2 job(s) ran now, 0 came from before" in out, out
    assert (sweep / "sweep.json").is_file() and not (sweep / ".tfrun-stopping").exists()
    assert not (sweep / "2").exists(), "the queued job left a folder"
    from tfrun.runner.sweeps.resume import jobs_to_rerun

    assert [(n, why) for n, _, why in jobs_to_rerun(sweep)] == [(0, "interrupted"), (1, "interrupted"), (2, "missing")]
