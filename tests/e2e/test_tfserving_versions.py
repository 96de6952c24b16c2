"""A model version number names one model and the records say where versions went.

Through the real `tfrun` command: a deployment that fails its health check moves its version to
`.rolled-back/`; the next export takes a new number and the failed run's record says where its version
is now. A rollback job against a server that does not answer touches nothing. (Ctrl-C ending job=serve as
"stopped" is held by test_tfserving_e2e.py's serve test.)
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers import read_record, tfrun
from tfrun.tasks.tfserving.backends import free_port

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_a_rolled_back_version_number_is_never_given_again(workdir: Path):
    failed = tfrun(
        "target=tfserving",
        "train.epochs=1",
        "train.verbose=0",
        "target.start_timeout_s=0.001",  # the health check fails (no server serves 1 ms after its start): rollback of version 1
        "hydra.run.dir=runs/failed",
        cwd=workdir,
    )
    assert failed.returncode == 1, failed.stdout[-3000:] + failed.stderr[-3000:]
    record = read_record(workdir / "runs/failed")
    (saved,) = [a for a in record["artifacts"] if a["kind"] == "saved_model"]
    assert saved["path"] == "models/digits_mlp/0001"
    assert saved["moved_to"].startswith("models/digits_mlp/.rolled-back/0001-"), saved
    assert (workdir / saved["moved_to"] / "saved_model.pb").is_file()
    assert f"saved_model: models/digits_mlp/0001 (moved to {saved['moved_to']})" in failed.stdout
    assert "Traceback" not in failed.stdout + failed.stderr and "DeploymentFailed" in failed.stdout

    again = tfrun("train.epochs=1", "train.verbose=0", "hydra.run.dir=runs/next", cwd=workdir)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    (saved,) = [a for a in read_record(workdir / "runs/next")["artifacts"] if a["kind"] == "saved_model"]
    assert saved["path"] == "models/digits_mlp/0002" and saved["version"] == 2
    assert not (workdir / "models/digits_mlp/0001").exists(), "number 1 stays with the rolled-back model"


def _repository(workdir: Path, versions: list[int]) -> Path:
    """models/digits_mlp/<NNNN> folders (job=rollback moves folders; it never loads a model)."""
    model = workdir / "models" / "digits_mlp"
    for v in versions:
        (model / f"{v:04d}").mkdir(parents=True)
        (model / f"{v:04d}" / "saved_model.pb").write_bytes(str(v).encode())
    return model


def test_rollback_against_a_server_that_does_not_answer_touches_nothing(workdir: Path):
    model = _repository(workdir, [1, 2])
    port = free_port()  # nothing listens there
    started = time.monotonic()
    proc = tfrun(
        "job=rollback", f"rollback.url=http://127.0.0.1:{port}", "hydra.run.dir=runs/rollback", cwd=workdir, timeout=120
    )
    elapsed = time.monotonic() - started
    console = proc.stdout + proc.stderr
    assert proc.returncode == 1, console
    assert "Traceback" not in console and "TimeoutError" not in console
    assert elapsed < 45, f"{elapsed:.0f} s: it waited for rollback.wait_s (60 s) instead of probing first"
    assert sorted(p.name for p in model.iterdir()) == ["0001", "0002"], "nothing moved"
    error = read_record(workdir / "runs/rollback")["error"]
    assert error["type"] == "RollbackFailed" and "nothing was moved" in error["message"]
    assert f"127.0.0.1:{port}" in error["message"] and "nothing was moved" in console


class _StuckServer:
    """A REST endpoint that keeps reporting version 2 AVAILABLE: a server that never follows a rollback."""

    def __init__(self) -> None:
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                body = b'{"model_version_status": [{"version": "2", "state": "AVAILABLE", '
                body += b'"status": {"error_code": "OK", "error_message": ""}}]}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_rollback_the_server_does_not_follow_is_undone(workdir: Path):
    model = _repository(workdir, [1, 2])
    server = _StuckServer()
    try:
        proc = tfrun(
            "job=rollback",
            f"rollback.url={server.url}",
            "rollback.wait_s=2",
            "hydra.run.dir=runs/stuck",
            cwd=workdir,
            timeout=120,
        )
    finally:
        server.stop()
    console = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in console, console
    assert sorted(p.name for p in model.iterdir() if not p.name.startswith(".")) == ["0001", "0002"], "put back"
    assert (model / "0002" / "saved_model.pb").read_bytes() == b"2"
    assert not list((model / ".rolled-back").iterdir())
    error = read_record(workdir / "runs/stuck")["error"]
    assert error["type"] == "RollbackFailed" and "rollback was undone" in error["message"], error
    assert "2 back to models/digits_mlp/0002" in error["message"]
