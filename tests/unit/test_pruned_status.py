"""Every reader of records over hand-made `status: pruned` ones (no TensorFlow): a job the sweep's pruner stopped
is listed, shown, summarised, tracked and resumed as stopped on purpose, never as a failure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import command_env, make_record, run_cli, write
from tfrun.runner.records.resume import latest_unfinished
from tfrun.runner.sweeps import hparams
from tfrun.runner.sweeps.before import Before
from tfrun.runner.sweeps.resume import jobs_to_rerun
from tfrun.runner.sweeps.summary import collect, render, summarise, unsuccessful
from tfrun.tasks.core.record_io import PRUNED, STATUSES


def _pruned(run_id: str, overrides: list[str], **changes) -> dict:
    """A pruned job's record: two epochs of history, no final metrics (it never reached evaluate)."""
    return make_record(
        run_id=run_id,
        status=PRUNED,
        command={"argv": ["tfrun", "-m", *overrides], "overrides": overrides},
        metrics={"final": {}, "history": {"val_accuracy": [0.4, 0.41]}},
        pruned={"epoch": 2, "of_epochs": 10, "monitor": "val_accuracy", "value": 0.41, "pruner": "median"},
        **changes,
    )


def _grid(sweep: Path) -> Path:
    """A grid of three jobs as tfrun -m leaves it: 0 succeeded, 1 pruned, 2 failed; epochs 1, 0 and -1 (a rerun of
    jobs 1 or 2 stops at tfrun's validation, exit 2, before any training)."""
    write(sweep / "0", make_record(run_id="job-0", command={"argv": ["tfrun", "-m"], "overrides": ["train.epochs=1"]}))
    write(sweep / "1", _pruned("job-1", ["train.epochs=0"]))
    failed = make_record(
        run_id="job-2",
        status="failed",
        command={"argv": ["tfrun", "-m"], "overrides": ["train.epochs=-1"]},
        error={"type": "ValueError", "message": "boom"},
    )
    failed["metrics"]["final"] = {}
    write(sweep / "2", failed)
    manifest = {"hydra": {"overrides": {"task": ["train.epochs=1,0,-1"]}, "runtime": {"config_sources": []}}}
    (sweep / "multirun.yaml").write_text(json.dumps(manifest))
    return sweep


def test_pruned_is_a_status_of_its_own():
    assert PRUNED == "pruned" and PRUNED in STATUSES


def test_list_and_show_say_pruned(tmp_path: Path, capsys):
    write(tmp_path / "runs" / "p", _pruned("run-pruned", ["train.learning_rate=0.1"]))
    code, out, _ = run_cli(capsys, "list", str(tmp_path / "runs"))
    assert code == 0 and "run-pruned" in out and " pruned " in out
    code, out, _ = run_cli(capsys, "list", str(tmp_path / "runs"), "--json")
    assert code == 0 and json.loads(out)[0]["status"] == "pruned"
    code, out, _ = run_cli(capsys, "show", str(tmp_path / "runs" / "p"))
    assert code == 0 and "pruned (stopped early by the sweep's pruner: not a failure)" in out
    assert "at epoch 2 of 10 by the median pruner (val_accuracy 0.4100)" in out


def test_diff_reads_a_pruned_run(tmp_path: Path, capsys):
    write(tmp_path / "a", _pruned("run-a", ["train.learning_rate=0.1"]))
    write(tmp_path / "b", make_record(run_id="run-b"))
    code, out, err = run_cli(capsys, "diff", str(tmp_path / "a"), str(tmp_path / "b"))
    assert code == 1 and "holdout_accuracy" in out and "Traceback" not in out + err


def test_rerun_verify_of_a_pruned_run_is_exit_2_before_tfrun_starts(tmp_path: Path, capsys):
    write(tmp_path / "p", _pruned("run-pruned", ["train.learning_rate=0.1"]))
    code, out, err = run_cli(capsys, "rerun", str(tmp_path / "p"), "--verify")
    assert code == 2 and "was pruned" in err and "without --verify" in err
    assert not (tmp_path / "p" / "reruns").exists()


def test_sweep_summary_pruned_is_neither_best_nor_a_failure(tmp_path: Path, capsys):
    sweep = _grid(tmp_path / "grid")
    summary = summarise(sweep)
    assert {r.job: r.status for r in summary.rows} == {"0": "succeeded", "1": "pruned", "2": "failed"}
    assert summary.best is not None and summary.best.job == "0"
    failed, total = unsuccessful(sweep, Before())
    assert failed == ["job 2 (failed)"] and total == 3, "a pruned job does not fail the sweep"
    assert "job 1 pruned at epoch 2 of 10 by the median pruner (val_accuracy 0.4100)" in render(summary)
    jobs = json.loads((sweep / "sweep.json").read_text())["jobs"]
    assert {j["job"]: j["status"] for j in jobs}["1"] == "pruned"
    assert ",pruned," in (sweep / "sweep.csv").read_text()
    code, out, _ = run_cli(capsys, "sweep", str(sweep))
    assert code == 0 and "pruned" in out


def test_hparams_session_of_a_pruned_job_is_not_a_failure(tmp_path: Path):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import api_pb2, metadata

    sweep = _grid(tmp_path / "grid")
    hparams.write(collect(sweep))

    def end_status(job: str) -> int:
        [events] = list((sweep / job).glob("events.out.tfevents.*"))
        for event in EventFileLoader(str(events)).Load():
            for value in event.summary.value:
                if value.tag == metadata.SESSION_END_INFO_TAG:
                    return metadata.parse_session_end_info_plugin_data(value.metadata.plugin_data.content).status
        raise AssertionError(f"no session end in job {job}")

    assert end_status("1") == api_pb2.STATUS_UNKNOWN
    assert end_status("0") == api_pb2.STATUS_SUCCESS and end_status("2") == api_pb2.STATUS_FAILURE


def test_mlflow_pruned_run_is_killed_not_failed_and_its_sweep_finished(tmp_path: Path, monkeypatch):
    pytest.importorskip("mlflow")
    from tfrun.runner.tracking import mlflow_log

    sweep = tmp_path / "grid"
    write(sweep / "0", make_record(run_id="job-0", command={"argv": ["tfrun", "-m"], "overrides": ["a=1"]}))
    write(sweep / "1", _pruned("job-1", ["a=2"]))
    monkeypatch.chdir(tmp_path)
    client = mlflow_log.client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow_log.experiment_id(client, "pruning")
    parent, sent = mlflow_log.log_sweep(client, experiment, sweep)
    assert sent == 2 and client.get_run(parent).info.status == "FINISHED"
    runs = {r.data.tags["tfrun.run_id"]: r for r in client.search_runs([experiment]) if "tfrun.run_id" in r.data.tags}
    assert runs["job-1"].info.status == "KILLED" and runs["job-1"].data.tags["tfrun.status"] == "pruned"
    assert runs["job-0"].info.status == "FINISHED"


def test_train_resume_does_not_continue_a_pruned_run(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, status, started in (("old", "failed", "2026-01-01"), ("new", PRUNED, "2026-01-02")):
        run_dir = tmp_path / "runs" / name
        (run_dir / "backup" / "chief").mkdir(parents=True)
        (run_dir / "backup" / "chief" / "checkpoint").write_text(name)
        (run_dir / "record.json").write_text(json.dumps({"resume_key": "k", "status": status, "started_at": started}))
    found = latest_unfinished("k", exclude=tmp_path / "runs" / "here")
    assert found is not None and found.name == "old"


def test_sweep_resume_leaves_pruned_jobs_unless_asked(tmp_path: Path):
    sweep = _grid(tmp_path / "grid")
    assert [(n, why) for n, _, why in jobs_to_rerun(sweep)] == [(2, "failed")]
    assert [(n, why) for n, _, why in jobs_to_rerun(sweep, pruned=True)] == [(1, "pruned"), (2, "failed")]


def _records(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tfrun.runner.records_cli", *args],
        cwd=cwd,
        env=command_env(TFRUN_NO_PRESTART="1"),
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_resume_cli_nothing_to_do_when_jobs_succeeded_or_were_pruned_and_reruns_them_with_pruned(tmp_path: Path):
    sweep = _grid(tmp_path / "grid")
    (sweep / "2" / "record.json").unlink()
    write(sweep / "2", make_record(run_id="job-2", command={"argv": ["tfrun", "-m"], "overrides": ["train.epochs=-1"]}))
    proc = _records("resume", "grid", cwd=tmp_path)
    assert proc.returncode == 0 and "succeeded or was pruned: nothing to resume" in proc.stdout, proc.stderr
    help_text = _records("resume", "--help", cwd=tmp_path).stdout
    assert "--pruned" in help_text and "not rerun unless --pruned" in " ".join(help_text.split())
    proc = _records("resume", "grid", "--pruned", cwd=tmp_path)
    assert "job 1 (pruned)" in proc.stdout and proc.returncode == 1, proc.stdout + proc.stderr  # its rerun: exit 2


def test_report_page_lists_a_pruned_run_with_a_style_of_its_own(tmp_path: Path, capsys):
    write(tmp_path / "runs" / "p", _pruned("run-pruned", ["train.learning_rate=0.1"]))
    write(tmp_path / "runs" / "s", make_record(run_id="run-ok"))
    code, out, _ = run_cli(capsys, "report", str(tmp_path / "runs"), "-o", str(tmp_path / "report.html"))
    assert code == 0, out
    page = (tmp_path / "report.html").read_text()
    data = json.loads(page.split('<script id="data" type="application/json">')[1].split("</script>")[0])
    assert {r["run_id"]: r["status"] for r in data["runs"]} == {"run-pruned": "pruned", "run-ok": "succeeded"}
    assert ".pruned {" in page and "byStatus" in page  # its own colour; the counts line tallies runs by status
