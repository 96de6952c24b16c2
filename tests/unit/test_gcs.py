"""tfrun.tasks.gcs and tfrun.tasks.cloud_auth against a real GCS emulator (fake-gcs-server); no TensorFlow here.

Every client is built with cloud.storage_endpoint = the emulator, so no test can reach Google.
"""

from __future__ import annotations

import base64
import filecmp
import json
import logging
import os
import random
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import google_crc32c
import pytest

from tests.fakes.gcs import corrupt_blob
from tests.helpers import ROOT
from tfrun.tasks import cloud_auth, gcs

SMALL_FILES = 110


def cloud(emulator_url: str | None = None, **overrides) -> SimpleNamespace:
    values = dict(
        name="gcp",
        project="tfrun-test",
        region="us-central1",
        bucket=None,
        prefix="tfrun",
        credentials="adc",
        api_endpoint=None,
        storage_endpoint=emulator_url,
        labels={},
        dry_run=False,
        upload_workers=8,
    )
    values.update(overrides)
    return SimpleNamespace(**values)


def crc32c_of(path: Path) -> str:
    return base64.b64encode(google_crc32c.Checksum(path.read_bytes()).digest()).decode()


@pytest.fixture
def client(gcs_emulator, monkeypatch):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    return gcs.storage_client(cloud(gcs_emulator.url))


@pytest.fixture
def bucket(client) -> str:
    name = f"tfrun-test-{uuid.uuid4().hex[:12]}"
    assert gcs.ensure_bucket(client, name, "us-central1", {"tfrun-test": "yes"}) is True
    return name


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    """A SavedModel-shaped tree: graph, fingerprint, variables, assets and many small files (> 100 in all)."""
    root = tmp_path / "export" / "0001"
    rng = random.Random(7)
    files = {
        "saved_model.pb": rng.randbytes(60_000),
        "fingerprint.pb": rng.randbytes(60),
        "variables/variables.data-00000-of-00001": rng.randbytes(1_500_000),
        "variables/variables.index": rng.randbytes(1_200),
        "assets/vocab.txt": "\n".join(f"token{i}" for i in range(3000)).encode(),
        "assets.extra/tf_serving_warmup_requests": rng.randbytes(4_000),
    }
    files.update(
        {f"assets/shards/shard_{i:03d}.txt": rng.randbytes(rng.randint(200, 20_000)) for i in range(SMALL_FILES)}
    )
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def local_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------- URIs
def test_split_uri():
    assert gcs.split_uri("gs://b/a/c/") == ("b", "a/c")
    assert gcs.split_uri("gs://b") == ("b", "")
    assert gcs.split_uri("gs://b/") == ("b", "")
    for bad in ("s3://b/a", "/tmp/a", "gs://", "gs:///a"):
        with pytest.raises(ValueError, match=repr(bad).replace("/", ".")):
            gcs.split_uri(bad)


# ---------------------------------------------------------------------------------------- upload
def test_upload_tree_verifies_every_blob_and_writes_saved_model_pb_last(client, bucket, export_dir, capsys):
    names = local_files(export_dir)
    assert len(names) > 100
    report = gcs.upload_tree(client, export_dir, f"gs://{bucket}/models/m/0001", workers=8)
    assert (report.files, report.uploaded, report.skipped, report.workers) == (len(names), len(names), 0, 8)
    assert report.bytes == report.uploaded_bytes == sum((export_dir / n).stat().st_size for n in names)
    assert report.uri == f"gs://{bucket}/models/m/0001" and report.replaced == []
    assert "upload" in capsys.readouterr().err  # the progress bar went to stderr

    stored = {b.name: b for b in client.list_blobs(bucket, prefix="models/m/0001/")}
    assert sorted(stored) == [f"models/m/0001/{n}" for n in names]
    for n in names:  # checksums computed here, independently of tfrun.tasks.gcs
        blob = stored[f"models/m/0001/{n}"]
        assert blob.crc32c == crc32c_of(export_dir / n) and blob.size == (export_dir / n).stat().st_size, n
    marker = stored.pop("models/m/0001/saved_model.pb")
    assert marker.generation > max(b.generation for b in stored.values())
    rows = {row["name"]: row for row in report.as_dict()["blobs"]}
    assert rows["models/m/0001/saved_model.pb"]["generation"] == marker.generation
    assert json.loads(json.dumps(report.as_dict()))["files"] == len(names)  # the record can hold it


def test_reupload_of_an_identical_tree_transfers_nothing(client, bucket, export_dir):
    uri = f"gs://{bucket}/m"
    gcs.upload_tree(client, export_dir, uri, progress=False)
    before = {b.name: b.generation for b in client.list_blobs(bucket)}
    again = gcs.upload_tree(client, export_dir, uri, progress=False)
    assert (again.uploaded, again.skipped, again.uploaded_bytes) == (0, again.files, 0)
    assert {b.name: b.generation for b in client.list_blobs(bucket)} == before
    assert gcs.verify_tree(client, export_dir, uri) == []


def test_a_corrupted_blob_is_found_by_verify_and_replaced_by_a_reupload(
    gcs_emulator, client, bucket, export_dir, caplog
):
    uri = f"gs://{bucket}/m"
    gcs.upload_tree(client, export_dir, uri, progress=False)
    index = export_dir / "variables" / "variables.index"
    damaged = bytes(b ^ 0xFF for b in index.read_bytes())  # same size: only the crc32c can tell
    corrupt_blob(gcs_emulator.url, bucket, "m/variables/variables.index", damaged)
    client.bucket(bucket).blob("m/assets/shards/shard_007.txt").delete()
    assert gcs.verify_tree(client, export_dir, uri) == ["assets/shards/shard_007.txt", "variables/variables.index"]

    with caplog.at_level(logging.WARNING, logger="tfrun.tasks.gcs"):
        report = gcs.upload_tree(client, export_dir, uri, progress=False)
    assert report.replaced == ["m/variables/variables.index"]
    assert "m/variables/variables.index" in caplog.text and "uploaded again" in caplog.text
    # the two damaged files, plus saved_model.pb: deleted first, written again after the variables
    assert report.uploaded == 3 and report.skipped == report.files - 3
    assert {r["name"] for r in report.blobs if r["uploaded"]} == {
        "m/variables/variables.index",
        "m/assets/shards/shard_007.txt",
        "m/saved_model.pb",
    }
    assert gcs.verify_tree(client, export_dir, uri) == []
    stored = {b.name: b.generation for b in client.list_blobs(bucket)}
    assert stored.pop("m/saved_model.pb") > max(stored.values())


def test_an_upload_answer_that_differs_from_the_local_file_raises_integrity_error(
    gcs_emulator, client, bucket, tmp_path
):
    local = tmp_path / "weights.bin"
    local.write_bytes(b"0123456789" * 100)
    gcs.write_bytes(client, f"gs://{bucket}/w/weights.bin", local.read_bytes())
    corrupt_blob(gcs_emulator.url, bucket, "w/weights.bin", b"9876543210" * 100)
    stored = client.bucket(bucket).get_blob("w/weights.bin")
    with pytest.raises(gcs.IntegrityError, match=f"gs://{bucket}/w/weights.bin"):
        gcs._check_uploaded(stored, gcs.scan_tree(tmp_path)[0], bucket)


def test_many_workers_share_one_connection_pool_without_dropping_connections(client, bucket, export_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="urllib3"):
        report = gcs.upload_tree(client, export_dir, f"gs://{bucket}/wide", workers=24, progress=False)
    assert report.uploaded == report.files
    assert "Connection pool is full" not in caplog.text


# ---------------------------------------------------------------------------------------- download, objects
def test_download_tree_round_trip(client, bucket, export_dir, tmp_path):
    uri = f"gs://{bucket}/models/m/0001/"
    gcs.upload_tree(client, export_dir, uri, progress=False)
    target = tmp_path / "downloaded"
    assert gcs.download_tree(client, uri, target) == len(local_files(export_dir))
    assert local_files(target) == local_files(export_dir)
    assert all(filecmp.cmp(export_dir / n, target / n, shallow=False) for n in local_files(export_dir))
    with pytest.raises(FileNotFoundError, match=f"gs://{bucket}/nothing"):
        gcs.download_tree(client, f"gs://{bucket}/nothing", tmp_path / "empty")


def test_download_tree_refuses_object_names_that_escape_the_folder(client, bucket, tmp_path):
    gcs.write_bytes(client, f"gs://{bucket}/dl/../outside.txt", b"x")
    with pytest.raises(ValueError, match="outside"):
        gcs.download_tree(client, f"gs://{bucket}/dl", tmp_path / "in")
    assert not (tmp_path / "outside.txt").exists()


def test_single_objects_listing_and_deletion(client, bucket):
    gcs.write_bytes(client, f"gs://{bucket}/batch/in/shard-0.jsonl", b'{"x": 1}\n')
    gcs.write_bytes(client, f"gs://{bucket}/batch/in/shard-1.jsonl", b'{"x": 2}\n')
    gcs.write_bytes(client, f"gs://{bucket}/batchother/keep.txt", b"keep")
    assert gcs.read_bytes(client, f"gs://{bucket}/batch/in/shard-1.jsonl") == b'{"x": 2}\n'
    assert gcs.list_uris(client, f"gs://{bucket}/batch") == [
        f"gs://{bucket}/batch/in/shard-0.jsonl",
        f"gs://{bucket}/batch/in/shard-1.jsonl",
    ]
    with pytest.raises(FileNotFoundError, match=f"gs://{bucket}/batch/none"):
        gcs.read_bytes(client, f"gs://{bucket}/batch/none")
    with pytest.raises(ValueError, match="refusing"):
        gcs.delete_prefix(client, f"gs://{bucket}")
    assert gcs.delete_bucket_if_empty(client, bucket) is False
    assert gcs.delete_prefix(client, f"gs://{bucket}/batch") == 2
    assert gcs.list_uris(client, f"gs://{bucket}") == [f"gs://{bucket}/batchother/keep.txt"]
    assert gcs.delete_prefix(client, f"gs://{bucket}/batchother") == 1
    assert gcs.delete_bucket_if_empty(client, bucket) is True
    assert gcs.delete_bucket_if_empty(client, bucket) is False  # gone already


# ---------------------------------------------------------------------------------------- buckets, clients
def test_ensure_bucket_sends_location_and_labels_and_creates_once(client):
    """fake-gcs-server drops location and labels, so the request itself is checked on the wire."""
    sent = []
    client._http.hooks["response"].append(lambda r, *a, **k: sent.append(r.request))
    name = f"tfrun-test-{uuid.uuid4().hex[:12]}"
    assert gcs.ensure_bucket(client, name, "europe-west4", {"tfrun-run-id": "r1", "team": "vision"}) is True
    assert gcs.ensure_bucket(client, name, "europe-west4", {}) is False
    creates = [r for r in sent if r.method == "POST" and r.url.split("?")[0].endswith("/storage/v1/b")]
    assert len(creates) == 1
    body = json.loads(creates[0].body)
    assert body["name"] == name and body["location"] == "europe-west4"
    assert body["labels"] == {"tfrun-run-id": "r1", "team": "vision"}
    assert "project=tfrun-test" in creates[0].url
    assert client.lookup_bucket(name) is not None
    assert gcs.delete_bucket_if_empty(client, name) is True


def test_storage_client_honours_storage_emulator_host(gcs_emulator, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url.removeprefix("http://"))  # host:port form
    for client in (gcs.storage_client(cloud(None)), gcs.storage_client_from_env()):
        assert client._connection.API_BASE_URL == gcs_emulator.url
        name = f"tfrun-test-{uuid.uuid4().hex[:12]}"
        assert gcs.ensure_bucket(client, name, "us-central1", {}) is True
        gcs.write_bytes(client, f"gs://{name}/x", b"1")
        assert gcs.read_bytes(client, f"gs://{name}/x") == b"1"


def test_storage_endpoint_wins_over_the_environment(gcs_emulator, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:1")  # nothing listens there
    client = gcs.storage_client(cloud(gcs_emulator.url, credentials="anonymous"))
    assert client._connection.API_BASE_URL == gcs_emulator.url
    assert client.lookup_bucket(f"tfrun-test-{uuid.uuid4().hex[:12]}") is None


# ---------------------------------------------------------------------------------------- credentials
def service_account_json(path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "tfrun-test",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "runner@tfrun-test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    return path


def test_anonymous_and_service_account_credentials(tmp_path, gcs_emulator):
    from google.auth.credentials import AnonymousCredentials
    from google.oauth2 import service_account

    assert isinstance(cloud_auth.credentials(cloud(credentials="anonymous")), AnonymousCredentials)
    key = service_account_json(tmp_path / "key.json")
    creds = cloud_auth.credentials(cloud(credentials=str(key)))
    assert isinstance(creds, service_account.Credentials)
    assert creds.service_account_email == "runner@tfrun-test.iam.gserviceaccount.com"
    assert creds.scopes == cloud_auth.SCOPES
    # a key file is used even against an emulator (no request is sent here: that would fetch a token)
    client = gcs.storage_client(cloud(gcs_emulator.url, credentials=str(key)))
    assert isinstance(client._credentials, service_account.Credentials)


@pytest.mark.parametrize(
    "content, reason",
    [
        (None, "no such file"),
        ("{not json", "is not valid JSON"),
        ('{"type": "service_account"}', "missing fields"),
        (
            json.dumps(
                {
                    "type": "service_account",
                    "client_email": "a@b.iam.gserviceaccount.com",
                    "token_uri": "https://oauth2.googleapis.com/token",
                    "private_key": "-----BEGIN PRIVATE KEY-----\nSECRETMATERIAL\n-----END PRIVATE KEY-----\n",
                }
            ),
            "not a usable service-account key file",
        ),
    ],
)
def test_a_bad_key_file_is_one_line_naming_the_key_and_path(tmp_path, content, reason):
    path = tmp_path / "key.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(cloud_auth.CloudAuthError) as err:
        cloud_auth.credentials(cloud(credentials=str(path)))
    message = str(err.value)
    assert message.startswith("cloud.credentials=…/key.json: ") and reason in message
    assert str(tmp_path) not in message, "the key's folder is a machine path: only its name is shown"
    assert "\n" not in message and "SECRETMATERIAL" not in message and err.value.__cause__ is None


def adc_in_a_clean_process(tmp_path: Path, **env: str) -> tuple[str, int]:
    """cloud_auth.credentials(adc) in a child with an empty HOME and the metadata server pointed at a socket
    that counts connections; returns (the child's output, connections the 'metadata server' received)."""
    with socket.socket() as metadata:
        metadata.bind(("127.0.0.1", 0))
        metadata.listen(8)
        host = f"127.0.0.1:{metadata.getsockname()[1]}"
        child_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GOOGLE_", "CLOUDSDK_", "GCE_")) and k not in ("NO_GCE_CHECK",)
        }
        child_env.update(
            HOME=str(tmp_path),
            CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),
            NO_GCE_CHECK="true",
            GCE_METADATA_HOST=host,
            GCE_METADATA_IP=host,
            PYTHONPATH=str(ROOT),
            **env,
        )
        code = (
            "import types\nfrom tasks import cloud_auth\n"
            "try:\n    cloud_auth.credentials(types.SimpleNamespace(credentials='adc'))\n"
            "except cloud_auth.CloudAuthError as exc:\n    print(exc)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], env=child_env, capture_output=True, text=True, timeout=60, check=True
        ).stdout
        metadata.setblocking(False)
        connections = 0
        while True:
            try:
                metadata.accept()[0].close()
                connections += 1
            except BlockingIOError:
                return out, connections


def test_adc_without_credentials_is_one_clear_line(tmp_path):
    out, connections = adc_in_a_clean_process(tmp_path)
    assert out.splitlines() == [cloud_auth.ADC_MISSING]
    assert connections == 0


def test_adc_pointing_at_a_missing_file_names_it(tmp_path):
    missing = tmp_path / "nowhere" / "adc.json"
    out, connections = adc_in_a_clean_process(tmp_path, GOOGLE_APPLICATION_CREDENTIALS=str(missing))
    [line] = out.splitlines()
    assert line.startswith(cloud_auth.ADC_MISSING) and "GOOGLE_APPLICATION_CREDENTIALS=…/adc.json" in line
    assert str(tmp_path) not in line
    assert connections == 0
