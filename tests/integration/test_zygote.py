"""Jobs forked from a warm TensorFlow (tfrun.runner.processes.zygote): same results as a fresh process, a fresh
process when the import-time environment differs, and nothing left running when the runner or the zygote's parent
is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import BIN, command_env, read_record
from tfrun.runner.processes import zygote as zygote_module
from tfrun.runner.processes.child_env import child_environment
from tfrun.tasks.core.schema import HardwareConfig


@pytest.fixture
def zygote(_zygote) -> zygote_module.Zygote:
    """This test process's zygote (tests/conftest.py), once it has imported TensorFlow."""
    if _zygote is None:
        pytest.skip("forking is off (TFRUN_NO_FORK=1) or another zygote is set")
    assert _zygote.ready(180), "the zygote did not finish its imports"
    return _zygote


def _gone(pid: int) -> bool:
    """No such process, or a zombie nobody reaped yet (it runs nothing any more)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.1)
    return _gone(pid)


def _run(workdir: Path, run_dir: str, *args: str, environment: dict[str, str] | None = None, **env: str) -> dict:
    """`tfrun ARGS` (default: two epochs) into run_dir, which must succeed; its record."""
    proc = subprocess.run(
        [str(BIN / "tfrun"), *(args or ["train.epochs=2"]), "train.verbose=0", f"hydra.run.dir={run_dir}"],
        cwd=workdir,
        env=command_env(**env) if environment is None else environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return read_record(workdir / run_dir)


def test_forked_job_gives_the_fresh_jobs_metrics_and_weights(zygote, workdir: Path):
    forked = _run(workdir, "runs/forked")
    fresh = _run(workdir, "runs/fresh", TFRUN_NO_FORK="1", TFRUN_NO_PRESTART="1")
    assert forked["child"]["start"] == "forked", forked["child"]
    assert fresh["child"] == {"start": "fresh"}
    assert forked["weights_sha256"] and forked["weights_sha256"] == fresh["weights_sha256"]
    assert forked["metrics"]["final"] == fresh["metrics"]["final"]
    timing = {"epoch_seconds"}
    history = {k: v for k, v in forked["metrics"]["history"].items() if k not in timing}
    assert history == {k: v for k, v in fresh["metrics"]["history"].items() if k not in timing}
    assert forked["status"] == fresh["status"] == "succeeded"


def test_the_zygotes_imports_start_no_tensorflow_runtime_and_are_frozen(tmp_path: Path):
    """What the zygote imports for its jobs (the train plan's steps and what they import first) must not create
    TensorFlow's context or list a device (neither survives a fork), and the collector's permanent generation
    holds it all; modules named in TFRUN_ZYGOTE_PRELOAD (the suite's: the cloud SDK) are imported too, start no
    thread, and one that cannot be imported is left to the jobs."""
    script = (
        "import gc, json, sys, threading\n"
        "from tfrun.runner.processes.zygote_server import _warm_up\n"
        "_warm_up()\n"
        "from tensorflow.python.eager import context\n"
        "c = context.context_safe()\n"
        "print(json.dumps({'context': c is not None, 'frozen': gc.get_freeze_count(), 'gc': gc.isenabled(),\n"
        "  'threads': threading.active_count(),\n"
        "  'modules': [m for m in ('hydra.utils', 'tfrun.tasks.export', 'tfrun.tasks.data', 'google.cloud.aiplatform')\n"
        "              if m in sys.modules]}))\n"
    )
    preload = "google.cloud.aiplatform, no_such_module_here"
    env = child_environment(HardwareConfig(), base=command_env(TFRUN_ZYGOTE_PRELOAD=preload))
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["context"] is False, "an import in the zygote created TensorFlow's context"
    assert found["modules"] == ["hydra.utils", "tfrun.tasks.export", "tfrun.tasks.data", "google.cloud.aiplatform"]
    assert found["frozen"] > 100_000 and found["gc"] is True and found["threads"] == 1


def test_another_import_time_environment_runs_fresh(zygote, workdir: Path):
    record = _run(workdir, "runs/onednn", TF_ENABLE_ONEDNN_OPTS="0")
    assert record["child"]["start"] == "fresh"
    assert "TF_ENABLE_ONEDNN_OPTS" in record["child"]["zygote"]


def _start_long_run(workdir: Path, run_dir: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "tfrun"), "train.epochs=1000", f"hydra.run.dir={run_dir}"],
        cwd=workdir,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _training(record_path: Path, proc: subprocess.Popen, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        if record_path.exists():
            record = json.loads(record_path.read_text())
            if record["metrics"]["history"].get("loss"):
                return record
        time.sleep(0.2)
    raise AssertionError("training did not start in time")


def test_sigint_to_the_runner_leaves_an_interrupted_record(zygote, workdir: Path):
    proc = _start_long_run(workdir, "runs/interrupted")
    record = _training(workdir / "runs/interrupted/record.json", proc)
    assert record["child"]["start"] == "forked"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    record = read_record(workdir / "runs/interrupted")
    assert record["status"] == "interrupted" and record["error"]["signal"] == "SIGINT"
    assert record["error"]["step"] == "train"
    assert _wait_gone(record["child"]["pid"], 5)


def test_a_killed_runner_leaves_no_worker(zygote, workdir: Path):
    proc = _start_long_run(workdir, "runs/killed")
    record = _training(workdir / "runs/killed/record.json", proc)
    worker = record["child"]["pid"]
    assert record["child"]["start"] == "forked" and not _gone(worker)
    os.killpg(proc.pid, signal.SIGKILL)
    assert _wait_gone(worker, 5), f"worker {worker} still runs after the runner was killed"
    proc.communicate(timeout=60)


def test_a_sigkilled_client_leaves_no_silent_worker(zygote, workdir: Path):
    """The client killed by SIGKILL forwards nothing; its worker, waiting silently for its job on stdin (so no
    broken pipe stops it), must see the connection close and stop."""
    events_read, events_write = os.pipe()
    client = subprocess.Popen(
        [*zygote_module.client_command(zygote.path), str(events_write)],
        env=child_environment(HardwareConfig(), base=command_env()),
        stdin=subprocess.PIPE,  # kept open, never written: the child waits for its job
        stdout=subprocess.DEVNULL,
        pass_fds=(events_write,),
        cwd=workdir,
    )
    os.close(events_write)
    try:
        with os.fdopen(events_read) as events:
            started = json.loads(events.readline())["child"]
        assert started["start"] == "forked", started
        time.sleep(1)
        assert not _gone(started["pid"])
        client.kill()
        client.wait()
        assert _wait_gone(started["pid"], 5), f"worker {started['pid']} still runs after its client was killed"
    finally:
        client.kill()
        client.stdin.close()
        client.wait()


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            pass
    return found


def test_a_cluster_server_forks_and_goes_when_its_client_is_killed(zygote, workdir: Path):
    """A parameter-server cluster's server forks from the zygote with its own TF_CONFIG, serves, and goes when its
    client is SIGKILLed (the GIL-holding case, a task stuck creating its strategy, is test_strategies'
    cluster-that-never-forms test)."""
    from tfrun.runner.processes.cluster_layout import free_ports

    before = _children(zygote.proc.pid)
    tf_config = {"cluster": {"ps": [f"127.0.0.1:{free_ports(1)[0]}"]}, "task": {"type": "ps", "index": 0}}
    client = subprocess.Popen(
        zygote_module.server_client_command(zygote.path),
        env={**child_environment(HardwareConfig(), base=command_env()), "TF_CONFIG": json.dumps(tf_config)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=workdir,
    )
    try:
        lines = iter(client.stdout.readline, "")  # the forked process writes to the client's fds 1 and 2
        assert any("ps:0 serving at" in line for line in lines), "the server did not start"
        (worker,) = _children(zygote.proc.pid) - before
        client.kill()
        client.wait()
        assert _wait_gone(worker, 5), f"server {worker} still runs after its client was killed"
    finally:
        client.kill()
        client.wait()


def test_the_zygote_exits_when_its_parent_dies(tmp_path: Path):
    script = (
        "import sys, time\n"
        "from tfrun.runner.processes import zygote\n"
        "z = zygote.start()\n"
        "print(z.proc.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], env=command_env(), stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        pid = int(parent.stdout.readline())
        time.sleep(1)
        assert not _gone(pid)
    finally:
        parent.kill()
        parent.wait()
    assert _wait_gone(pid, 15), f"zygote {pid} outlived its parent"


def _zygote_processes(folder: Path) -> list[int]:
    """Processes whose command line names a zygote socket under `folder`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(folder) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(proc.name))
        except OSError:
            continue
    return [pid for pid in found if not _gone(pid)]


def _own_zygote_env(tmp: Path) -> dict[str, str]:
    """The command's environment without the test session's zygote, its temporary files under `tmp`."""
    tmp.mkdir(exist_ok=True)
    env = command_env(TMPDIR=str(tmp))
    env.pop(zygote_module.ZYGOTE_ENV, None)
    env.pop("TFRUN_NO_PRESTART", None)
    return env


def test_a_plain_sweep_forks_from_the_zygote_it_starts_with_the_command(workdir: Path):
    tmp = workdir / "tmp"
    proc = subprocess.run(
        [str(BIN / "tfrun"), "-m", "train.learning_rate=0.001,0.01", "train.epochs=1", "data.limit=300"]
        + ["train.verbose=0", "hydra.sweep.dir=multiruns/early"],
        cwd=workdir,
        env=_own_zygote_env(tmp),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    starts = [read_record(workdir / "multiruns/early" / job)["child"]["start"] for job in ("0", "1")]
    assert starts == ["forked", "forked"]
    assert not _zygote_processes(tmp) and not list(tmp.glob("tfrun-zygote-*"))


def test_a_sweep_refused_before_launch_stops_its_early_zygote_at_once(workdir: Path):
    tmp = workdir / "tmp"
    started = time.monotonic()
    proc = subprocess.run(
        [str(BIN / "tfrun"), "-m", "train.learning_rate=0.001,0.01", "train.epochs=-1"],
        cwd=workdir,
        env=_own_zygote_env(tmp),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "train.epochs" in proc.stderr and "Traceback" not in proc.stderr
    assert not _zygote_processes(tmp) and not list(tmp.glob("tfrun-zygote-*"))
    assert time.monotonic() - started < 60  # not held until the zygote's TensorFlow import ends


def test_a_single_runs_local_cluster_forks_its_tasks_from_its_own_zygote(workdir: Path):
    """No zygote set (a plain `tfrun` command): a parameter-server cluster's chief and servers fork from one the run
    starts, so TensorFlow is imported once, not once per task; it ends with the run."""
    env = command_env()
    env.pop(zygote_module.ZYGOTE_ENV, None)
    record = _run(workdir, "runs/ps", "strategy=parameter_server", "cluster=local", "train.epochs=1", environment=env)
    assert record["child"]["start"] == "forked", record["child"]
    hardware = next(s for s in record["steps"] if s["name"] == "hardware")
    assert hardware["seconds"] < 1.0, hardware  # no TensorFlow import in the task
    assert _wait_gone(record["child"]["pid"], 5)


def test_a_joblib_sweep_under_another_zygote_starts_its_own_then_gives_the_other_back(monkeypatch):
    """joblib's workers get thread variables (OMP_NUM_THREADS ...) a zygote started without them was not: their
    jobs could not fork from it (each would import TensorFlow afresh), so the sweep starts its own zygote with
    them; when the sweep ends, the zygote set before (a Python session's, the test suite's) is named again."""
    for name in zygote_module.JOBLIB_THREAD_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(zygote_module.NO_FORK_ENV, raising=False)
    monkeypatch.setenv(zygote_module.ZYGOTE_ENV, "/tmp/the-outer-zygote/socket")
    zygote_module.start_for_sweep(None)  # the basic launcher's jobs run in this process's environment: kept
    assert os.environ[zygote_module.ZYGOTE_ENV] == "/tmp/the-outer-zygote/socket" and zygote_module._sweep is None
    zygote_module.start_for_sweep(2)
    try:
        own = zygote_module._sweep
        assert own is not None and os.environ[zygote_module.ZYGOTE_ENV] == own.path
        assert own.ready(180), "the sweep's zygote did not finish its imports"
    finally:
        zygote_module.stop_for_sweep()
    assert os.environ[zygote_module.ZYGOTE_ENV] == "/tmp/the-outer-zygote/socket"
    assert own.proc.poll() is not None


def test_a_job_with_a_project_folder_on_pythonpath_forks_and_imports_from_it(zygote, workdir: Path):
    """PYTHONPATH=src (absolute) in front of the zygote's own entries, as a project with a src/ layout sets it: the
    job still forks, and its model comes from src/ (the worker put it on sys.path where a fresh Python does)."""
    src = workdir / "src"
    src.mkdir()
    (src / "pp_models.py").write_text(
        "import tf_keras as keras\n\n\n"
        "def small(*, input_shape, n_classes):\n"
        "    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),\n"
        "                             keras.layers.Dense(n_classes, activation='softmax')])\n"
    )
    (workdir / "my_conf/model").mkdir(parents=True)
    (workdir / "my_conf/model/pp.yaml").write_text("_target_: pp_models.small\n")
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    pythonpath = os.pathsep.join([str(src), *inherited])
    record = _run(workdir, "runs/pp", "--config-dir", "my_conf", "model=pp", "train.epochs=1", PYTHONPATH=pythonpath)
    assert record["child"]["start"] == "forked", record["child"]
    assert record["status"] == "succeeded" and record["metrics"]["final"]["accuracy"] > 0


def test_an_embedded_serving_replica_forks_serves_and_goes_with_its_client(
    zygote, trained_digits: Path, tmp_path: Path
):
    """A run's embedded TF Serving server forks from the zygote named (tfrun.tasks.tfserving.backends.start): it
    answers a REST predict, the run keeps the logical command (no socket path), and stopping it stops the fork. A
    detached one, which outlives the run and so the zygote, starts afresh."""
    import urllib.request

    from tfrun.tasks.tfserving import backends

    env = child_environment(HardwareConfig(), base=command_env(**{zygote_module.ZYGOTE_ENV: zygote.path}))
    before = _children(zygote.proc.pid)
    spec = backends.ServerSpec("digits_mlp", trained_digits / "models" / "digits_mlp").with_free_ports()
    server = backends.start("embedded", spec, log_path=tmp_path / "serve.log", detached=False, env=env)
    try:
        backends.wait_serving(server, 120)
        (worker,) = _children(zygote.proc.pid) - before
        assert server.argv[:3] == [sys.executable, "-m", "tfrun.runner.serve_cli"]
        body = json.dumps({"instances": [[[0.0] * 8] * 8]}).encode()
        url = f"{spec.rest_url}/v1/models/digits_mlp:predict"
        for _ in range(100):  # the port opens before the model is loaded
            try:
                with urllib.request.urlopen(urllib.request.Request(url, body), timeout=5) as answer:
                    predictions = json.loads(answer.read())["predictions"]
                break
            except OSError:
                time.sleep(0.2)
        assert len(predictions) == 1 and len(predictions[0]) == 10
        assert server.stop() == 0
        assert _wait_gone(worker, 5), f"replica {worker} still runs after it was stopped"
    finally:
        server.stop()
    detached = backends.start(
        "embedded", spec.with_free_ports(), log_path=tmp_path / "detached.log", detached=True, env=env
    )
    try:
        assert detached.proc.args[:3] == [sys.executable, "-m", "tfrun.runner.serve_cli"]
    finally:
        detached.stop()


def test_a_runs_cloud_clean_up_forks_from_the_zygote_from_the_runners_environment(zygote, monkeypatch):
    """The clean-up child (tfrun.runner.records.cloud_cleanup) starts from the runner or `tfrun-records`, whose
    environment has none of a CPU job's settings (CUDA_VISIBLE_DEVICES=-1, ...): it still forks from the zygote named
    instead of importing the cloud SDK afresh (~3 s of a core)."""
    from tfrun.runner.records import cloud_cleanup

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv(zygote_module.ZYGOTE_ENV, zygote.path)
    before, forked = _children(zygote.proc.pid), set()
    popen = subprocess.Popen

    def run(command: list[str], *, input: str, env: dict[str, str], **_kwargs) -> subprocess.CompletedProcess:
        """subprocess.run, looking for the zygote's new child while the clean-up waits for its job on stdin."""
        proc = popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not forked and proc.poll() is None and time.monotonic() < deadline:
            forked.update(_children(zygote.proc.pid) - before)
            time.sleep(0.02)
        out, err = proc.communicate(input, timeout=120)
        return subprocess.CompletedProcess(command, proc.returncode, out, err)

    monkeypatch.setattr(cloud_cleanup.subprocess, "run", run)
    assert cloud_cleanup.remove({}, "run-1", "runs/r", [], "the run failed") == []
    assert forked, "the clean-up child started afresh instead of forking from the zygote"
