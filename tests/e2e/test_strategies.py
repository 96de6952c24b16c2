"""Every strategy through the real command on 2 logical CPUs or a local cluster of processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import BIN, command_env, read_record, tfrun
from tfrun.runner.processes.cluster_layout import free_ports

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

QUICK = ["train.epochs=3", "train.learning_rate=0.005", "train.verbose=0", "train.callbacks.tensorboard=false"]
STRATEGIES = {
    "default": [],
    "mirrored": ["strategy=mirrored", "hardware.logical_devices=2"],
    "central_storage": ["strategy=central_storage", "hardware.logical_devices=2"],
    "multi_worker": ["strategy=multi_worker", "cluster=local", "cluster.workers=2"],
    "parameter_server": ["strategy=parameter_server", "cluster=local", "cluster.workers=2", "cluster.ps=1"],
}
REPLICAS = {"default": 1, "mirrored": 2, "central_storage": 2, "multi_worker": 2, "parameter_server": 1}
# Holdout accuracy below one device's that still counts as training as well. Parameter-server training is
# asynchronous (each worker applies its gradients to the variables as they are then), so it varies run to run:
# 0.886 against 0.939 was seen once in ~25 runs; a broken run is near chance (0.1).
TOLERANCE = {"parameter_server": 0.1}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    workdir = tmp_path_factory.mktemp("strategies")
    records = {}
    for name, overrides in STRATEGIES.items():
        tfrun(*overrides, *QUICK, f"hydra.run.dir=runs/{name}", cwd=workdir, check=True)
        records[name] = read_record(workdir / "runs" / name)
    return workdir, records


@pytest.mark.parametrize("name", [n for n in STRATEGIES if n != "default"])
def test_strategy_trains_as_well_as_one_device(runs, name: str):
    _, records = runs
    record = records[name]
    assert record["status"] == "succeeded"
    baseline = records["default"]["metrics"]["final"]["holdout_accuracy"]
    accuracy = record["metrics"]["final"]["holdout_accuracy"]
    assert accuracy >= baseline - TOLERANCE.get(name, 0.03), (name, accuracy, baseline)
    strategy = next(s["result"] for s in record["steps"] if s["name"] == "strategy")
    assert strategy["strategy"] == name and strategy["replicas"] == REPLICAS[name]
    assert strategy["per_replica_batch_size"] * strategy["replicas"] == strategy["global_batch_size"]


@pytest.mark.parametrize(
    "name, tasks",
    [
        ("multi_worker", {"worker:0", "worker:1"}),
        ("parameter_server", {"chief:0", "worker:0", "worker:1", "ps:0"}),
    ],
)
def test_cluster_records_name_tasks_and_logs(runs, name: str, tasks: set[str]):
    workdir, records = runs
    cluster = records[name]["cluster"]
    assert {t["task"] for t in cluster["tasks"]} == tasks
    for task in cluster["tasks"]:
        assert (workdir / task["log"]).is_file(), task
        with pytest.raises(ProcessLookupError):
            os.kill(task["pid"], 0)
    assert all(a.startswith("127.0.0.1:") for addresses in cluster["spec"].values() for a in addresses)
    assert "[worker:1]" in (workdir / "runs" / name / "run.log").read_text()
    # only the chief exported: one version per run, none from other workers
    version = records[name]["artifacts"][0]["version"]
    assert (workdir / "models/digits_mlp" / f"{version:04d}").is_dir()


def test_only_the_chief_exports(runs):
    workdir, records = runs
    versions = sorted(p.name for p in (workdir / "models/digits_mlp").iterdir())
    assert len(versions) == len(STRATEGIES), versions
    assert not list(workdir.glob("runs/*/.tensorboard-*")), "non-chief workers remove their dirs"


def test_mirrored_is_bit_reproducible(runs):
    workdir, records = runs
    tfrun(*STRATEGIES["mirrored"], *QUICK, "hydra.run.dir=runs/mirrored-again", cwd=workdir, check=True)
    again = read_record(workdir / "runs/mirrored-again")
    assert again["weights_sha256"] == records["mirrored"]["weights_sha256"]
    assert again["metrics"]["final"] == records["mirrored"]["metrics"]["final"]


def test_two_shells_with_tf_config_train_together(workdir: Path):
    """The same command on two 'machines' (processes), TF_CONFIG from the environment; the chief exports."""
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = command_env(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        procs.append(
            subprocess.Popen(
                [
                    str(BIN / "tfrun"),
                    "strategy=multi_worker",
                    "cluster=tf_config",
                    "train.epochs=1",
                    "train.verbose=0",
                    f"hydra.run.dir=runs/task{index}",
                ],
                cwd=workdir,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    chief, worker = read_record(workdir / "runs/task0"), read_record(workdir / "runs/task1")
    assert chief["artifacts"] and not worker["artifacts"]
    assert sorted(p.name for p in (workdir / "models/digits_mlp").iterdir()) == ["0001"]
    strategy = next(s["result"] for s in worker["steps"] if s["name"] == "strategy")
    assert strategy["replicas"] == 2 and strategy["task"] == "worker:1" and not strategy["chief"]
    assert chief["weights_sha256"] == worker["weights_sha256"], "synchronous training: same weights on both"


def test_worker_that_cannot_start_fails_the_job_fast_and_stops_all(workdir: Path):
    started = time.monotonic()
    proc = tfrun(
        "strategy=multi_worker",
        "cluster=local",
        "cluster.form_timeout_s=60",
        "train.epochs=50",
        "+cluster.task_env={worker_1:{PYTHONHOME:/nonexistent}}",
        "hydra.run.dir=runs/broken",
        cwd=workdir,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert time.monotonic() - started < 60
    record = read_record(workdir / "runs/broken")
    assert record["status"] == "failed" and record["error"]["task"] == "worker:1"
    assert "worker:1" in proc.stdout and "first task to fail" in record["error"]["message"]
    for task in record["cluster"]["tasks"]:
        with pytest.raises(ProcessLookupError):
            os.kill(task["pid"], 0)


def _wait_gone(pid: int, timeout: float) -> bool:
    """The process ended (or is a zombie nobody reaped yet) within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X") or time.monotonic() > deadline:
            return state in ("Z", "X")
        time.sleep(0.1)


def test_cluster_that_never_forms_ends_at_the_deadline(workdir: Path):
    """Worker 1 hangs before TensorFlow starts: worker 0 would wait forever; the deadline stops both."""
    hang = workdir / "hang"
    hang.mkdir()
    (hang / "sitecustomize.py").write_text("import time\ntime.sleep(3600)\n")  # imported at interpreter start
    started = time.monotonic()
    proc = tfrun(
        "strategy=multi_worker",
        "cluster=local",
        "cluster.form_timeout_s=5",
        "train.epochs=50",
        f"+cluster.task_env={{worker_1:{{PYTHONPATH:'{hang}'}}}}",
        "hydra.run.dir=runs/never",
        cwd=workdir,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    record = read_record(workdir / "runs/never")
    assert proc.returncode == 1 and record["error"]["type"] == "ClusterFormationTimeout", record["error"]
    assert 5 <= elapsed < 60
    for task in record["cluster"]["tasks"]:
        with pytest.raises(ProcessLookupError):
            os.kill(task["pid"], 0)
    if record["child"]["start"] == "forked":  # worker 0 forked from the suite's zygote, stuck in TensorFlow
        assert _wait_gone(record["child"]["pid"], 5), "the forked worker 0 outlived its task"


def test_tpu_without_a_tpu_says_what_it_tried(workdir: Path):
    # ends by itself (no connect to wait out): a hang is the command's timeout, how long it takes is not asserted
    proc = tfrun(
        "strategy=tpu", "hardware=tpu", "strategy.tpu=local", "hydra.run.dir=runs/tpu", cwd=workdir, timeout=120
    )
    assert proc.returncode == 1
    error = read_record(workdir / "runs/tpu")["error"]
    assert error["type"] == "TpuUnavailable" and "strategy.tpu='local'" in error["message"]
    assert "grpc://HOST:8470" in error["message"]


def test_unreachable_tpu_address_ends_at_the_deadline(workdir: Path):
    (port,) = free_ports(1)
    proc = tfrun(
        "strategy=tpu",
        "hardware=tpu",
        f"strategy.tpu=grpc://127.0.0.1:{port}",
        "strategy.connect_timeout_s=3",
        "hydra.run.dir=runs/tpu-unreachable",
        cwd=workdir,
        timeout=120,
    )
    error = read_record(workdir / "runs/tpu-unreachable")["error"]
    assert proc.returncode == 1 and f"grpc://127.0.0.1:{port}" in error["message"], error
    assert "within strategy.connect_timeout_s=3" in error["message"] or "could not use the TPU" in error["message"]


def test_killed_worker_ends_job_and_rerun_resumes(workdir: Path):
    args = [
        str(BIN / "tfrun"),
        "strategy=multi_worker",
        "cluster=local",
        "train.epochs=4",
        "train.batch_size=64",
        "train.verbose=0",
        "hydra.run.dir=runs/resume",
    ]
    proc = subprocess.Popen(
        args, cwd=workdir, env=command_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    record_path = workdir / "runs/resume/record.json"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        record = json.loads(record_path.read_text()) if record_path.exists() else {}
        if len(record.get("metrics", {}).get("history", {}).get("loss", [])) >= 2:
            break
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    worker = next(t for t in record["cluster"]["tasks"] if t["task"] == "worker:1")
    os.kill(worker["pid"], signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    failed = read_record(workdir / "runs/resume")
    assert failed["status"] == "failed" and failed["error"]["task"] == "worker:1"
    done_epochs = len(failed["metrics"]["history"]["loss"])

    rerun = subprocess.run(args, cwd=workdir, env=command_env(), capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    resumed = read_record(workdir / "runs/resume")
    assert resumed["status"] == "succeeded"
    assert 1 <= resumed["resumed_from_epoch"] <= done_epochs
    assert len(resumed["metrics"]["history"]["loss"]) == 4 - resumed["resumed_from_epoch"]
    assert resumed["previous_attempts"] == [failed["run_id"]]
    assert (workdir / "runs/resume/attempts" / f"{failed['run_id']}.json").is_file()
