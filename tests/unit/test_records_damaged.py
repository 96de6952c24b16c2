"""Every `tfrun-records` command on a folder of good and damaged records, run as the command a person types:
no traceback, one line per damaged record naming its file and what is wrong, the others still handled,
and the exit codes of `tfrun-records --help` (no TensorFlow; resume's reruns stop at tfrun's validation)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import command_env, free_port, make_record, write
from tfrun.runner.records import reading

GOOD = make_record(run_id="good-a")
OTHER = make_record(run_id="good-b", started_at="2026-11-26T11:00:00.000+00:00")
OTHER["config"]["train"]["learning_rate"] = 0.01
GOOD_TEXT = json.dumps(GOOD, indent=2)


def _with(**changes: object) -> str:
    data = copy.deepcopy(GOOD)
    data.update(changes)
    return json.dumps(data)


DAMAGED = {  # run dir name -> the record.json text and what the line must say
    "truncated": (GOOD_TEXT[: len(GOOD_TEXT) // 2], "truncated JSON"),
    "not_object": ("[1, 2, 3]", "not a tfrun record (the JSON is a list, not an object)"),
    "steps_text": (_with(steps="train,export"), "steps is a string, expected a list"),
    "metrics_list": (_with(metrics=[0.5]), "metrics is a list, expected an object"),
    "status_number": (_with(status=3), "status is an integer, expected a string"),
}
SWEEP_DAMAGED = {"1": DAMAGED["truncated"], "2": DAMAGED["status_number"]}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/ with two good and five damaged records; multiruns/grid/, a grid sweep of 3 jobs (2 damaged)."""
    root = tmp_path_factory.mktemp("damaged")
    write(root / "runs" / "good_a", GOOD)
    write(root / "runs" / "good_b", OTHER)
    for name, (text, _) in DAMAGED.items():
        (root / "runs" / name).mkdir(parents=True)
        (root / "runs" / name / "record.json").write_text(text)
    make_grid(root / "multiruns" / "grid")
    return root


def make_grid(sweep: Path) -> None:
    """A grid sweep as tfrun -m leaves it: job 0 succeeded, jobs 1 and 2 with damaged records."""
    job = make_record(run_id="job-0", command={"argv": ["tfrun", "-m"], "overrides": ["train.epochs=1"]})
    write(sweep / "0", job)
    for number, (text, _) in SWEEP_DAMAGED.items():
        (sweep / number).mkdir(parents=True)
        (sweep / number / "record.json").write_text(text)
    # jobs 1 and 2 ask for train.epochs=0 and -1: a rerun stops at tfrun's validation (exit 2), no training
    manifest = {"hydra": {"overrides": {"task": ["train.epochs=1,0,-1"]}, "runtime": {"config_sources": []}}}
    (sweep / "multirun.yaml").write_text(json.dumps(manifest))


def records(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tfrun.runner.records_cli", *args],
        cwd=cwd,
        env=command_env(TFRUN_NO_PRESTART="1", **env),
        capture_output=True,
        text=True,
        timeout=240,
    )


def assert_named_once(proc: subprocess.CompletedProcess, damaged: dict[str, tuple[str, str]], under: str) -> None:
    """No traceback; each damaged record is exactly one line, naming its file and what is wrong."""
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output
    for name, (_, why) in damaged.items():
        path = f"{under}/{name}/record.json"
        lines = [line for line in output.splitlines() if path in line]
        assert len(lines) == 1, (path, output)
        assert why in lines[0], (why, lines[0])


def test_list_names_each_damaged_record_once_and_lists_the_good_ones(folder: Path):
    proc = records("list", "runs", "multiruns", cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_named_once(proc, DAMAGED, "runs")
    assert_named_once(proc, SWEEP_DAMAGED, "multiruns/grid")
    assert "good-a" in proc.stdout and "good-b" in proc.stdout and "job-0" in proc.stdout


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_show_of_a_damaged_record_is_one_line_and_exit_2(folder: Path, name: str):
    proc = records("show", f"runs/{name}", cwd=folder)
    assert proc.returncode == 2
    assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert_named_once(proc, {name: DAMAGED[name]}, "runs")


def test_diff_exits_0_equal_1_different_2_damaged(folder: Path):
    same = records("diff", "runs/good_a", "runs/good_a", cwd=folder)
    different = records("diff", "runs/good_a", "runs/good_b", cwd=folder)
    damaged = records("diff", "runs/good_a", "runs/metrics_list", cwd=folder)
    assert same.returncode == 0 and same.stdout.strip() == "no differences"
    assert different.returncode == 1 and "config.train.learning_rate: 0.001 != 0.01" in different.stdout
    assert damaged.returncode == 2 and len(damaged.stderr.splitlines()) == 1
    assert_named_once(damaged, {"metrics_list": DAMAGED["metrics_list"]}, "runs")


def test_rerun_of_a_damaged_record_is_exit_2_before_tfrun_starts(folder: Path):
    proc = records("rerun", "runs/steps_text", "--run-dir", str(folder / "never"), cwd=folder)
    assert proc.returncode == 2 and not (folder / "never").exists()
    assert_named_once(proc, {"steps_text": DAMAGED["steps_text"]}, "runs")


def test_report_names_each_damaged_record_once_and_writes_the_page(folder: Path):
    proc = records("report", "runs", "multiruns", "-o", "page.html", cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_named_once(proc, DAMAGED, "runs")
    assert_named_once(proc, SWEEP_DAMAGED, "multiruns/grid")
    assert "3 run(s)" in proc.stdout and "good-b" in (folder / "page.html").read_text()


def test_sweep_summarises_the_good_jobs_and_names_the_damaged_ones(tmp_path: Path):
    make_grid(tmp_path / "grid")
    proc = records("sweep", "grid", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_named_once(proc, SWEEP_DAMAGED, "grid")
    assert "best: job 0" in proc.stdout


def test_mlflow_sends_the_good_records_and_names_the_damaged_ones(folder: Path, tmp_path: Path):
    pytest.importorskip("mlflow")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = records("mlflow", "runs", "multiruns", "--uri", store, cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_named_once(proc, DAMAGED, "runs")
    assert_named_once(proc, SWEEP_DAMAGED, "multiruns/grid")
    assert "3 run(s) sent" in proc.stdout, proc.stdout


def test_mlflow_with_a_server_that_does_not_answer_is_one_line_and_exit_1(folder: Path):
    pytest.importorskip("mlflow")
    uri = f"http://127.0.0.1:{free_port()}"
    proc = records("mlflow", "runs", "--uri", uri, cwd=folder)
    assert proc.returncode == 1
    assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert uri in proc.stderr and "does not answer" in proc.stderr


def test_cleanup_goes_on_past_damaged_records(folder: Path):
    every = records("cleanup", "--all", "runs", "multiruns", "--dry-run", cwd=folder)
    assert every.returncode == 0, every.stdout + every.stderr
    assert_named_once(every, DAMAGED, "runs")
    assert "nothing to clean up" in every.stdout
    named = records("cleanup", "runs/not_object", "runs/good_a", "--dry-run", cwd=folder)
    assert named.returncode == 2
    assert_named_once(named, {"not_object": DAMAGED["not_object"]}, "runs")


def test_resume_moves_damaged_job_records_aside_and_reruns_those_jobs(tmp_path: Path):
    make_grid(tmp_path / "grid")
    proc = records("resume", "grid", cwd=tmp_path)
    assert_named_once(proc, SWEEP_DAMAGED, "grid")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the reruns stop at validation: train.epochs=0, -1
    assert "train.epochs" in proc.stderr
    kept = sorted(p.name for p in (tmp_path / "grid").glob("*/attempts/*.json"))
    assert len(kept) == 2 and all(name.startswith("damaged-") for name in kept)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ("a record", "the JSON is a string"),
        ({"status": None}, "status is null, expected a string"),
        ({"seconds": True}, "seconds is a boolean, expected a number or null"),
        ({"command": {"overrides": ["a=1", 2]}}, "command.overrides[1] is an integer, expected a string"),
        ({"metrics": {"final": {"holdout_accuracy": "high"}}}, "metrics.final.holdout_accuracy is a string"),
        ({"steps": [{"name": {"x": 1}}]}, "steps[0].name is an object, expected a string"),
        ({"cloud_resources": [{"kind": "endpoint", "name": "e"}]}, "cloud_resources[0] has no status"),
        ({"pids": {"runner": "12"}}, "pids.runner is a string, expected an integer or null"),
    ],
)
def test_the_loader_names_the_first_problem(data: object, why: str):
    assert why in (reading.problem(data) or "")


def test_a_record_tfrun_writes_has_no_problem():
    assert reading.problem(GOOD) is None
    assert reading.problem({"status": "failed", "config": None, "job": None, "error": {"type": "ConfigError"}}) is None
