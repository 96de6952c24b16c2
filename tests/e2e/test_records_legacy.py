"""Records written before the package move (schema 1, `_target_: tasks.model.build_mlp`) still show, diff, rerun
and verify with today's `tfrun-records` (the fixture and how it was made: tests/fixtures/records/pre_tfrun_package)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import command_env

BIN = Path(sys.executable).parent
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "records" / "pre_tfrun_package"

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def records_cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "tfrun-records"), *args], cwd=cwd, env=command_env(), capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def old_runs(tmp_path_factory) -> Path:
    """A folder holding the old records where they were written: runs/a (one run), multiruns/s (a sweep of two)."""
    root = tmp_path_factory.mktemp("old_records")
    shutil.copytree(FIXTURE / "train_run", root / "runs" / "a")
    shutil.copytree(FIXTURE / "sweep", root / "multiruns" / "s")
    assert json.loads((root / "runs" / "a" / "record.json").read_text())["schema_version"] == 1
    return root


def test_show_and_list_read_an_old_record(old_runs):
    shown = records_cli("show", "runs/a", cwd=old_runs)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "succeeded" in shown.stdout and "holdout_accuracy  0.7500  (optimized)" in shown.stdout
    assert "config     sha256 7db61f5c8d3f..  optimized metric" in shown.stdout  # as the file holds it
    assert "schema     1, read as 2 (tfrun's old module paths mapped)" in shown.stdout
    read_as = json.loads(records_cli("show", "runs/a", "--json", cwd=old_runs).stdout)["config_sha256"]
    assert f"read as sha256 {read_as[:12]}.., what a rerun compares (" in shown.stdout
    as_json = records_cli("show", "runs/a", "--json", cwd=old_runs)
    data = json.loads(as_json.stdout)
    assert data["config"]["model"]["_target_"] == "tfrun.tasks.model.build_mlp"
    assert data["upgraded_from"]["schema_version"] == 1
    listed = records_cli("list", "runs", "multiruns", "--json", cwd=old_runs)
    assert listed.returncode == 0 and not listed.stderr, listed.stderr
    assert sorted(row["run_dir"] for row in json.loads(listed.stdout)) == ["multiruns/s/0", "multiruns/s/1", "runs/a"]


def test_diff_compares_old_records(old_runs):
    same = records_cli("diff", "runs/a", "multiruns/s/1", cwd=old_runs)  # same config, run alone and in a sweep
    assert same.returncode == 0, same.stdout + same.stderr
    assert "no differences" in same.stdout
    other = records_cli("diff", "runs/a", "multiruns/s/0", cwd=old_runs)
    assert other.returncode == 1, other.stdout + other.stderr
    assert "config.model.n_hidden: 2 != 1" in other.stdout
    assert "_target_" not in other.stdout


def test_sweep_and_resume_read_an_old_sweep(old_runs):
    summary = records_cli("sweep", "multiruns/s", cwd=old_runs, timeout=300)
    assert summary.returncode == 0, summary.stdout + summary.stderr
    assert "reproduce: tfrun train.epochs=1 model.n_hidden=2" in summary.stdout
    resumed = records_cli("resume", "multiruns/s", cwd=old_runs)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "nothing to resume" in resumed.stdout


def test_rerun_verify_reproduces_an_old_run_with_the_same_config(old_runs):
    rerun_dir = old_runs / "reruns" / "a"
    rerun = records_cli("rerun", "runs/a", "--verify", "--run-dir", "reruns/a", cwd=old_runs, timeout=600)
    output = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, output
    assert "verified: identical metrics and weights" in rerun.stdout
    assert "warning" not in rerun.stdout  # the old config, read with today's paths, hashes as the rerun's does
    new = json.loads((rerun_dir / "record.json").read_text())
    old = json.loads((old_runs / "runs" / "a" / "record.json").read_text())
    assert new["schema_version"] == 2 and new["weights_sha256"] == old["weights_sha256"]
    assert new["config"]["data"]["_target_"] == "tfrun.tasks.data.load_digits"
    compared = records_cli("diff", "runs/a", "reruns/a", cwd=old_runs)
    assert "config." not in compared.stdout and "metrics." not in compared.stdout, compared.stdout
