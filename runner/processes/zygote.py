"""Jobs forked from a warm TensorFlow: a "zygote" that has imported TensorFlow, tf_keras and the child's modules,
and forks one process per job.

A fresh child spends seconds importing TensorFlow; a fork of a process that already did costs milliseconds. The
zygote imports modules and nothing more — no op, no device listed, no tf.data, no Keras model — because TensorFlow's
thread pools and CUDA state do not survive a fork once they exist. Each job stays its own process (own session,
record, log, environment and exit status); nothing of one job's TensorFlow state reaches another.

- the zygote (tfrun.runner.processes.zygote_server): started by `start()` with the environment a CPU child gets;
  a single-threaded select loop that forks a worker per request, reaps it and sends its wait status back. It exits
  on SIGTERM or when the process that started it dies (once its workers ended).
- `run SOCKET_PATH EVENTS_FD` (the client): what the supervisor starts instead of `python -m tfrun.runner.child
  EVENTS_FD` (`serve SOCKET_PATH` instead of a parameter-server cluster's `python -m tfrun.tasks.cluster_server`),
  so its pid, process group, pipes and deadlines stay as they are. It imports nothing heavy, hands its
  fds 0, 1, 2 and EVENTS_FD and its environment to the zygote, forwards the signals it gets to the worker and exits
  as the worker did. When the zygote does not answer, or the job's import-time environment differs from the
  zygote's, it becomes the fresh child (`execv`), which costs nothing but the fresh start.

TFRUN_ZYGOTE=SOCKET_PATH tells the runner to use a zygote; TFRUN_NO_FORK=1 turns forking off everywhere.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Optional

from tfrun.tasks.core.processes import (
    CLEANUP_MODULE,
    CONVERTER_MODULE,
    NO_FORK_ENV,  # noqa: F401  (named here too: the runner's callers use it)
    SERVE_MODULE,
    ZYGOTE_ENV,
    forking_enabled,
    zygote_socket,
)

CHILD_MODULE = "tfrun.runner.child"
# Variables read while Python, TensorFlow, CUDA, OpenMP, Keras or the locale start: a job forks only when each of
# them is the same (or unset) in its environment and the zygote's.
IMPORT_TIME_PREFIXES = ("TF_", "CUDA_", "NVIDIA_", "XLA_", "PYTHON", "LD_", "OMP_", "KMP_", "MKL_")
IMPORT_TIME_PREFIXES += ("OPENBLAS_", "KERAS_", "LC_", "GRPC_", "ABSL_")
IMPORT_TIME_NAMES = ("LANG", "HOME", "TF_USE_LEGACY_KERAS")
# ... except these, read when the job makes them matter: TF_CONFIG by a cluster resolver (each task of a local cluster
# has its own, so its tasks fork from one zygote too).
RUN_TIME_NAMES = ("TF_CONFIG",)
SERVER_MODULE = "tfrun.tasks.cluster_server"
# what a forked process may run: a job's child, a ps/worker server, an embedded serving replica a run starts, a run's
# cloud clean-up (which imports the cloud SDK: already imported where the zygote preloads it, TFRUN_ZYGOTE_PRELOAD),
# target=web's tensorflowjs converter (TensorFlow imported already; its own folder comes first on PYTHONPATH)
MODULES = (CHILD_MODULE, SERVER_MODULE, SERVE_MODULE, CLEANUP_MODULE, CONVERTER_MODULE)
FDS = (0, 1, 2)  # then the events fd
HEADER = struct.Struct("!I")
ACCEPT_TIMEOUT_S = 5.0
READY_SUFFIX = ".ready"


enabled = forking_enabled


socket_path = zygote_socket  # the zygote this process's jobs fork from, if any (and forking is on)


def fresh_command(module: str = CHILD_MODULE) -> list[str]:
    return [sys.executable, "-m", module]


def client_command(path: str) -> list[str]:
    """The supervisor's plan-running child when a zygote is set; the events fd is appended."""
    return [sys.executable, "-m", "tfrun.runner.processes.zygote", "run", path]


def server_client_command(path: str) -> list[str]:
    """A parameter-server cluster's ps or worker server when a zygote is set (it has no events fd)."""
    return [sys.executable, "-m", "tfrun.runner.processes.zygote", "serve", path]


def import_time_env(env: dict[str, str]) -> dict[str, str]:
    return {
        k: v
        for k, v in env.items()
        if (k.startswith(IMPORT_TIME_PREFIXES) or k in IMPORT_TIME_NAMES) and k not in RUN_TIME_NAMES
    }


# ---------------------------------------------------------------------------------------------- starting one
@dataclass
class Zygote:
    proc: subprocess.Popen
    folder: str
    path: str

    def ready(self, timeout: float) -> bool:
        """Whether it has imported everything within `timeout` (jobs that come earlier wait in its backlog; a
        benchmark or a test waits here so that its first job does not measure the zygote's import)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if os.path.exists(self.path + READY_SUFFIX):
                return True
            time.sleep(0.05)
        return os.path.exists(self.path + READY_SUFFIX)

    def stop(self) -> None:
        if self.proc.poll() is None and not os.path.exists(self.path + READY_SUFFIX):
            self.proc.kill()  # still importing, so no job forked yet: nothing to wait for (a sweep refused at once)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start(base: Optional[dict[str, str]] = None, hardware: Any = None) -> Zygote:
    """A zygote with the environment a child of `base` (default: this process's) gets on `hardware` (default: the
    CPU); it lives in a private folder (mode 0700) and dies with this process."""
    from tfrun.runner.processes.child_env import child_environment
    from tfrun.tasks.core.schema import HardwareConfig

    folder = tempfile.mkdtemp(prefix="tfrun-zygote-")
    os.chmod(folder, 0o700)
    path = os.path.join(folder, "socket")
    env = child_environment(hardware or HardwareConfig(), base=base)
    env.pop(ZYGOTE_ENV, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfrun.runner.processes.zygote_server", path],
        cwd=folder,  # sys.path[0]: an empty folder, so nothing it imports comes from a project folder
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a terminal's Ctrl-C is for the jobs; the zygote ends with its parent
    )
    return Zygote(proc, folder, path)


# joblib's loky workers get these, each `cpu_count // n_jobs` unless set (joblib's LokyBackend._prepare_worker_env):
# the thread pools they size are made at import, so a joblib sweep's zygote starts with the same values.
JOBLIB_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
JOBLIB_THREAD_VARS += ("VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def joblib_worker_env(n_jobs: int) -> dict[str, str]:
    from joblib import cpu_count

    jobs = cpu_count() if n_jobs < 0 else max(n_jobs, 1)
    return {var: os.environ.get(var, str(max(cpu_count() // jobs, 1))) for var in JOBLIB_THREAD_VARS}


_sweep: Optional[Zygote] = None  # module-level: joblib pickles the sweep's callbacks, which cannot hold a process
_sweep_extra: dict[str, str] = {}  # the variables _sweep was started with beyond os.environ (joblib's)
# Overrides after which a sweep's zygote waits for the composed config (start_for_sweep): another launcher, a
# cloud, processes or devices of the job's own, a preset, a job that does not train. Keys, and sweep's values.
NOT_EARLY_KEYS = ("cloud", "cluster", "hardware", "experiment", "job", "hydra/launcher", "hydra.launcher")
EARLY_SWEEPS = ("none", "optuna")


def start_early(argv: list[str]) -> None:
    """A plain local sweep's zygote, started as the command starts: its TensorFlow import then overlaps Hydra's
    start-up and the first job's composition and checks instead of following them (it was most of a short sweep's
    first job). start_for_sweep, once the sweep's config is composed, keeps it, replaces it (joblib's workers) or
    stops it (a dry run, Vertex). Not with TFRUN_NO_PRESTART=1 (as the warm child: the unit tests run no
    TensorFlow), nor for a command line naming another config folder or a key of NOT_EARLY_KEYS."""
    if _sweep is None and enabled() and not os.environ.get(ZYGOTE_ENV) and not os.environ.get("TFRUN_NO_PRESTART"):
        if plain_local_sweep(argv):
            _start_sweep_zygote({})


def plain_local_sweep(argv: list[str]) -> bool:
    """The command line is a multirun over tfrun's configs whose overrides name no key of NOT_EARLY_KEYS."""
    from tfrun.tasks.core.hydra_adapter import plain_multirun_overrides

    overrides = plain_multirun_overrides(argv)
    if overrides is None:
        return False
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key.startswith(NOT_EARLY_KEYS) or (key == "sweep" and value not in EARLY_SWEEPS):
            return False
    return True


def start_for_sweep(joblib_jobs: Optional[int] = None) -> None:
    """A zygote for a multirun's jobs, named in os.environ so the basic launcher's in-process jobs and joblib's
    workers (started after this; `joblib_jobs` their n_jobs) use it; none when forking is off. A zygote already
    set (tfrun.sweep's, a Python session's) is used as it is, except by joblib's workers when it was not started
    with their thread variables: their jobs could not fork from it, so the sweep starts its own and gives the
    other back when it ends. One started early (start_early) is kept when it fits."""
    if not enabled():
        return
    extra = {} if joblib_jobs is None else joblib_worker_env(joblib_jobs)  # imports joblib, which sets a variable
    if _sweep is None and os.environ.get(ZYGOTE_ENV) and not _joblib_env_differs(extra):
        return
    if _sweep is not None:
        if _sweep_extra == extra and _sweep.proc.poll() is None:
            return
        stop_for_sweep()
    _start_sweep_zygote(extra)


def _joblib_env_differs(extra: dict[str, str]) -> bool:
    """Whether joblib's workers get thread variables this process (and so the zygote it names) does not have."""
    return any(os.environ.get(name) != value for name, value in extra.items())


_outer_zygote: Optional[str] = None  # the zygote set before the sweep started its own, named again after it


def _start_sweep_zygote(extra: dict[str, str]) -> None:
    global _sweep, _sweep_extra, _outer_zygote
    _outer_zygote = os.environ.get(ZYGOTE_ENV)
    _sweep, _sweep_extra = start({**os.environ, **extra}), extra
    os.environ[ZYGOTE_ENV] = _sweep.path
    atexit.register(_sweep.stop)  # a sweep that ends by an exception; a killed one: the zygote sees its parent go


def stop_for_sweep() -> None:
    global _sweep, _outer_zygote
    zygote, _sweep = _sweep, None
    if zygote is None:
        return
    if os.environ.get(ZYGOTE_ENV) == zygote.path:
        del os.environ[ZYGOTE_ENV]
        if _outer_zygote:
            os.environ[ZYGOTE_ENV] = _outer_zygote
    _outer_zygote = None
    zygote.stop()
    atexit.unregister(zygote.stop)


@contextmanager
def for_local_cluster(hardware: Any) -> Iterator[None]:
    """Within: a local cluster's tasks fork from one warm TensorFlow, one import for all of them instead of one
    each (on 2 cores a 3-task cluster's imports took ~1.5x one import's wall time and 3x its CPU). Started here
    when no zygote is set (a single run; a sweep or a Python session has its own), stopped when the run ends."""
    if not enabled() or os.environ.get(ZYGOTE_ENV):
        yield
        return
    own = start(hardware=hardware)
    os.environ[ZYGOTE_ENV] = own.path
    try:
        yield
    finally:
        if os.environ.get(ZYGOTE_ENV) == own.path:
            del os.environ[ZYGOTE_ENV]
        own.stop()


_session: Optional[Zygote] = None


def for_session() -> Optional[str]:
    """The Python session's zygote (tfrun.run / tfrun.sweep): started on first use, stopped at exit; its socket
    path, or None when forking is off. A zygote already named in the environment is used as it is."""
    global _session
    if not enabled():
        return None
    if os.environ.get(ZYGOTE_ENV):
        return os.environ[ZYGOTE_ENV]
    if _session is None or _session.proc.poll() is not None:
        _session = start()
        atexit.register(_session.stop)
    return _session.path


# ------------------------------------------------------------------------------------------------ the client
def run(path: str, events_fd: Optional[int], module: str = CHILD_MODULE, args: Optional[list[str]] = None) -> int:
    """Ask the zygote for a worker running `module` with `args` (a job's child, which reports on `events_fd`, or a
    server); become the fresh process if it cannot give one."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    fds = [*FDS] if events_fd is None else [*FDS, events_fd]
    try:
        _connect(sock, path)
        request = {"env": dict(os.environ), "cwd": os.getcwd(), "executable": sys.executable}
        body = json.dumps({**request, "module": module, "events_fd": events_fd, "args": args or []}).encode()
        socket.send_fds(sock, [HEADER.pack(len(body))], fds)
        sock.sendall(body)
        reader = sock.makefile("rb")
        answer = json.loads(reader.readline() or b"{}")
    except (OSError, ValueError):
        answer = {"fork": False, "reason": "the zygote did not answer"}
    if "pid" not in answer:
        sock.close()
        _child_event(events_fd, {"start": "fresh", "zygote": answer.get("reason", "no answer")})
        fresh_args = [str(events_fd)] if events_fd is not None else list(args or [])
        os.execv(sys.executable, [*fresh_command(module), *fresh_args])
    pid = int(answer["pid"])
    _child_event(events_fd, {"start": "forked", "pid": pid})  # the job's process, in a session of its own

    def forward(signum: int, _frame: Any) -> None:
        try:
            os.killpg(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            line = reader.readline()
            break
        except InterruptedError:
            continue
    if not line:  # the zygote went away before the worker's end: nothing may run on unsupervised
        forward(signal.SIGKILL, None)
        sys.stderr.write("[tfrun] the zygote stopped before the job's process ended\n")
        return 1
    status = int(json.loads(line)["status"])
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    return os.waitstatus_to_exitcode(status) if not os.WIFSIGNALED(status) else 1


def _connect(sock: socket.socket, path: str) -> None:
    """Connect, waiting while a zygote just started (its folder made) has not bound its socket yet: a local
    cluster's tasks start right after their zygote."""
    deadline = time.monotonic() + ACCEPT_TIMEOUT_S
    while not os.path.exists(path) and os.path.isdir(os.path.dirname(path)) and time.monotonic() < deadline:
        time.sleep(0.02)
    sock.connect(path)


def _child_event(events_fd: Optional[int], child: dict[str, Any]) -> None:
    """How the child started, for the record (one short line: the runner reads it before the child's own)."""
    if events_fd is not None:
        os.write(events_fd, (json.dumps({"event": "child", "child": child}) + "\n").encode())


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[1] == "run":
        return run(argv[2], int(argv[3]))
    if len(argv) == 3 and argv[1] == "serve":
        return run(argv[2], None, SERVER_MODULE)
    if len(argv) >= 4 and argv[1] == "module":  # tfrun.tasks.core.processes.forked_module_command
        return run(argv[2], None, argv[3], argv[4:])
    usage = "run SOCKET EVENTS_FD | serve SOCKET | module SOCKET MODULE ARGS"
    sys.stderr.write(f"usage: python -m tfrun.runner.processes.zygote {usage}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
