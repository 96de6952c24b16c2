"""A model version number names one model, the records say where versions went, and job=serve ends
honestly (issue 30 items 1, 3 and 10).

Through the real `tfrun` command: a deployment that fails its health check moves its version to
`.rolled-back/`; the next export takes a new number and the failed run's record says where its version
is now. A rollback job against a server that does not answer touches nothing. Ctrl-C, the way to end
job=serve, ends it as succeeded with a "stopped" line.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import BIN, command_env, read_record, tfrun
from tfrun.tasks.tfserving.backends import free_port, pid_alive
from tfrun.tasks.tfserving.clients import RestClient

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_a_rolled_back_version_number_is_never_given_again(workdir: Path):
    failed = tfrun(
        "target=tfserving",
        "train.epochs=1",
        "train.verbose=0",
        "target.start_timeout_s=0.5",  # the health check fails: automatic rollback of version 1
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


def test_ctrl_c_ends_job_serve_as_stopped_not_interrupted(workdir: Path):
    trained = tfrun("train.epochs=1", "train.verbose=0", "hydra.run.dir=runs/train", cwd=workdir)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    rest_port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "tfrun"), "job=serve", "serve.grpc_port=0", f"serve.rest_port={rest_port}", "hydra.run.dir=runs/s"],
        cwd=workdir,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        rest = RestClient(f"http://127.0.0.1:{rest_port}", retries=0)
        rest.wait_available("digits_mlp", timeout=120, alive=lambda: proc.poll() is None)
        rest.close()
        run_log, deadline = workdir / "runs/s/run.log", time.monotonic() + 60
        while "serving digits_mlp" not in (run_log.read_text() if run_log.exists() else ""):
            assert time.monotonic() < deadline and proc.poll() is None, "the serve step never said it was serving"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out[-3000:]
    assert "Interrupted" not in out and "during step None" not in out and "Traceback" not in out, out
    assert "(stopped by Ctrl-C or SIGTERM)" in out and "[tfrun] stopped by SIGINT" in out
    assert "[tfrun] succeeded" in out
    record = read_record(workdir / "runs/s")
    assert record["status"] == "succeeded" and record["stopped_by"] == "SIGINT" and record["error"] is None
    (d,) = record["deployments"]
    assert d["status"] == "stopped" and d["stopped"] == "stopped by Ctrl-C or SIGTERM"
    assert not pid_alive(d["pid"]), "the foreground server stops with the job"
