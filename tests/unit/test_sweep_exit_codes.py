"""A multirun's exit code says what happened: 2 when every job shares a config error (nothing launched),
1 after the summary when any job failed, 0 only when all succeeded (scripts and CI read it)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import offline_tfrun


def test_an_error_every_job_shares_exits_2_before_anything_is_launched(workdir: Path):
    log = workdir / "blocked.log"
    proc = offline_tfrun(["-m", "train.epochs=0", "model.n_neurons=8,16", "hydra.sweep.dir=multi"], workdir, log)
    message = proc.stdout + proc.stderr
    assert proc.returncode == 2, message
    for word in ("every job of the sweep", "nothing was launched", "train.epochs", ">= 1"):
        assert word in message, f"{word!r} missing from:\n{message}"
    assert "model.n_neurons" not in message, "only the shared problem is reported"
    assert not (workdir / "multi").exists(), "a job was launched"
    assert not log.exists(), log.read_text()


def test_jobs_that_each_fail_differently_all_run_then_the_sweep_exits_1(workdir: Path):
    log = workdir / "blocked.log"
    # Without the sweep's zygote: it imports TensorFlow by design, in its own process, as the sweep starts (it cannot
    # know that every job will be refused); what is checked here is that the jobs themselves import nothing heavy.
    proc = offline_tfrun(["-m", "train.epochs=0,-1", "hydra.sweep.dir=multi"], workdir, log, TFRUN_NO_FORK="1")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    statuses = {job: json.loads((workdir / "multi" / job / "record.json").read_text())["status"] for job in ("0", "1")}
    assert statuses == {"0": "failed", "1": "failed"}, statuses
    assert (workdir / "multi" / "sweep.json").is_file(), "the summary is written before the exit"
    assert "2 of 2 jobs did not succeed: job 0 (failed), job 1 (failed): exit 1" in proc.stdout, out
    assert "Traceback" not in out
    assert not log.exists(), log.read_text()
