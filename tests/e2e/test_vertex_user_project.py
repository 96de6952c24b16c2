"""A user's own project (examples/wine) on Vertex AI through the real tfrun command, offline.

The Vertex-compatible test server runs each replica in an empty working directory of its own, with
only tfrun importable (the stand-in for the installed wheel): the replica has the user's code, configs
and data only if the job staged them. Cloud Storage is the emulator.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers import (
    BIN,
    assert_best_line_reproduces,
    blob_names,
    cloud_args,
    command_env,
    copy_example,
    read_record,
    run_tfrun,
    storage,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

FAST = ["cluster.poll_interval_s=0.5", "train.callbacks.tensorboard=false", "train.epochs=5"]


def run(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = command_env()
    env.pop("STORAGE_EMULATOR_HOST", None)  # the config alone must reach the emulator
    return run_tfrun(args, cwd, env, timeout)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_example("wine", tmp_path_factory.mktemp("user") / "wine")
    (root / "runs").mkdir()
    (root / "runs" / "old.bin").write_bytes(b"x" * 1000)  # an earlier run's output: never staged
    (root / "notes.tmp").write_text("scratch")
    (root / ".gitignore").write_text((root / ".gitignore").read_text() + "*.tmp\n")
    return root


def test_the_project_trains_on_a_replica_from_what_was_staged(project: Path, fake_vertex: Any, gcs_emulator: Any):
    """Done when 1: winelab's model, data and callback run on the replica from the staged archive; the chief's
    record names the same targets with the same file hashes as the local one; cleanup leaves nothing."""
    bucket = "e2e-user-project"
    proc = run(
        [
            "--config-dir",
            "conf",
            "experiment=wine",
            "cluster=vertex",
            *FAST,
            *cloud_args(fake_vertex, gcs_emulator, bucket),
            "hydra.run.dir=runs/r",
        ],
        project,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    record = read_record(project / "runs" / "r")
    stage = next(s["result"] for s in record["steps"] if s["name"] == "vertex_stage")
    staged = stage["project"]
    assert staged["modules"] == {"winelab": "winelab"} and staged["config_dirs"] == {str(project / "conf"): "conf"}

    # what travelled: the manifest lists the code and configs, nothing the .gitignore or the rules leave out
    client = storage(gcs_emulator)
    prefix = staged["uri"][len(f"gs://{bucket}/") :].rsplit("/", 1)[0] + "/"
    manifest = json.loads(client.bucket(bucket).blob(prefix + "project.json").download_as_bytes())
    names = {f["path"] for f in manifest["files"]}
    assert {"winelab/models.py", "winelab/data.py", "winelab/callbacks.py", "conf/experiment/wine.yaml"} <= names
    assert not any(n.startswith("runs/") or n.endswith(".tmp") or "__pycache__" in n for n in names), names

    # the chief ran the staged code, in a working directory that held nothing else of the user's
    job = next(r for r in record["cloud_resources"] if r["kind"] == "custom_job")
    base = job["details"]["base_output_dir"]
    chief = json.loads(client.bucket(bucket).blob(base[len(f"gs://{bucket}/") :] + "record.json").download_as_bytes())
    assert chief["status"] == "succeeded"
    mine = {k: (v["target"], v["sha256"]) for k, v in record["code"]["user"].items()}
    theirs = {k: (v["target"], v["sha256"]) for k, v in chief["code"]["user"].items()}
    assert mine == theirs and set(mine) == {"model", "data", "train.extra_callbacks[0]"}, (mine, theirs)
    replica = next(r for r in fake_vertex.replicas(job["name"]) if r["name"] == "workerpool0-0")
    workdir = Path(replica["workdir"])
    assert not str(workdir).startswith(str(project)) and (workdir / "project" / "winelab" / "models.py").is_file()
    assert (workdir / "project" / "winelab" / "models.py").read_bytes() == (project / "winelab/models.py").read_bytes()
    assert "--config-dir=conf" in replica["argv"], replica["argv"]
    assert record["metrics"]["final"]["holdout_accuracy"] == chief["metrics"]["final"]["holdout_accuracy"]
    assert next(a for a in record["artifacts"] if a["kind"] == "saved_model")["input"]["name"] == "measurements"

    model = next(r for r in record["cloud_resources"] if r["kind"] == "model")
    assert model["name"] in [m["name"] for m in fake_vertex.state()["models"]], "the job's model is registered"
    assert "project.tar.gz (7 file(s)" in out and "modules winelab; configs conf" in out
    cleanup = subprocess.run(
        [str(BIN / "tfrun-records"), "cleanup", "runs/r", "--yes"],
        cwd=project,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert not blob_names(gcs_emulator, bucket), blob_names(gcs_emulator, bucket)
    assert model["name"] not in [m["name"] for m in fake_vertex.state()["models"]]


def test_a_local_data_file_travels_and_the_replica_is_told_where(
    project: Path, fake_vertex: Any, gcs_emulator: Any, tmp_path: Path
):
    """A data file outside the project (data=files data.path=/elsewhere/x.npz) is staged under _outside/ and the
    replica's data.path names it there; the replica trains on exactly those bytes."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    rng = np.random.default_rng(0)
    y = np.arange(300) % 3
    np.savez(outside / "blobs.npz", x=(rng.normal(size=(300, 4)) + y[:, None] * 3).astype("float32"), y=y)
    proc = run(
        [
            "cluster=vertex",
            "data=files",
            f"data.path={outside / 'blobs.npz'}",
            *FAST,
            *cloud_args(fake_vertex, gcs_emulator, "e2e-user-data"),
            "hydra.run.dir=runs/data",
        ],
        project,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    record = read_record(project / "runs" / "data")
    staged = next(s["result"] for s in record["steps"] if s["name"] == "vertex_stage")["project"]
    assert staged["data"] == {"data.path": "_outside/1/blobs.npz"}, staged
    job = next(r for r in record["cloud_resources"] if r["kind"] == "custom_job")
    replica = next(r for r in fake_vertex.replicas(job["name"]) if r["name"] == "workerpool0-0")
    assert "++data.path=_outside/1/blobs.npz" in replica["argv"], replica["argv"]
    assert record["metrics"]["final"]["holdout_accuracy"] > 0.5  # 3 classes: it learned from the staged file


def test_tuning_over_the_projects_own_key_and_its_best_line_reproduces_here(
    project: Path, fake_vertex: Any, gcs_emulator: Any
):
    """Done when 3: 4 trials (2 at a time) over winelab's model.units; each trial's argument maps back to the
    key; the best trial's printed line, run here, gives its metric and weights."""
    proc = run(
        [
            "-m",
            "--config-dir",
            "conf",
            "experiment=wine",
            "sweep=vertex",
            "tuning.max_trial_count=4",
            "tuning.parallel_trial_count=2",
            "~tuning.params.train",
            "~tuning.params.model",
            "+tuning.params.model.units={type:integer,min:8,max:64}",
            *FAST,
            *cloud_args(fake_vertex, gcs_emulator, "e2e-user-tune"),
            "hydra.sweep.dir=multiruns/tune",
        ],
        project,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    summary = json.loads((project / "multiruns/tune/sweep.json").read_text())
    assert len(summary["jobs"]) == 4 and all(j["status"] == "succeeded" for j in summary["jobs"]), summary["jobs"]
    assert all(8 <= int(j["params"]["model.units"]) <= 64 for j in summary["jobs"]), summary["jobs"]
    best = summary["best"]
    assert best["command"].startswith("tfrun --config-dir=conf experiment=wine") and "model.units=" in best["command"]
    trial = read_record(project / "multiruns/tune" / best["job"])
    assert trial["code"]["user"]["model"]["target"] == "winelab.models.build"
    assert_best_line_reproduces(summary, project / "multiruns/tune", project)


def test_the_streaming_example_trains_on_two_replicas_from_its_staged_tfrecord_files(
    tmp_path_factory: pytest.TempPathFactory, fake_vertex: Any, gcs_emulator: Any
):
    """Done when 2: examples/streaming's TFRecord shards (data.folder=data, listed in its .gitignore) travel with
    the job as data, and a chief and a worker train on them with strategy=multi_worker."""
    import sys

    root = copy_example("streaming", tmp_path_factory.mktemp("user") / "streaming")
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from pathlib import Path; from streamlab.data import _prepare; _prepare(Path('data').resolve(), 4)",
        ],
        cwd=root,
        env=command_env(),
        check=True,
        timeout=120,
    )
    proc = run(
        [
            "--config-dir",
            "conf",
            "experiment=streaming",
            "cluster=vertex",
            "strategy=multi_worker",
            "cluster.workers=2",
            *FAST,
            *cloud_args(fake_vertex, gcs_emulator, "e2e-user-stream"),
            "hydra.run.dir=runs/stream",
        ],
        root,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    record = read_record(root / "runs" / "stream")
    staged = next(s["result"] for s in record["steps"] if s["name"] == "vertex_stage")["project"]
    assert staged["modules"] == {"streamlab": "streamlab"} and staged["data"] == {}, "data/ is where it was"
    assert "data data.folder -> data" in out, "the staged data is named in the stage step's line"
    job = next(r for r in record["cloud_resources"] if r["kind"] == "custom_job")
    replicas = {r["name"]: r for r in fake_vertex.replicas(job["name"])}
    assert set(replicas) == {"workerpool0-0", "workerpool1-0"}
    local = sorted(p.name for p in (root / "data").iterdir())
    for replica in replicas.values():
        unpacked = Path(replica["workdir"]) / "project" / "data"
        assert sorted(p.name for p in unpacked.iterdir()) == local, "each replica reads the staged shards"
        assert (unpacked / "holdout.npz").read_bytes() == (root / "data" / "holdout.npz").read_bytes()
    result = next(s["result"] for s in record["steps"] if s["name"] == "vertex_job_result")
    assert result["chief"]["cluster"]["task"]["type"] == "chief"
    assert record["metrics"]["final"]["holdout_accuracy"] > 0.5
