"""target=tfserving target.replicas=N through the real `tfrun` command: N servers behind Debian's nginx, parity and
timings through the balancer, the record naming the balancer, every replica and what each answered; kept running,
`tfrun-records show` says how to stop the group and that leaves no process. Bad inputs are exit 2 before anything
starts (nginx missing included: under CI this test fails rather than skips when nginx is absent).

Every group deploys the suite's shared trained run (job=deploy: serving is tested here, not training). The kept-running
group of two replicas is one module fixture (`kept`): the tests on it run in file order (state, promote and its undo,
rollback, then stopping it by the shown command), each leaving it serving version 1 alone, as it started."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import BIN, assert_rejected, command_env, copy_trained, read_record, run_tfrun, tfrun
from tfrun.tasks.tfserving.backends import pid_alive
from tfrun.tasks.tfserving.clients import RestClient

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

FEWER_TIMINGS = ["target.latency_requests=20", "target.large_batch_requests=2"]  # timings are not tested here


def _deploy(workdir: Path, *overrides: str) -> subprocess.CompletedProcess:
    """`tfrun job=deploy source=runs/train target=tfserving OVERRIDES` of the copy of the shared trained run."""
    return tfrun("job=deploy", "source=runs/train", "target=tfserving", *FEWER_TIMINGS, *overrides, cwd=workdir)


def _deployment(record: dict) -> dict:
    (deployment,) = [d for d in record["deployments"] if d["kind"] == "tfserving"]
    return deployment


def _check(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"


def _all_gone(pids: list[int], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_three_replicas_behind_nginx_parity_through_the_balancer_then_nothing_left(trained_digits: Path, workdir: Path):
    copy_trained(trained_digits, workdir)
    proc = _deploy(workdir, "target.replicas=3", "hydra.run.dir=runs/a")
    _check(proc)
    record = read_record(workdir / "runs/a")
    assert record["status"] == "succeeded"
    d = _deployment(record)
    balancer, replicas = d["balancer"], d["replicas"]
    assert balancer["kind"] == "nginx" and balancer["rest_url"].startswith("http://127.0.0.1:")
    assert d["grpc_target"] == balancer["grpc_target"] and d["rest_url"].startswith(balancer["rest_url"])
    assert d["parity"]["passed"] and d["parity"]["rest"]["exact"] and d["parity"]["grpc"]["exact"]
    assert len(replicas) == 3 and len({r["grpc_target"] for r in replicas}) == 3
    for r in replicas:
        assert r["answered"]["rest"] > 0 and r["answered"]["grpc"] > 0, replicas
        assert r["grpc_target"].startswith("127.0.0.1:") and (workdir / r["config_file"]).is_file()
    assert set(balancer["statuses"]) == {"200"}, balancer["statuses"]
    assert "through nginx" in next(s for s in record["steps"] if s["name"] == "tfserving_latency")["result"]["summary"]
    assert d["status"] == "stopped" and d["pids"] == []
    pids = [balancer["server_pid"], *(r["server_pid"] for r in replicas)]
    assert _all_gone(pids), "nginx and every replica are stopped at the end of the run"
    assert "3 embedded replicas behind nginx" in proc.stdout
    assert str(workdir) not in (workdir / "runs/a/record.json").read_text(), "no absolute paths in the record"


@pytest.fixture(scope="module")
def kept(trained_digits: Path, tmp_path_factory: pytest.TempPathFactory):
    """A copy of the shared trained run deployed in place (version 1) on 2 replicas kept running with the label
    `stable` on it, and version 2 beside it (a copy of version 1's folder: gRPC answers name their version), not
    served. Yields (launch folder, its deployment entry); the group is killed at the end if a test left it up."""
    workdir = copy_trained(trained_digits, tmp_path_factory.mktemp("kept"))
    model = workdir / "models/digits_mlp"
    shutil.copytree(model / "0001", model / "0002")
    proc = _deploy(
        workdir,
        "target.replicas=2",
        "target.keep_running=true",
        "+target.version_labels={stable:new}",
        "hydra.run.dir=runs/group",
    )
    _check(proc)
    d = _deployment(read_record(workdir / "runs/group"))
    try:
        yield workdir, d
    finally:
        for p in d["pids"]:
            if pid_alive(p):
                subprocess.run(["kill", "-9", str(p)])


def test_the_kept_group_serves_version_1_labelled_stable(kept):
    """The state the tests on `kept` start from (and each leaves it in)."""
    workdir, d = kept
    pids = d["pids"]
    assert d["status"] == "serving" and len(pids) >= 4, d  # nginx's master and worker, two replicas
    assert all(pid_alive(p) for p in pids)
    assert d["version_labels"] == {"stable": 1}
    rest = RestClient(d["balancer"]["rest_url"], retries=0)
    try:
        assert rest.status("digits_mlp")[0]["state"] == "AVAILABLE"
    finally:
        rest.close()


def test_promote_moves_a_label_in_the_running_group_and_its_undo_moves_it_back(kept):
    from tfrun.tasks.tfserving.clients import GrpcClient

    workdir, d = kept
    promoted = tfrun(
        "job=promote",
        "target=tfserving",
        "source=models/digits_mlp/0002",
        "alias=stable",
        "hydra.run.dir=runs/p",
        cwd=workdir,
    )
    _check(promoted)
    promotion = read_record(workdir / "runs/p")["promotion"]
    assert promotion["registry"] == "tfserving" and promotion["alias"] == "stable"
    assert promotion["version"] == 2 and promotion["previous_version"] == 1
    assert promotion["undo"] == "source=models/digits_mlp/0001 alias=stable target=tfserving"
    (group,) = promotion["groups"]
    assert [s["replica"] for s in group["replicas"]] == [0, 1] and group["served_versions"] == [2]
    client = GrpcClient(d["balancer"]["grpc_target"], retries=0)
    try:
        assert {client.predict("digits_mlp", {"pixels": _pixels()}, label="stable")[1] for _ in range(8)} == {2}
        back = tfrun("job=promote", *promotion["undo"].split(), "hydra.run.dir=runs/undo", cwd=workdir)
        _check(back)
        undo = read_record(workdir / "runs/undo")["promotion"]
        assert undo["version"] == 1 and undo["groups"][0]["served_versions"] == [1]
        assert {client.predict("digits_mlp", {"pixels": _pixels()}, label="stable")[1] for _ in range(8)} == {1}
    finally:
        client.close()


def test_rollback_moves_every_replica_of_a_running_group_back_then_sets_the_version_aside(kept):
    """Version 2 promoted as `canary` in the kept group; job=rollback takes every replica back to 1."""
    from tfrun.tasks.tfserving.clients import GrpcClient

    workdir, d = kept
    model = workdir / "models/digits_mlp"
    targets = [d["balancer"]["grpc_target"], *(r["grpc_target"] for r in d["replicas"])]

    def served(label: str | None = None) -> set[int]:
        """The versions answering through the balancer (8 calls: both replicas) and at each replica directly."""
        versions = set()
        for target in targets:
            client = GrpcClient(target, retries=0)
            try:
                versions |= {client.predict("digits_mlp", {"pixels": _pixels()}, label=label)[1] for _ in range(8)}
            finally:
                client.close()
        return versions

    _check(
        tfrun(
            "job=promote",
            "target=tfserving",
            "source=models/digits_mlp/0002",
            "alias=canary",
            "hydra.run.dir=runs/p-canary",
            cwd=workdir,
        )
    )
    assert served() == {2} and served("canary") == {2} and served("stable") == {1}
    with _Load(d["balancer"]["grpc_target"]) as load:  # requests naming no version, through nginx, no retries
        proc = tfrun("job=rollback", "hydra.run.dir=runs/rb", cwd=workdir)
    _check(proc)
    assert load.failed == [] and load.answers > 0, f"{len(load.failed)} failed: {load.failed[:3]}"
    assert load.versions[-1] == 1 and set(load.versions) == {1, 2}
    assert served() == {1} and served("canary") == {1} and served("stable") == {1}
    record = read_record(workdir / "runs/rb")
    assert record["status"] == "succeeded"
    result = next(s for s in record["steps"] if s["name"] == "tfserving_rollback")["result"]
    assert result["to_version"] == 1 and list(result["set_aside"]) == ["2"]
    (group,) = result["groups"]
    assert group["group"] == "runs/group/tfserving-group" and group["balancer"] == d["balancer"]["rest_url"]
    assert group["versions_before"] == [1, 2] and group["versions_after"] == [1]
    assert group["labels_after"] == {"stable": 1, "canary": 1} and group["moved_labels"] == {"canary": [2, 1]}
    assert [s["replica"] for s in group["replicas"]] == [0, 1]
    assert [s["grpc_target"] for s in group["replicas"]] == targets[1:]
    assert all(s["loaded_s"] >= 0 and s["unloaded_s"] >= 0 for s in group["replicas"])
    (entry,) = record["deployments"]
    assert entry["kind"] == "tfserving_rollback" and entry["groups"] == result["groups"]
    assert "1 of 1 replica group(s) moved to version 1" in proc.stdout
    assert not (model / "0002").exists(), "set aside once no replica serves it"
    (aside,) = (model / ".rolled-back").iterdir()
    assert aside.name.startswith("0002-") and (aside / "saved_model.pb").is_file()
    config = (workdir / d["replicas"][1]["config_file"]).read_text()
    assert "versions: 1 }" in config and 'key: "canary" value: 1 }' in config
    again = tfrun("job=rollback", "hydra.run.dir=runs/rb2", cwd=workdir)  # only version 1 left
    assert_rejected(again, ["job='rollback'", "only version 1"], workdir / "runs/rb2")


def test_kept_running_group_is_stopped_by_the_command_the_record_shows(kept):
    """Last on `kept`: `tfrun-records show` names the stop command, which leaves no process and takes the group off
    its model's running groups; a promote then finds no group to move a label in (exit 2)."""
    from tfrun.tasks.tfserving.replicas import ReplicaGroup

    workdir, d = kept
    pids = d["pids"]
    assert all(pid_alive(p) for p in pids)
    show = subprocess.run(
        [str(BIN / "tfrun-records"), "show", "runs/group"],
        cwd=workdir,
        env=command_env(),
        capture_output=True,
        text=True,
    )
    assert show.returncode == 0 and f"stop={d['stop']}" in show.stdout, show.stdout
    subprocess.run(shlex.split(d["stop"]), check=True)
    assert _all_gone(pids), "the shown stop command leaves no process"
    assert ReplicaGroup.running(workdir / "models/digits_mlp") == [], "a stopped group serves the model no more"
    alone = tfrun(
        "job=promote",
        "target=tfserving",
        "source=models/digits_mlp/0001",
        "alias=stable",
        "hydra.run.dir=runs/no",
        cwd=workdir,
    )
    assert_rejected(alone, ["no replica group serves digits_mlp"], workdir / "runs/no")


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["target.replicas=0"], ["target.replicas=0", "[1, 16]"]),
        (["+target.version_labels={stable:new,canary:new}", "+target.split={stable:90,canary:20}"], ["target.split"]),
        (["+target.version_labels={stable:3}", "+target.split={stable:100}"], ["target.version_labels.stable", "'3'"]),
        (["+target.version_labels={stable:new}", "+target.split={stable:90,other:10}"], ["target.split.other"]),
    ],
)
def test_bad_group_inputs_exit_2_before_anything_starts(workdir: Path, overrides: list[str], words: list[str]):
    proc = tfrun("target=tfserving", *overrides, "hydra.run.dir=runs/bad", cwd=workdir, timeout=120)
    assert_rejected(proc, words, workdir / "runs/bad")
    assert not (workdir / "models").exists(), "nothing trained, nothing pushed"


def test_missing_nginx_is_exit_2_naming_the_set_up_script(workdir: Path):
    args = ["target=tfserving", "target.replicas=2", "hydra.run.dir=runs/bad"]
    proc = run_tfrun(args, workdir, command_env(TFRUN_NGINX=str(workdir / "no-nginx")), timeout=120)
    assert_rejected(
        proc, ["target.replicas=2", "nginx is not installed", "scripts/serving_setup.sh"], workdir / "runs/bad"
    )


def test_tfrun_serve_refuses_a_port_out_of_range_and_a_path_as_model_name(workdir: Path):
    for flags, words in (
        (["--port=99999", "--model_base_path=models/m"], "--port=99999 is not a port"),
        (["--model_name=../m", "--model_base_path=models/m"], "is not a model name"),
    ):
        proc = subprocess.run(
            [str(BIN / "tfrun-serve"), *flags],
            cwd=workdir,
            env=command_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


class _Load:
    """One client thread calling Predict through the balancer until the block ends: what failed, which versions
    answered (in order)."""

    def __init__(self, grpc_target: str):
        self.grpc_target, self.failed, self.versions = grpc_target, [], []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def answers(self) -> int:
        return len(self.versions)

    def _run(self) -> None:
        from tfrun.tasks.tfserving.clients import GrpcClient

        client = GrpcClient(self.grpc_target, retries=0)
        try:
            while not self.stop.is_set():
                try:
                    self.versions.append(client.predict("digits_mlp", {"pixels": _pixels()})[1])
                except Exception as err:  # noqa: BLE001 - every failed request is the finding
                    self.failed.append(repr(err))
        finally:
            client.close()

    def __enter__(self) -> "_Load":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.5)  # a few answers after the job ended: the version served from then on
        self.stop.set()
        self.thread.join(timeout=30)


def _pixels():
    import numpy as np

    return np.zeros((1, 8, 8), dtype=np.float32)


def test_a_split_is_measured_through_the_balancer_and_recorded(trained_digits: Path, workdir: Path):
    copy_trained(trained_digits, workdir)
    proc = _deploy(
        workdir,
        "target.replicas=2",
        "+target.version_labels={stable:new,canary:new}",
        "+target.split={stable:90,canary:10}",
        "target.split_requests=1000",
        "target.split_tolerance=7",  # 500 REST calls: one standard deviation of a 10 % share is 1.3 points
        "hydra.run.dir=runs/s",
    )
    _check(proc)
    d = _deployment(read_record(workdir / "runs/s"))
    split = d["split"]
    assert split["passed"] and split["requests"] == 1000 and split["stated"] == {"stable": 90, "canary": 10}
    assert set(split["rest"]) == {"stable", "canary"} and abs(split["rest"]["canary"] - 10) <= 7, split
    assert split["grpc"] is None and "same version" in split["grpc_note"]  # both labels name version 1
    assert d["version_labels"] == {"stable": 1, "canary": 1}
    config = (workdir / d["replicas"][0]["config_file"]).read_text()
    assert 'version_labels { key: "canary" value: 1 }' in config
    nginx = (workdir / d["balancer"]["config"]).read_text()
    assert "split_clients" in nginx and "90% stable;" in nginx and "* canary;" in nginx
    assert "split over 1000 requests" in proc.stdout


def test_serve_job_with_replicas_runs_nginx_in_front_until_ctrl_c(trained_digits: Path, workdir: Path):
    import signal

    import numpy as np

    from tfrun.tasks.tfserving.backends import free_port

    copy_trained(trained_digits, workdir)  # version 1 in models/
    grpc_port, rest_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            str(BIN / "tfrun"),
            "job=serve",
            "serve.replicas=2",
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
        run_log, deadline = workdir / "runs/serve/run.log", time.monotonic() + 180
        while "serving digits_mlp" not in (run_log.read_text() if run_log.exists() else ""):
            assert time.monotonic() < deadline and proc.poll() is None, "the serve step never said it was serving"
            time.sleep(0.2)
        rest = RestClient(f"http://127.0.0.1:{rest_port}", retries=0)  # nginx, on the ports asked for
        for _ in range(6):
            assert rest.predict("digits_mlp", instances=np.zeros((1, 8, 8), np.float32))["output"].shape == (1, 10)
        rest.close()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out[-3000:]
    assert "in front of 2 embedded replicas" in out and "2 embedded replicas behind nginx" in out
    (d,) = read_record(workdir / "runs/serve")["deployments"]
    assert d["status"] == "stopped" and d["balancer"]["rest_url"] == f"http://127.0.0.1:{rest_port}"
    answered = [r["answered"]["rest"] for r in d["replicas"]]
    assert sum(answered) == 6 and min(answered) >= 1, d["replicas"]  # nginx spreads them over both replicas
    assert _all_gone([d["balancer"]["server_pid"], *(r["server_pid"] for r in d["replicas"])])
