"""`tfrun-serve --vertex` run the way Vertex AI runs a custom serving container.

A real `tfrun-serve` process gets Vertex's environment (AIP_HTTP_PORT, AIP_HEALTH_ROUTE,
AIP_PREDICT_ROUTE, AIP_STORAGE_URI) and fetches its model from the GCS emulator; answers are
compared with the SavedModel's own outputs, byte for byte against TF Serving's JSON writer.
The Dockerfile cannot be built here (no Docker engine), so its ENTRYPOINT is parsed and checked
against the flags the container mode needs.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

from tests.fakes.gcs import free_port
from tests.integration.serving_models import batch_model, digits_model, examples_model
from tfrun.runner.serve_cli import build_parser
from tfrun.tasks.vertex import container

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HEALTH = "/v1/endpoints/1/deployedModels/2"
PREDICT = HEALTH + ":predict"
BUCKET = "vertex-container-test"


# ------------------------------------------------------------------------------------------ helpers
def start(tmp_path: Path, env: dict[str, str], *flags: str) -> tuple[subprocess.Popen, Path]:
    """`tfrun-serve --vertex FLAGS` with Vertex's variables in env; temp files under tmp_path/tmp."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    full = {k: v for k, v in os.environ.items() if not k.startswith("AIP_")}
    full.update(
        PATH=f"{BIN}{os.pathsep}{full.get('PATH', '')}", TMPDIR=str(tmp_path / "tmp"), TF_CPP_MIN_LOG_LEVEL="2", **env
    )
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "tfrun-serve"), "--vertex", *flags],
            env=full,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, log


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def call(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen, log: Path, port: int, route: str, timeout: float = 60) -> list[int]:
    """Health statuses seen until the first 200 (connection refused before the port opens is skipped)."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"tfrun-serve --vertex exited {proc.returncode}:\n{log.read_text()}")
        try:
            status, _ = call(port, "GET", route)
        except ConnectionRefusedError:
            time.sleep(0.05)
            continue
        seen.append(status)
        if status == 200:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"not healthy within {timeout} s (saw {seen}):\n{log.read_text()}")


def sigterm(proc: subprocess.Popen, log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0, log.read_text()
    assert "received SIGTERM" in log.read_text() and "stopped" in log.read_text()


def expected_body(model_dir: Path, **inputs: np.ndarray) -> str:
    """The SavedModel's own answer, written by TF Serving's row-format JSON writer."""
    import tensorflow as tf

    from tfrun.tasks.tfserving import jsonio

    fn = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    outputs = fn(**{k: tf.constant(v) for k, v in inputs.items()})
    return jsonio.predict_response({k: v.numpy() for k, v in outputs.items()}, jsonio.ROW)


def upload(emulator_url: str, local_dir: Path, uri: str) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from tfrun.tasks import gcs

    client = storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": emulator_url}
    )
    gcs.ensure_bucket(client, BUCKET, "us-central1")
    gcs.upload_tree(client, local_dir, uri, progress=False)


# ------------------------------------------------------------------------------------------ no TensorFlow
def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "containers" / "serving" / "Dockerfile").read_text()
    lines = [line for line in text.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in lines]


def test_dockerfile_runs_the_vertex_container_mode():
    steps = dockerfile_instructions()
    last = {keyword: rest for keyword, rest in steps}  # the instruction that counts is the last of its kind
    entrypoint = json.loads(last["ENTRYPOINT"])  # exec form, so SIGTERM reaches tfrun-serve itself
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[entrypoint[0]] == "tfrun.runner.serve_cli:main"
    args = build_parser().parse_args(entrypoint[1:])
    assert args.vertex and args.host == "0.0.0.0" and args.model_base_path == ""
    assert last["EXPOSE"] == str(container.DEFAULT_PORT)
    assert last["FROM"] == "python:3.11-slim"
    assert last["USER"] not in ("root", "0")
    install = [rest for keyword, rest in steps if keyword == "RUN" and "pip install" in rest]
    assert install and '-c constraints.txt ".[serving,cloud]"' in install[0]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"serving", "cloud"} <= set(extras)
    for keyword, rest in steps:
        if keyword == "COPY":
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_flags_of_the_tf_serving_mode_are_refused_with_vertex(capsys):
    from tfrun.runner.serve_cli import main

    assert main(["--vertex", "--rest_api_port=8501"]) == 2
    assert "--rest_api_port and --model_config_file do not apply" in capsys.readouterr().err


def test_settings_follow_vertex_defaults_and_reject_bad_values():
    conf = container.settings_from_env({"AIP_STORAGE_URI": "gs://b/m"})
    assert conf == container.ContainerSettings(8080, "/health", "/predict", "gs://b/m")
    conf = container.settings_from_env(
        {
            "AIP_HTTP_PORT": "9000",
            "AIP_HEALTH_ROUTE": HEALTH,
            "AIP_PREDICT_ROUTE": PREDICT,
            "AIP_STORAGE_URI": "gs://b/m",
        },
        "/models/x",
    )
    assert conf == container.ContainerSettings(9000, HEALTH, PREDICT, "/models/x")
    for env, word in (
        ({}, "AIP_STORAGE_URI"),
        ({"AIP_STORAGE_URI": "s3://b/m"}, "s3://b/m"),
        ({"AIP_STORAGE_URI": "gs://b", "AIP_HTTP_PORT": "http"}, "AIP_HTTP_PORT"),
        ({"AIP_STORAGE_URI": "gs://b", "AIP_PREDICT_ROUTE": "predict"}, "AIP_PREDICT_ROUTE"),
    ):
        with pytest.raises(ValueError, match=word):
            container.settings_from_env(env)


def test_savedmodel_dir_takes_the_folder_or_its_highest_version(tmp_path: Path):
    for folder in ("model", "repo/2", "repo/10", "repo/notes", "repo/11/assets"):
        (tmp_path / folder).mkdir(parents=True)
    for folder in ("model", "repo/2", "repo/10"):
        (tmp_path / folder / "saved_model.pb").write_bytes(b"")
    assert container.savedmodel_dir(tmp_path / "model") == (tmp_path / "model", 1)
    assert container.savedmodel_dir(tmp_path / "repo") == (tmp_path / "repo" / "10", 10)
    with pytest.raises(FileNotFoundError, match="gs://b/empty"):
        container.savedmodel_dir(tmp_path / "repo" / "notes", "gs://b/empty")


def test_routes_before_the_model_is_loaded():
    app = container.VertexApp(HEALTH, PREDICT)
    assert app.handle("GET", HEALTH, b"") == (503, '{ "error": "loading" }')
    assert app.handle("POST", PREDICT, b'{"instances": [[1]]}') == (503, '{ "error": "loading" }')
    assert app.handle("GET", PREDICT, b"")[0] == 405
    assert app.handle("POST", HEALTH, b"")[0] == 405
    status, text = app.handle("GET", "/v1/models/x", b"")
    assert status == 404 and HEALTH in json.loads(text)["error"]


def test_a_model_that_cannot_be_fetched_ends_the_container(gcs_emulator, tmp_path: Path):
    port = free_port()
    proc, log = start(
        tmp_path,
        {
            "AIP_HTTP_PORT": str(port),
            "AIP_STORAGE_URI": f"gs://{BUCKET}-none/model",
            "STORAGE_EMULATOR_HOST": gcs_emulator.url,
        },
    )
    try:
        assert proc.wait(60) == 1, log.read_text()
    finally:
        stop(proc)
    text = log.read_text()
    assert f"Failed to load the model from gs://{BUCKET}-none/model" in text, text
    assert list((tmp_path / "tmp").iterdir()) == []


# ------------------------------------------------------------------------------------------ TensorFlow
@pytest.mark.slow
def test_vertex_container_serves_a_model_from_gcs(gcs_emulator, tmp_path: Path):
    model = tmp_path / "export"
    digits_model(model, seed=7)
    uri = f"gs://{BUCKET}/models/digits"
    upload(gcs_emulator.url, model, uri)
    port = free_port()
    proc, log = start(
        tmp_path,
        {
            "AIP_HTTP_PORT": str(port),
            "AIP_HEALTH_ROUTE": HEALTH,
            "AIP_PREDICT_ROUTE": PREDICT,
            "AIP_STORAGE_URI": uri,
            "STORAGE_EMULATOR_HOST": gcs_emulator.url,
        },
        "--max_request_bytes=65536",
    )
    try:
        seen = wait_ready(proc, log, port, HEALTH)
        assert seen[0] == 503 and seen[-1] == 200, seen  # listening before the model is loaded
        downloads = list((tmp_path / "tmp").glob("tfrun-vertex-*"))
        assert len(downloads) == 1 and (downloads[0] / "model" / "saved_model.pb").is_file()

        pixels = np.random.default_rng(3).uniform(0, 16, size=(6, 8, 8)).astype(np.float32)
        body = json.dumps({"instances": pixels.tolist(), "parameters": {"signature_name": "serving_default"}})
        status, text = call(port, "POST", PREDICT, body.encode(), {"Content-Type": "application/json"})
        assert status == 200, text
        assert text == expected_body(model, pixels=pixels)  # bit-exact floats, one row per instance
        rows = json.loads(text)["predictions"]
        assert np.asarray(rows).shape == (6, 10)  # tfrun's export: the probabilities alone, as the book reads them

        status, text = call(port, "POST", PREDICT, b'{"instances": [[1, 2]]}')
        assert status == 400 and "Incompatible shapes" in json.loads(text)["error"]
        status, text = call(port, "POST", PREDICT, b'{"instances": [[[0]]], "parameters": {"signature_name": "x"}}')
        assert status == 400 and '"x" not found' in json.loads(text)["error"]
        status, text = call(port, "POST", PREDICT, b'{"instances": ')
        assert status == 400 and "JSON Parse error" in json.loads(text)["error"]
        status, text = call(port, "GET", "/v1/endpoints/1/deployedModels/3")
        assert status == 404 and "error" in json.loads(text)

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # refused before the body is sent
        conn.putrequest("POST", PREDICT)
        conn.putheader("Content-Length", str(100_000))
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 429 and "exceeds the limit of 65536" in json.loads(response.read())["error"]
        conn.close()

        sigterm(proc, log)
        assert list((tmp_path / "tmp").iterdir()) == []  # the download folder is gone
        files = sum(1 for f in model.rglob("*") if f.is_file())
        assert f"loaded {files} file(s) from {uri}" in log.read_text()
    finally:
        stop(proc)


@pytest.mark.slow
def test_vertex_container_serves_the_newest_version_of_a_local_repository(tmp_path: Path):
    repo = tmp_path / "repo"
    batch_model(repo / "1")
    examples_model(repo / "3")  # serving_default: x float32 [-1, 1] -> doubled (one output)
    port = free_port()
    proc, log = start(tmp_path, {"AIP_HTTP_PORT": str(port), "AIP_STORAGE_URI": str(repo)})
    try:
        wait_ready(proc, log, port, container.DEFAULT_HEALTH_ROUTE)
        status, text = call(port, "POST", container.DEFAULT_PREDICT_ROUTE, b'{"instances": [[1.5], [2]]}')
        assert (status, text) == (200, '{\n    "predictions": [[3.0], [4.0]]\n}')  # one list per instance
        status, text = call(port, "POST", container.DEFAULT_PREDICT_ROUTE, b'{"instances": [{"x": [0.1]}]}')
        assert (status, text) == (200, expected_body(repo / "3", x=np.array([[0.1]], np.float32)))
        assert "version 3" in log.read_text()
        sigterm(proc, log)
    finally:
        stop(proc)
