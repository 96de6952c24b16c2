"""target=tfserving, job=rollback and job=serve through the real `tfrun` command.

The load test keeps one embedded server running (target.keep_running=true), fires requests from
four threads over REST and gRPC while a second run rolls version 2 in (target.attach=true) and a
rollback job takes the repository back to version 1, and checks every answer against the versions
ModelService reported live at that moment. Servers are stopped by their recorded PIDs.
"""

from __future__ import annotations

import bisect
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import BIN, command_env, copy_trained, read_record, tfrun
from tfrun.tasks.tfserving.backends import free_port, pid_alive, stop_pid
from tfrun.tasks.tfserving.clients import GrpcClient, RestClient, ServingRequestError

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

QUICK = ["train.epochs=3", "train.verbose=0"]


def _deployment(record: dict) -> dict:
    (deployment,) = [d for d in record["deployments"] if d["kind"] == "tfserving"]
    return deployment


def _check(proc: subprocess.CompletedProcess, code: int = 0) -> None:
    assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"


# --------------------------------------------------------------------------------- the default run
def test_tfrun_target_tfserving_serves_checks_parity_and_records_urls_and_latencies(workdir: Path):
    proc = tfrun("target=tfserving", *QUICK, "hydra.run.dir=runs/a", cwd=workdir)
    _check(proc)
    record = read_record(workdir / "runs/a")
    assert record["status"] == "succeeded"
    assert record["plan"][-5:] == [
        "tfserving_push",
        "tfserving_start",
        "tfserving_parity",
        "tfserving_latency",
        "tfserving_report",
    ]
    d = _deployment(record)
    assert d["status"] == "stopped" and d["backend"] == "embedded" and d["model_name"] == "digits_mlp"
    assert d["version"] == 1 and d["version_path"] == "models/digits_mlp/0001" and d["host"] == "127.0.0.1"
    assert d["grpc_target"].startswith("127.0.0.1:") and d["rest_url"].startswith("http://127.0.0.1:")
    assert d["predict_url"] == d["rest_url"] + ":predict" and d["pid"] is None
    assert not pid_alive(d["server_pid"]), "the server is stopped by PID at the end of the run"
    parity = d["parity"]
    assert parity["passed"] and parity["examples"] == 360 and parity["answered_by_versions"] == [1]
    assert parity["outputs"] == ["probabilities"]  # the default export: no class_id output to check
    assert parity["rest"]["class_ids_consistent"] is None and parity["grpc"]["class_ids_consistent"] is None
    for protocol in ("rest", "grpc"):
        assert parity[protocol]["exact"] and parity[protocol]["max_abs_diff"] == 0.0
        assert parity[protocol]["max_abs_diff_vs_evaluate"] <= 1e-6
        for batch in ("batch_1", "batch_256"):
            stats = d["latency_ms"][protocol][batch]
            assert 0 < stats["p50_ms"] <= stats["p99_ms"], stats
    start = next(s for s in record["steps"] if s["name"] == "tfserving_start")["result"]
    assert start["backends"]["embedded"] == "available" and start["model_status"][0]["state"] == "AVAILABLE"
    warmup = [a for a in record["artifacts"] if a["kind"] == "tfserving_warmup"]
    assert warmup and (workdir / warmup[0]["path"]).is_file()
    assert "tfserving_report" in proc.stdout and "stopped" in proc.stdout
    assert str(workdir) not in (workdir / "runs/a/record.json").read_text(), "no absolute paths in the record"


def test_failed_health_check_rolls_the_new_version_back(trained_digits: Path, workdir: Path):
    """The suite's shared trained run, deployed (job=deploy: served in place as version 1); the health check and
    the rollback are tested here, not the training."""
    copy_trained(trained_digits, workdir)
    proc = tfrun(
        "job=deploy",
        "source=runs/train",
        "target=tfserving",
        "target.start_timeout_s=0.001",  # no server serves 1 ms after its start: the health check fails
        "hydra.run.dir=runs/b",
        cwd=workdir,
    )
    _check(proc, 1)
    record = read_record(workdir / "runs/b")
    assert record["status"] == "failed" and record["error"]["type"] == "DeploymentFailed"
    assert "rolled back" in record["error"]["message"]
    d = _deployment(record)
    assert d["status"] == "rolled_back" and d["rolled_back"]["version"] == 1
    assert d["rolled_back"]["moved_to"].startswith("models/digits_mlp/.rolled-back/0001-")
    assert (workdir / d["rolled_back"]["moved_to"] / "saved_model.pb").is_file(), "set aside, not deleted"
    assert not (workdir / "models/digits_mlp/0001").exists()
    assert not pid_alive(d["server_pid"])
    skipped = [s["result"] for s in record["steps"] if s["name"] in ("tfserving_parity", "tfserving_latency")]
    assert all(r["skipped"] for r in skipped)


# ------------------------------------------------------------------------------------ the load test
class Load:
    """Client threads (REST and gRPC, asking for the latest version) and a ModelService monitor."""

    def __init__(self, grpc_target: str, rest_url: str, model: str, x: np.ndarray):
        self.grpc_target, self.rest_url, self.model, self.x = grpc_target, rest_url, model, x
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers: list[tuple[int, str, float, float, object, int | None]] = []  # thread, proto, t0, t1, probs, v
        self.failures: list[str] = []
        self.samples: list[tuple[float, float, frozenset]] = []  # (sent, answered, AVAILABLE versions)
        self.threads = [
            threading.Thread(target=self._client, args=(i, "rest" if i % 2 else "grpc"), daemon=True) for i in range(4)
        ]
        self.threads.append(threading.Thread(target=self._monitor, daemon=True))

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _client(self, index: int, protocol: str) -> None:
        rest, grpc_client = RestClient(self.rest_url, retries=0), GrpcClient(self.grpc_target, retries=0)
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                if protocol == "rest":  # version 1 answers probabilities alone (unnamed), version 2 also class_id
                    out, version = rest.predict(self.model, instances=self.x), None
                    probs = np.asarray(out.get("probabilities", out.get("output")), np.float32)
                else:
                    out, version = grpc_client.predict(self.model, {"pixels": self.x})
                    probs = out["probabilities"]
            except Exception as err:  # noqa: BLE001 - every failure counts
                with self.lock:
                    self.failures.append(f"{protocol}: {err!r}")
                continue
            with self.lock:
                self.answers.append((index, protocol, t0, time.monotonic(), probs, version))
            time.sleep(0.02)  # ~4 x 40 requests/s: steady load that leaves the CPU to the second run
        rest.close()
        grpc_client.close()

    def _monitor(self) -> None:
        client = GrpcClient(self.grpc_target)
        while not self.stop.is_set():
            try:
                sent = time.monotonic()
                live = frozenset(s["version"] for s in client.status(self.model) if s["state"] == "AVAILABLE")
                self.samples.append((sent, time.monotonic(), live))
            except ServingRequestError as err:
                self.failures.append(f"status: {err}")
            time.sleep(0.02)
        client.close()

    def live_latest(self, t0: float, t1: float) -> set[int]:
        """Every version that may have been the latest AVAILABLE one during [t0, t1].

        A sample's state was read at some moment between its sending and its answer (a loaded machine can stretch
        that): from the last sample answered by t0 to the first sample sent after t1, both ends included.
        """
        if len(getattr(self, "_answered", ())) != len(self.samples):
            self._sent = [sent for sent, _, _ in self.samples]
            self._answered = [answered for _, answered, _ in self.samples]
        first = max(bisect.bisect_right(self._answered, t0) - 1, 0)
        last = min(bisect.bisect_left(self._sent, t1), len(self.samples) - 1)
        return {max(live) for _, _, live in self.samples[first : last + 1] if live}


@pytest.fixture(scope="module")
def rolled(tmp_path_factory: pytest.TempPathFactory):
    """Run 1 (kept running) -> load -> run 2 attached (version 2) -> rollback job to version 1."""
    workdir = tmp_path_factory.mktemp("load")
    run1 = tfrun("target=tfserving", "target.keep_running=true", *QUICK, "hydra.run.dir=runs/v1", cwd=workdir)
    _check(run1)
    first = _deployment(read_record(workdir / "runs/v1"))
    pid = first["pid"]
    assert first["status"] == "serving" and pid_alive(pid) and first["stop"] == f"kill {pid}"
    try:
        port = lambda target: target.rsplit(":", 1)[1]  # noqa: E731
        grpc_port, rest_port = port(first["grpc_target"]), port(first["rest_url"].split("/v1/")[0])
        base = first["rest_url"].split("/v1/")[0]
        x = np.round(np.random.default_rng(0).random((1, 8, 8)) * 16).astype(np.float32)
        grpc_client = GrpcClient(first["grpc_target"])
        ref = {1: grpc_client.predict("digits_mlp", {"pixels": x}, version=1)[0]["probabilities"]}
        load = Load(first["grpc_target"], base, "digits_mlp", x)
        load.start()
        time.sleep(1.0)
        marks = {"run2_started": time.monotonic()}
        run2 = tfrun(
            "target=tfserving",
            "target.attach=true",
            f"target.grpc_port={grpc_port}",
            f"target.rest_port={rest_port}",
            "train.seed=7",
            "export.class_id_output=true",
            *QUICK,
            "hydra.run.dir=runs/v2",
            cwd=workdir,
        )
        _check(run2)
        ref[2] = grpc_client.predict("digits_mlp", {"pixels": x}, version=2)[0]["probabilities"]
        marks["rollback_started"] = time.monotonic()
        rollback = tfrun(
            "job=rollback", "rollback.to_version=1", f"rollback.url={base}", "hydra.run.dir=runs/rb", cwd=workdir
        )
        _check(rollback)
        marks["rollback_done"] = time.monotonic()
        deadline = time.monotonic() + 60
        while len(load.answers) < 2000 or time.monotonic() < marks["rollback_done"] + 1.0:
            assert time.monotonic() < deadline, f"only {len(load.answers)} answers"
            time.sleep(0.1)
        load.join()
        grpc_client.close()
        yield {
            "workdir": workdir,
            "load": load,
            "ref": ref,
            "marks": marks,
            "pid": pid,
            "first": first,
            "run2": read_record(workdir / "runs/v2"),
            "rollback": read_record(workdir / "runs/rb"),
        }
    finally:
        assert stop_pid(pid, timeout=20), "the kept server stops by its recorded PID"


def test_second_run_rolls_version_2_into_the_running_server(rolled):
    run2 = rolled["run2"]
    assert run2["status"] == "succeeded"
    d = _deployment(run2)
    assert d["backend"] == "attached" and d["version"] == 2 and d["status"] == "serving"
    assert d["parity"]["passed"] and d["parity"]["answered_by_versions"] == [2]
    assert not np.array_equal(rolled["ref"][1], rolled["ref"][2]), "the two versions answer differently"
    # version 2 was exported with export.class_id_output=true: parity checked the class ids too
    assert d["parity"]["outputs"] == ["class_id", "probabilities"]
    assert d["parity"]["rest"]["class_ids_consistent"] is True and d["parity"]["grpc"]["class_ids_consistent"] is True
    assert rolled["first"]["parity"]["outputs"] == ["probabilities"]  # version 1: the default export


def test_rollback_job_sets_version_2_aside_and_waits_for_the_server(rolled):
    record = rolled["rollback"]
    assert record["status"] == "succeeded" and record["plan"] == ["tfserving_rollback"]
    result = record["steps"][0]["result"]
    assert result["to_version"] == 1 and result["versions_before"] == [1, 2] and result["versions_after"] == [1]
    assert list(result["set_aside"]) == ["2"] and result["server"].startswith("http://127.0.0.1:")
    live = [s for s in result["model_status"] if s["state"] == "AVAILABLE"]
    assert [s["version"] for s in live] == [1]
    assert (rolled["workdir"] / result["set_aside"]["2"] / "saved_model.pb").is_file()


def test_no_failed_request_and_every_answer_from_the_version_live_then(rolled):
    load, ref = rolled["load"], rolled["ref"]
    assert not load.failures, load.failures[:5]
    answers = load.answers
    assert len(answers) >= 2000
    assert {p for _, p, *_ in answers} == {"rest", "grpc"}
    assert min(sum(1 for _, p, *_ in answers if p == proto) for proto in ("rest", "grpc")) >= 500
    per_thread: dict[int, list[int]] = {}
    for index, protocol, t0, t1, probs, reported in answers:
        matches = [v for v, r in ref.items() if np.array_equal(probs, r)]
        assert len(matches) == 1, f"{protocol} answer matches no version exactly: {probs}"
        version = matches[0]
        if reported is not None:
            assert reported == version, "gRPC's model_spec.version names the version that computed the answer"
        allowed = load.live_latest(t0, t1)
        assert version in allowed, f"{protocol} request {t0:.3f}-{t1:.3f} answered by {version}, live: {allowed}"
        per_thread.setdefault(index, []).append(version)
    for index, versions in per_thread.items():
        changes = [v for i, v in enumerate(versions) if i == 0 or versions[i - 1] != v]
        assert changes == [1, 2, 1], f"thread {index} saw {changes}"


def test_attached_run_with_a_different_model_fails_parity_and_rolls_back(rolled, trained_digits: Path):
    """A deploy whose model is not what the server serves under that version (the suite's shared trained run, copied
    into another repository as its version 1): parity fails, version set aside."""
    workdir, first = rolled["workdir"], rolled["first"]
    copy_trained(trained_digits, workdir / "shared")
    base = first["rest_url"].split("/v1/")[0]
    grpc_port, rest_port = first["grpc_target"].rsplit(":", 1)[1], base.rsplit(":", 1)[1]
    proc = tfrun(
        "job=deploy",
        "source=shared/runs/train",
        "target=tfserving",
        "target.attach=true",
        f"target.grpc_port={grpc_port}",
        f"target.rest_port={rest_port}",
        "target.base_path=other_models",
        "hydra.run.dir=runs/mismatch",
        cwd=workdir,
    )
    _check(proc, 1)
    record = read_record(workdir / "runs/mismatch")
    d = _deployment(record)
    assert d["status"] == "rolled_back" and d["failure"].startswith("parity failed")
    assert not d["parity"]["passed"] and d["parity"]["rest"]["max_abs_diff"] > 0
    assert d["rolled_back"]["moved_to"].startswith("other_models/digits_mlp/.rolled-back/0001-")
    assert not (workdir / "other_models/digits_mlp/0001").exists()
    assert record["error"]["type"] == "DeploymentFailed"
    assert pid_alive(rolled["pid"]), "an attached server is not this run's to stop"


# ------------------------------------------------------------------------------------------ job=serve
def test_serve_job_runs_a_server_in_the_foreground_until_ctrl_c(rolled):
    workdir = rolled["workdir"]
    grpc_port, rest_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            str(BIN / "tfrun"),
            "job=serve",
            f"serve.grpc_port={grpc_port}",
            f"serve.rest_port={rest_port}",
            "hydra.run.dir=runs/serve",
        ],
        cwd=workdir,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        rest = RestClient(f"http://127.0.0.1:{rest_port}", retries=0)
        states = rest.wait_available("digits_mlp", timeout=90, alive=lambda: proc.poll() is None)
        assert [s["version"] for s in states if s["state"] == "AVAILABLE"] == [1]
        x = np.zeros((2, 8, 8), np.float32)
        assert rest.predict("digits_mlp", instances=x)["output"].shape == (2, 10)  # one output: unnamed in REST
        rest.close()
        # The server answers before the step has printed its line: wait for it, then stop the job.
        run_log, deadline = workdir / "runs/serve/run.log", time.monotonic() + 60
        while "serving digits_mlp" not in (run_log.read_text() if run_log.exists() else ""):
            assert time.monotonic() < deadline and proc.poll() is None, "the serve step never said it was serving"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out[-3000:]  # Ctrl-C is how job=serve ends: stopped, not interrupted
    assert "serving digits_mlp" in out and f"127.0.0.1:{grpc_port}" in out
    assert "Interrupted" not in out and "during step None" not in out and "Traceback" not in out, out
    assert "(stopped by Ctrl-C or SIGTERM)" in out and "[tfrun] stopped by SIGINT" in out
    assert "[tfrun] succeeded" in out
    record = read_record(workdir / "runs/serve")
    assert (
        record["status"] == "succeeded" and record["stopped_by"] == "SIGINT" and record["plan"] == ["tfserving_serve"]
    )
    (d,) = record["deployments"]
    assert d["status"] == "stopped" and d["backend"] == "embedded"
    assert not pid_alive(d["pid"]), "the foreground server stops with the job"
