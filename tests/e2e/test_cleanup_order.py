"""`tfrun-records cleanup --all`: what runs left is removed in dependency order across runs, each with its own why.

Two runs share tfrun's bucket: the first created it, the second wrote its model there too. Cleaning the
first run before the second would find the bucket holding the second run's objects and keep it for
good; clean-up removes the second run's objects first, then the bucket. A bucket that holds the user's
own files is kept, says so, and is tried again by the next clean-up. Real GCS emulator and the fake
Vertex server (the clean-up child lists the runs' labelled Vertex resources there).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BIN, CLOUD_PROJECT, blob_names, command_env, storage
from tfrun.tasks.core.schema.cloud import GcpCloud

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _record(workdir: Path, name: str, fake_vertex: Any, gcs_emulator: Any, resources: list[dict[str, Any]]) -> Path:
    """A finished run's record as tfrun writes it: its cloud settings and the resources it left."""
    run_dir = workdir / "runs" / name
    run_dir.mkdir(parents=True)
    bucket = resources[0]["name"].removeprefix("gs://").split("/")[0]
    cloud = asdict(
        GcpCloud(
            project=CLOUD_PROJECT,
            bucket=bucket,
            credentials="anonymous",
            api_endpoint=fake_vertex.url,
            storage_endpoint=gcs_emulator.url,
        )
    )
    entries = [
        {
            "why": "created by this run",
            "display_name": "",
            "console": "",
            "details": {},
            **r,
            "remove_command": "gcloud",
        }
        for r in resources
    ]
    data = {
        "schema_version": 2,
        "run_id": f"20261206-000000-{name}",
        "status": "succeeded",
        "run_dir": f"runs/{name}",
        "config": {"cloud": cloud},
        "steps": [],
        "metrics": {},
        "artifacts": [],
        "deployments": [],
        "cloud_resources": entries,
    }
    (run_dir / "record.json").write_text(json.dumps(data))
    return run_dir / "record.json"


def _write(gcs_emulator: Any, bucket: str, names: list[str]) -> None:
    client = storage(gcs_emulator)
    found = client.lookup_bucket(bucket) or client.create_bucket(bucket)
    for name in names:
        found.blob(name).upload_from_string(b"weights")


def _cleanup(workdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "tfrun-records"), "cleanup", "--all", "--yes"],
        cwd=workdir,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _statuses(path: Path) -> dict[str, tuple[str, str]]:
    return {r["kind"]: (r["status"], r["why"]) for r in json.loads(path.read_text())["cloud_resources"]}


def test_objects_go_before_the_bucket_another_run_created(workdir: Path, fake_vertex: Any, gcs_emulator: Any):
    bucket = "cleanup-shared"
    _write(gcs_emulator, bucket, ["tfrun/a/0001/saved_model.pb", "tfrun/b/0002/saved_model.pb"])
    first = _record(
        workdir,
        "a",
        fake_vertex,
        gcs_emulator,
        [
            {"kind": "bucket", "name": f"gs://{bucket}", "created": True, "status": "left"},
            {"kind": "gcs_objects", "name": f"gs://{bucket}/tfrun/a/0001/", "created": True, "status": "left"},
        ],
    )
    second = _record(
        workdir,
        "b",
        fake_vertex,
        gcs_emulator,
        [
            {"kind": "bucket", "name": f"gs://{bucket}", "created": False, "status": "reused"},
            {"kind": "gcs_objects", "name": f"gs://{bucket}/tfrun/b/0002/", "created": True, "status": "left"},
        ],
    )
    done = _cleanup(workdir)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert storage(gcs_emulator).lookup_bucket(bucket) is None, out
    assert _statuses(first)["bucket"][0] == "removed", out
    assert _statuses(first)["gcs_objects"][0] == _statuses(second)["gcs_objects"][0] == "removed", out
    assert "nothing to clean up" in _cleanup(workdir).stdout


def test_a_kept_resource_says_its_own_why_and_is_tried_again(workdir: Path, fake_vertex: Any, gcs_emulator: Any):
    bucket = "cleanup-users-files"
    _write(gcs_emulator, bucket, ["tfrun/a/0001/saved_model.pb", "notes/mine.txt"])
    path = _record(
        workdir,
        "a",
        fake_vertex,
        gcs_emulator,
        [
            {"kind": "bucket", "name": f"gs://{bucket}", "created": True, "status": "left"},
            {"kind": "gcs_objects", "name": f"gs://{bucket}/tfrun/a/0001/", "created": True, "status": "left"},
        ],
    )
    done = _cleanup(workdir)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    status = _statuses(path)
    assert status["gcs_objects"][0] == "removed" and "1 object(s) deleted" in status["gcs_objects"][1], out
    assert status["bucket"][0] == "kept" and "objects this run did not write" in status["bucket"][1], out
    lines = [line for line in done.stdout.splitlines() if ": removed (" in line or ": kept (" in line]
    assert len(lines) == 2 and "object(s) deleted" in lines[0] and "did not write" in lines[1], out
    assert blob_names(gcs_emulator, bucket) == ["notes/mine.txt"]

    storage(gcs_emulator).bucket(bucket).blob("notes/mine.txt").delete()  # the user moves their file away
    again = _cleanup(workdir)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 live resource(s)" in again.stdout, again.stdout
    assert _statuses(path)["bucket"][0] == "removed", again.stdout
    assert storage(gcs_emulator).lookup_bucket(bucket) is None
