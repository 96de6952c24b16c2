"""fake-vertex as a subprocess for tests: `start_fake_vertex()` and the `fake_vertex` pytest fixture.

The fixture runs `python -m tests.fakes.vertex --port 0` on 127.0.0.1 against the session's `gcs_emulator`
(tests/fakes/gcs.py), reads the port from its first line, and stops it by PID at the end of the test
(SIGTERM: the fake stops its containers; SIGKILL of the group after a grace period). Its prebuilt-image serving
containers fork from the session's `serving_zygote` (serving_zygote.py: TensorFlow imported once per test process,
not once per container). Register it with
`pytest_plugins = [..., "tests.fakes.vertex.fixture"]` in tests/conftest.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.fakes import processes
from tests.fakes.vertex import serving_zygote as serving_zygote_process

ROOT = Path(__file__).resolve().parents[3]
_LISTENING = re.compile(r"fake-vertex listening on (http://\S+)")


class FakeVertexError(RuntimeError):
    pass


@dataclass
class FakeVertex:
    """A running fake-vertex process: its URL, and the control API as methods."""

    url: str
    pid: int
    process: subprocess.Popen
    workdir: Path
    log_path: Path
    storage_endpoint: str | None

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise FakeVertexError(f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')}") from None

    def calls(self, method: str | None = None, path: str | None = None) -> list[dict]:
        """Logged Vertex calls (method, path, query, status, time, ms) in the order they came, optionally filtered
        (path: regex). The server logs a call as its handler ends, after the response went out, so under load the
        SDK's next request can be logged first: sorted here by when each came."""
        calls = sorted(self._call("GET", "/_fake/calls")["calls"], key=lambda c: c["time"])
        return [
            c
            for c in calls
            if (method is None or c["method"] == method) and (path is None or re.search(path, c["path"]))
        ]

    def clear_calls(self) -> None:
        self._call("DELETE", "/_fake/calls")

    def fail(
        self,
        method: str,
        path: str,
        mode: str = "http",
        times: int = 1,
        code: int | str = "INTERNAL",
        message: str | None = None,
    ) -> dict:
        """Make the next `times` calls matching METHOD and the path regex fail (mode http|operation|job)."""
        return self._call(
            "POST",
            "/_fake/faults",
            {"method": method, "path": path, "mode": mode, "times": times, "code": code, "message": message},
        )

    def faults(self) -> list[dict]:
        return self._call("GET", "/_fake/faults")["faults"]

    def state(self) -> dict:
        """Every model, endpoint, job, operation, container and training replica (with PIDs) the fake holds."""
        return self._call("GET", "/_fake/state")

    def replicas(self, job: str | None = None, trial: str | None = None) -> list[dict]:
        """Training replicas (name, pool, index, taskType, pid, alive, restarts, log, env, ...), optionally of
        one job (resource name or id) and trial id."""
        return [
            r
            for r in self.state()["replicas"]
            if (job is None or r["job"] == job or r["job"].rsplit("/", 1)[-1] == job)
            and (trial is None or r["trial"] == trial)
        ]

    def settings(self, **values: Any) -> dict:
        """Read, or change (e.g. maxReplicaRestarts=0), the fake's settings; reset() restores them."""
        if values:
            return self._call("POST", "/_fake/settings", values)
        return self._call("GET", "/_fake/settings")

    def reset(self) -> None:
        self._call("POST", "/_fake/reset")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the fake (it stops its containers first); SIGKILL its group if it does not exit."""
        processes.stop(self.process, timeout, group=True)


def fake_env() -> dict[str, str]:
    """The environment of a fake-vertex process (and of the serving zygote its containers fork from)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def start_fake_vertex(
    storage_endpoint: str | None = None,
    workdir: Path | str | None = None,
    *,
    deploy_timeout: float = 60.0,
    seed: int | None = None,
    timeout: float = 20.0,
    serving_zygote: str | None = None,
) -> FakeVertex:
    """Start fake-vertex on 127.0.0.1 (a free port) and wait until it listens; with `serving_zygote` (a socket
    path, fixture `serving_zygote`) its prebuilt-image containers fork from that warm process."""
    workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="fake-vertex-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "fake-vertex.log"
    argv = [
        sys.executable,
        "-m",
        "tests.fakes.vertex",
        "--port",
        "0",
        "--workdir",
        str(workdir),
        "--deploy-timeout",
        str(deploy_timeout),
    ]
    if storage_endpoint:
        argv += ["--storage-endpoint", storage_endpoint]
    if seed is not None:
        argv += ["--seed", str(seed)]
    if serving_zygote:
        argv += ["--serving-zygote", serving_zygote]
    env = fake_env()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    fake = FakeVertex("", process.pid, process, workdir, log_path, storage_endpoint)
    deadline = time.monotonic() + timeout
    try:
        while True:
            match = _LISTENING.search(log_path.read_text(errors="replace"))
            if match:
                fake.url = match.group(1)
                return fake
            if process.poll() is not None:
                raise FakeVertexError(f"fake-vertex exited with {process.returncode}:\n{fake.log_tail()}")
            if time.monotonic() > deadline:
                raise FakeVertexError(f"fake-vertex did not start within {timeout} s:\n{fake.log_tail()}")
            time.sleep(0.02)
    except BaseException:  # a timeout, or Ctrl-C while it starts (the rehearsal): its PID is stopped, not left
        fake.stop()
        raise


def init_sdk(
    fake: FakeVertex, project: str = "fake-proj", location: str = "us-central1", staging_bucket: str | None = None
) -> None:
    """aiplatform.init against this fake: REST transport, anonymous credentials (never a Google endpoint)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    aiplatform.init(
        project=project,
        location=location,
        api_endpoint=fake.url,
        api_transport="rest",
        credentials=AnonymousCredentials(),
        staging_bucket=staging_bucket,
    )


def reset_sdk() -> None:
    """Forget aiplatform.init's settings, in place (aiplatform.init is bound to the global config object)."""
    from google.cloud.aiplatform import initializer

    initializer.global_config.__init__()


@contextmanager
def sdk_with_bucket(
    fake: FakeVertex, gcs_emulator: Any, monkeypatch: pytest.MonkeyPatch, bucket_prefix: str, project: str = "fake-proj"
) -> Iterator[tuple[Any, Any]]:
    """aiplatform.init against `fake` with a fresh bucket `<bucket_prefix>-<random>` in the GCS emulator
    (staging under gs://<bucket>/staging) and job polling every 0.2 s instead of 5 s: (storage client, bucket).
    reset_sdk() on the way out, so no later test inherits this fake's endpoint."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage
    from google.cloud.aiplatform import jobs

    monkeypatch.setattr(jobs, "_JOB_WAIT_TIME", 0.2)  # the SDK sleeps 5 s between job polls
    client = storage.Client(
        project=project, credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs_emulator.url}
    )
    bucket = client.create_bucket(f"{bucket_prefix}-{uuid.uuid4().hex[:12]}")
    init_sdk(fake, project, staging_bucket=f"gs://{bucket.name}/staging")
    try:
        yield client, bucket
    finally:
        reset_sdk()


@pytest.fixture(scope="session")
def serving_zygote() -> Iterator[str]:
    """One serving zygote per test process (tests/fakes/vertex/serving_zygote.py): every fake_vertex forks its
    prebuilt-image containers from it. It imports TensorFlow only when the first such container is asked for."""
    folder = tempfile.mkdtemp(prefix="fake-vertex-zygote-")  # short: a Unix socket's path has ~100 bytes
    path = os.path.join(folder, "socket")
    process = serving_zygote_process.start(path, fake_env(), str(ROOT), os.path.join(folder, "zygote.log"))
    try:
        yield path
    finally:
        processes.stop(process, 10.0, group=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def fake_vertex(
    gcs_emulator: Any, serving_zygote: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FakeVertex]:
    """A fresh fake-vertex for one test, reading and writing gs:// in the session's GCS emulator."""
    fake = start_fake_vertex(gcs_emulator.url, tmp_path_factory.mktemp("fake-vertex"), serving_zygote=serving_zygote)
    try:
        yield fake
    finally:
        fake.stop()
