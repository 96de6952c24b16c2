"""The worked example (examples/wine) through the real commands, as a user runs it from their own project:
its own loader, model, callback and preset train, sweep over its own key, convert to TFLite, and its record
names its code (sha256, git commit), which `tfrun-records diff` and `rerun --verify` then cover."""

from __future__ import annotations

import csv
import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.helpers import BIN, command_env, copy_example, read_record, tfrun

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

GIT = ["git", "-c", "user.email=test@example.com", "-c", "user.name=test", "-c", "commit.gpgsign=false"]


def git(project: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=project, check=True, capture_output=True, text=True).stdout.strip()


def records(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "tfrun-records"), *args], cwd=cwd, env=command_env(), capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of examples/wine as its own git checkout."""
    root = copy_example("wine", tmp_path_factory.mktemp("user") / "wine")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "winelab")
    return root


@pytest.fixture(scope="module")
def first_run(project: Path) -> tuple[dict, str]:
    proc = tfrun("--config-dir", "conf", "experiment=wine", "hydra.run.dir=runs/first", cwd=project, check=True)
    return read_record(project / "runs/first"), proc.stdout


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_example_trains_with_its_own_data_model_and_callback(project: Path, first_run):
    record, stdout = first_run
    assert record["status"] == "succeeded"
    assert record["metrics"]["final"]["holdout_accuracy"] >= 0.85
    data = next(s for s in record["steps"] if s["name"] == "data")["result"]
    assert (data["input_name"], data["input_shape"], data["classes"]) == ("measurements", [13], 3)
    assert record["artifacts"][0]["path"] == "models/wine_tabular/0001"
    assert record["artifacts"][0]["input"]["name"] == "measurements"
    assert "StopAtAccuracy: val_accuracy" in stdout  # the project's callback ran, after tfrun's own


def test_the_record_names_the_users_code(project: Path, first_run):
    record, _ = first_run
    user = record["code"]["user"]
    head = git(project, "rev-parse", "HEAD")
    expected = {
        "data": ("winelab.data.load", "winelab/data.py"),
        "model": ("winelab.models.build", "winelab/models.py"),
        "train.extra_callbacks[0]": ("winelab.callbacks.StopAtAccuracy", "winelab/callbacks.py"),
    }
    assert set(user) == set(expected)
    for key, (target, file) in expected.items():
        assert (user[key]["target"], user[key]["file"]) == (target, file)
        assert user[key]["sha256"] == sha256(project / file)
        assert (user[key]["git_commit"], user[key]["git_dirty"]) == (head, False)
    assert record["code"]["git_commit"] != head  # tfrun's own commit is recorded apart


def test_a_sweep_over_the_projects_own_key(project: Path):
    proc = tfrun(
        "-m",
        "--config-dir",
        "conf",
        "experiment=wine",
        "model.units=8,32",
        "train.epochs=10",
        "hydra.sweep.dir=multiruns/units",
        cwd=project,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(project / "multiruns/units/sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["model.units"], r["status"]) for r in rows) == [("32", "succeeded"), ("8", "succeeded")]
    for job in ("0", "1"):
        record = read_record(project / "multiruns/units" / job)
        assert record["code"]["user"]["model"]["target"] == "winelab.models.build"
    assert "reproduce: tfrun --config-dir=conf experiment=wine model.units=" in proc.stdout


def test_target_tflite_converts_the_users_model(project: Path):
    proc = tfrun(
        "--config-dir",
        "conf",
        "experiment=wine",
        "target=tflite",
        "hydra.run.dir=runs/tflite",
        cwd=project,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = read_record(project / "runs/tflite")
    (tflite,) = [a for a in record["artifacts"] if a["kind"] == "tflite"]
    assert (project / tflite["path"]).is_file() and tflite["accepted"] is True
    assert record["metrics"]["final"]["tflite_accuracy"] == pytest.approx(
        record["metrics"]["final"]["holdout_accuracy"], abs=0.03
    )


def test_rerun_verify_and_diff_cover_the_users_code(project: Path, first_run):
    same = records("rerun", "runs/first", "--verify", cwd=project)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "verified: identical metrics and weights, from the same user code" in same.stdout

    models = project / "winelab" / "models.py"
    original = models.read_text()
    models.write_text(original.replace("momentum=0.9", "momentum=0.8"))
    try:
        changed = records("rerun", "runs/first", "--verify", "--run-dir", "runs/changed", cwd=project)
        assert changed.returncode == 1, changed.stdout + changed.stderr
        assert "code.user.model.sha256: " in changed.stdout
        diff = records("diff", "runs/first", "runs/changed", cwd=project)
        assert diff.returncode == 1, diff.stdout + diff.stderr  # the runs differ, as `diff` says
        for key in ("code.user.model.sha256", "code.user.model.git_dirty: false != true"):
            assert key in diff.stdout, diff.stdout
        assert "code.user.data.sha256" not in diff.stdout  # only the file that changed
    finally:
        models.write_text(original)
