"""A real MLflow tracking server for the tests (fixture `mlflow_server`, one per test module): `mlflow server` on
127.0.0.1 with a free port, a SQLite store (the model registry needs a database-backed store) and proxied
artifacts in a temporary folder, without MLflow's job runner (not used here), stopped by its process group.

The server's mlflow is the test environment's own (the mlflow extra); TFRUN_MLFLOW_SERVER names another `mlflow`
executable. The one place to change when the server moves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.helpers import BIN, command_env, free_port

SERVER_ENV = "TFRUN_MLFLOW_SERVER"


def server_executable() -> Path:
    """The `mlflow` that runs the server: TFRUN_MLFLOW_SERVER, else this environment's."""
    return Path(os.environ.get(SERVER_ENV) or BIN / "mlflow")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server's URL (http://127.0.0.1:PORT), up until the module's tests are done."""
    store = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    proc = subprocess.Popen(
        [
            str(server_executable()),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{store}/mlflow.db",
            "--artifacts-destination",
            str(store / "artifacts"),
            "--workers",
            "1",
        ],
        cwd=store,
        # no job runner: MLflow 3 starts one by default (a runner and seven huey consumers that poll for jobs all
        # along), for its GenAI jobs; tracking and the registry do not use it, and it tripled the server's CPU
        env=command_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),
        stdout=open(store / "server.log", "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, (store / "server.log").read_text()
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        raise AssertionError("mlflow server did not start:\n" + (store / "server.log").read_text())
    yield url
    # SIGKILL at once: on SIGTERM it takes 4-6 s to drain (measured), and the store is a temp dir nobody reads after
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
