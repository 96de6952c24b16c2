"""The real `tfrun` command end to end: default job, versions, records, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import BIN, command_env, read_record, tfrun

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def two_default_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict, str]:
    """The default job twice in one folder (same seed, deterministic by default)."""
    workdir = tmp_path_factory.mktemp("default")
    first = tfrun("hydra.run.dir=runs/first", cwd=workdir, check=True)
    tfrun("hydra.run.dir=runs/second", cwd=workdir, check=True)
    return workdir, read_record(workdir / "runs/first"), read_record(workdir / "runs/second"), first.stdout


def test_default_job_succeeds_with_accuracy_and_paths(two_default_runs):
    workdir, record, _, stdout = two_default_runs
    assert record["status"] == "succeeded"
    assert record["metrics"]["final"]["holdout_accuracy"] >= 0.95
    assert "record: runs/first/record.json" in stdout
    assert "saved_model: models/digits_mlp/0001" in stdout
    assert [s["name"] for s in record["steps"]] == record["plan"]
    assert all(s["status"] == "succeeded" and s["seconds"] is not None for s in record["steps"])
    assert record["environment"]["packages"]["tensorflow"] == "2.21.0"
    assert record["environment"]["devices"]["logical"] == ["/device:CPU:0"]
    assert record["reproducibility"] == {"seed": 42, "deterministic": True, "python_hash_seed": "0"}
    assert len(record["metrics"]["history"]["loss"]) == record["config"]["train"]["epochs"]
    assert (workdir / "runs/first/tensorboard").is_dir()
    assert (workdir / "runs/first/.hydra/config.yaml").is_file()
    assert not any(str(workdir) in line for line in (workdir / "runs/first/record.json").read_text().splitlines()), (
        "records hold no absolute machine paths"
    )


def test_export_artifact_has_checksums(two_default_runs):
    workdir, record, _, _ = two_default_runs
    (artifact,) = record["artifacts"]
    assert artifact["path"] == "models/digits_mlp/0001" and artifact["version"] == 1
    files = {f["path"]: f for f in artifact["files"]}
    assert "saved_model.pb" in files
    assert files["saved_model.pb"]["bytes"] == (workdir / artifact["path"] / "saved_model.pb").stat().st_size
    assert artifact["bytes"] == sum(f["bytes"] for f in artifact["files"])


def test_second_run_exports_next_version(two_default_runs):
    workdir, _, second, _ = two_default_runs
    assert sorted(p.name for p in (workdir / "models/digits_mlp").iterdir()) == ["0001", "0002"]
    assert second["artifacts"][0]["version"] == 2


def test_same_seed_deterministic_runs_have_identical_weights(two_default_runs):
    _, first, second, _ = two_default_runs
    assert first["weights_sha256"] == second["weights_sha256"]
    assert first["metrics"]["final"] == second["metrics"]["final"]
    assert first["config_sha256"] == second["config_sha256"]


def test_saved_model_cli_shows_serving_signature(two_default_runs):
    workdir, _, _, _ = two_default_runs
    proc = subprocess.run(
        [str(BIN / "saved_model_cli"), "show", "--dir", "models/digits_mlp/0001", "--all"],
        cwd=workdir,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    serving = out[out.index("signature_def['serving_default']") :]
    assert "inputs['pixels'] tensor_info:" in serving
    assert "dtype: DT_FLOAT" in serving and "shape: (-1, 8, 8)" in serving
    assert "outputs['probabilities']" in serving and "outputs['class_id']" not in serving  # the book's one output


def _start_long_run(workdir: Path, run_dir: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "tfrun"), "train.epochs=1000", f"hydra.run.dir={run_dir}"],
        cwd=workdir,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_training(record_path: Path, proc: subprocess.Popen, timeout: float = 120) -> dict:
    """Block until the record shows at least one finished epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        if record_path.exists():
            record = json.loads(record_path.read_text())
            if record["metrics"]["history"].get("loss"):
                return record
        time.sleep(0.2)
    raise AssertionError("training did not start in time")


def test_child_killed_by_sigkill_leaves_failed_record(workdir: Path):
    proc = _start_long_run(workdir, "runs/killed")
    record = _wait_for_training(workdir / "runs/killed/record.json", proc)
    os.kill(record["pids"]["child"], signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    record = read_record(workdir / "runs/killed")
    assert record["status"] == "failed"
    assert record["error"]["signal"] == "SIGKILL" and record["error"]["step"] == "train"
    assert "SIGKILL" in record["error"]["message"]
    finished = [s["name"] for s in record["steps"] if s["status"] == "succeeded"]
    assert finished == ["hardware", "strategy", "data", "model"]
    assert record["metrics"]["history"]["loss"], "epochs finished before the kill are kept"


def test_ctrl_c_to_runner_leaves_interrupted_record(workdir: Path):
    proc = _start_long_run(workdir, "runs/interrupted")
    record = _wait_for_training(workdir / "runs/interrupted/record.json", proc)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    record = read_record(workdir / "runs/interrupted")
    assert record["status"] == "interrupted"
    assert record["error"]["signal"] == "SIGINT"
    assert [s["status"] for s in record["steps"]][:4] == ["succeeded"] * 4
    with pytest.raises(ProcessLookupError):
        os.kill(record["pids"]["child"], 0)
