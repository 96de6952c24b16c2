"""Jobs forked from a warm TensorFlow: a "zygote" that has imported TensorFlow, tf_keras and the child's modules,
and forks one process per job.

A fresh child spends seconds importing TensorFlow; a fork of a process that already did costs milliseconds. The
zygote imports modules and nothing more — no op, no device listed, no tf.data, no Keras model — because TensorFlow's
thread pools and CUDA state do not survive a fork once they exist. Each job stays its own process (own session,
record, log, environment and exit status); nothing of one job's TensorFlow state reaches another.

- `serve SOCKET_PATH` (the zygote): started by `start()` with the environment a CPU child gets; a single-threaded
  select loop (fork from a multi-threaded process is unsafe) that forks a worker per request, reaps it on SIGCHLD and
  sends its wait status back. It exits on SIGTERM or when the process that started it dies (once its workers ended).
- `run SOCKET_PATH EVENTS_FD` (the client): what the supervisor starts instead of `python -m tfrun.runner.child
  EVENTS_FD`, so its pid, process group, pipes and deadlines stay as they are. It imports nothing heavy, hands its
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

ZYGOTE_ENV = "TFRUN_ZYGOTE"
NO_FORK_ENV = "TFRUN_NO_FORK"
CHILD_MODULE = "tfrun.runner.child"
# Variables read while Python, TensorFlow, CUDA, OpenMP, Keras or the locale start: a job forks only when each of
# them is the same (or unset) in its environment and the zygote's.
IMPORT_TIME_PREFIXES = ("TF_", "CUDA_", "NVIDIA_", "XLA_", "PYTHON", "LD_", "OMP_", "KMP_", "MKL_")
IMPORT_TIME_PREFIXES += ("OPENBLAS_", "KERAS_", "LC_", "GRPC_", "ABSL_")
IMPORT_TIME_NAMES = ("LANG", "HOME", "TF_USE_LEGACY_KERAS")
FDS = (0, 1, 2)  # then the events fd
HEADER = struct.Struct("!I")
ACCEPT_TIMEOUT_S = 5.0
READY_SUFFIX = ".ready"


def enabled() -> bool:
    return os.environ.get(NO_FORK_ENV, "") in ("", "0")


def socket_path() -> Optional[str]:
    """The zygote this process's jobs fork from, if any (and forking is on)."""
    path = os.environ.get(ZYGOTE_ENV)
    return path if path and enabled() else None


def fresh_command() -> list[str]:
    return [sys.executable, "-m", CHILD_MODULE]


def client_command(path: str) -> list[str]:
    """The supervisor's plan-running child when a zygote is set; the events fd is appended."""
    return [sys.executable, "-m", "tfrun.runner.processes.zygote", "run", path]


def import_time_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_PREFIXES) or k in IMPORT_TIME_NAMES}


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
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start(base: Optional[dict[str, str]] = None) -> Zygote:
    """A zygote with the environment a CPU child of `base` (default: this process's) gets; it lives in a private
    folder (mode 0700) and dies with this process."""
    from tfrun.runner.processes.child_env import child_environment
    from tfrun.tasks.core.schema import HardwareConfig

    folder = tempfile.mkdtemp(prefix="tfrun-zygote-")
    os.chmod(folder, 0o700)
    path = os.path.join(folder, "socket")
    env = child_environment(HardwareConfig(), base=base)
    env.pop(ZYGOTE_ENV, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfrun.runner.processes.zygote", "serve", path],
        cwd=folder,  # sys.path[0]: an empty folder, so nothing it imports comes from a project folder
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a terminal's Ctrl-C is for the jobs; the zygote ends with its parent
    )
    return Zygote(proc, folder, path)


def start_for_sweep() -> Optional[Zygote]:
    """A zygote for a multirun's jobs, named in os.environ so the basic launcher's in-process jobs and joblib's
    workers (started after this) use it; None when forking is off or a zygote is already set (tfrun.sweep's)."""
    if not enabled() or os.environ.get(ZYGOTE_ENV):
        return None
    zygote = start()
    os.environ[ZYGOTE_ENV] = zygote.path
    atexit.register(zygote.stop)  # a sweep that ends by an exception; a killed one: the zygote sees its parent go
    return zygote


def stop_for_sweep(zygote: Zygote) -> None:
    if os.environ.get(ZYGOTE_ENV) == zygote.path:
        del os.environ[ZYGOTE_ENV]
    zygote.stop()
    atexit.unregister(zygote.stop)


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


# ------------------------------------------------------------------------------------------------ the server
def _preload() -> None:
    """What every job imports before its first step (tfrun.runner.child's own imports and its --warm preload), and
    nothing that starts TensorFlow's runtime. The child module itself is left to runpy, which runs it as __main__."""
    import tensorflow  # noqa: F401
    import tf_keras  # noqa: F401
    from omegaconf import OmegaConf  # noqa: F401

    from tfrun.runner import steps  # noqa: F401
    from tfrun.tasks.context import Context  # noqa: F401


def _mismatch(request: dict[str, Any]) -> Optional[str]:
    """Why this job cannot fork from here (None: it can): its import-time environment or folder differ."""
    mine, theirs = import_time_env(dict(os.environ)), import_time_env(request["env"])
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) != theirs.get(key):
            return f"{key} differs from the zygote's"
    if request.get("executable") != sys.executable:
        return "another Python"
    cwd = request["cwd"]
    if any(p and not os.path.isabs(p) for p in request["env"].get("PYTHONPATH", "").split(os.pathsep)):
        return "PYTHONPATH has a relative entry"
    loaded = {name.partition(".")[0] for name in sys.modules}
    try:
        entries = os.listdir(cwd)
    except OSError:
        return "its folder cannot be listed"
    for entry in entries:
        name = entry.partition(".")[0]
        module = entry.endswith((".py", ".pyc", ".so")) or os.path.isfile(os.path.join(cwd, entry, "__init__.py"))
        if module and name in loaded:
            return f"its folder has {entry}, which would replace the module {name} the zygote imported"
    return None


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    conn.settimeout(ACCEPT_TIMEOUT_S)
    data, fds, _flags, _addr = socket.recv_fds(conn, HEADER.size, len(FDS) + 1)
    while len(data) < HEADER.size:
        data += _exactly(conn, HEADER.size - len(data))
    (size,) = HEADER.unpack(data)
    return json.loads(_exactly(conn, size)), fds


def _exactly(conn: socket.socket, size: int) -> bytes:
    chunks = b""
    while len(chunks) < size:
        chunk = conn.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("the client went away")
        chunks += chunk
    return chunks


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def serve(path: str) -> int:
    import select

    parent = os.getppid()
    stopping = False

    def on_term(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # the wakeup fd makes select return
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    listener: Optional[socket.socket] = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)  # a job that comes while TensorFlow is still importing waits in the backlog
    _preload()
    Path(path + READY_SUFFIX).touch()
    workers: dict[int, socket.socket] = {}
    while True:
        if stopping or os.getppid() != parent:
            if listener is not None:
                listener.close()
                listener = None
                _remove(path)
            if not workers:
                return 0
        watched = [wake_read] + ([listener] if listener is not None else [])
        readable, _, _ = select.select(watched, [], [], 1.0)
        if wake_read in readable:
            while True:
                try:
                    if not os.read(wake_read, 512):
                        break
                except BlockingIOError:
                    break
        _reap(workers)
        if listener is not None and listener in readable:
            conn, _ = listener.accept()
            try:
                request, fds = _receive(conn)
            except (OSError, ValueError, ConnectionError):
                conn.close()
                continue
            why = _mismatch(request)
            if why is not None:
                _answer_no(conn, fds, why)
                continue
            pid = os.fork()
            if pid == 0:
                _worker(conn, fds, request, [listener, *workers.values()], (wake_read, wake_write))
            for fd in fds:
                os.close(fd)
            workers[pid] = conn
            try:
                _send(conn, {"pid": pid})
            except OSError:
                pass  # the client died: the worker sees the same and stops itself


def _remove(path: str) -> None:
    """Its socket, ready mark and private folder (when empty): a zygote whose parent was killed cleans up itself."""
    for name in (path, path + READY_SUFFIX):
        if os.path.exists(name):
            os.unlink(name)
    try:
        os.rmdir(os.path.dirname(path))
    except OSError:
        pass


def _answer_no(conn: socket.socket, fds: list[int], why: str) -> None:
    for fd in fds:
        os.close(fd)
    try:
        _send(conn, {"fork": False, "reason": why})
    except OSError:
        pass
    conn.close()


def _reap(workers: dict[int, socket.socket]) -> None:
    while workers:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = workers.pop(pid, None)
        if conn is not None:
            try:
                _send(conn, {"status": status})
            except OSError:
                pass
            conn.close()


# ------------------------------------------------------------------------------------------------ the worker
def _worker(
    conn: socket.socket, fds: list[int], request: dict[str, Any], inherited: list[Any], wake: tuple[int, int]
) -> None:
    """The forked job: made to look like `python -m tfrun.runner.child EVENTS_FD` started by the supervisor, then
    run as that. Never returns into the zygote's loop."""
    code = 1
    try:
        for item in inherited:
            if item is not None:
                item.close()
        signal.set_wakeup_fd(-1)
        for fd in wake:
            os.close(fd)
        os.setsid()
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh Python: KeyboardInterrupt
        watch = conn.detach()
        watch = _high(watch)
        events_fd = int(request["events_fd"])
        high = [_high(fd) for fd in fds]  # so no dup2 below overwrites a received fd not yet placed
        for fd, target in zip(high, [*FDS, events_fd]):
            os.dup2(fd, target, inheritable=True)
            os.close(fd)
        _job_process(request, events_fd)
        _watch_client(watch)
        code = _run_child()
    except BaseException:  # the worker's own set-up failed: said on the job's stderr, exit 1
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


def _high(fd: int) -> int:
    import fcntl

    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64)
    os.close(fd)
    return moved


def _job_process(request: dict[str, Any], events_fd: int) -> None:
    """The job's environment, folder, argv and seeds, as a fresh process has them. sys.stdin/stdout/stderr are kept:
    they write to fds 0-2, which now are the job's, and were configured by the same PYTHON* variables for
    non-terminal streams (and loggers made at import, e.g. absl's, hold them)."""
    import random

    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.path[0] = request["cwd"]
    sys.argv = ["-m", str(events_fd)]
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "tempfile" in sys.modules:
        sys.modules["tempfile"].tempdir = None  # from the job's TMPDIR when first asked


def _watch_client(fd: int) -> None:
    """The client's end closing (it was SIGKILLed, say) stops this job's whole process group at once."""
    import threading

    os.set_blocking(fd, True)  # the zygote read the request with a timeout, which made it non-blocking

    def watch() -> None:
        while True:
            try:
                if not os.read(fd, 4096):
                    break
            except InterruptedError:
                continue
            except OSError:
                break
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, name="tfrun-zygote-client", daemon=True).start()


def _run_child() -> int:
    """runpy, as `python -m` runs a module; the exit status Python would give."""
    import runpy
    import traceback

    try:
        runpy.run_module(CHILD_MODULE, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        traceback.print_exc()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)  # Python's own exit on an uncaught KeyboardInterrupt
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


# ------------------------------------------------------------------------------------------------ the client
def run(path: str, events_fd: int) -> int:
    """Ask the zygote for a worker; become the fresh child if it cannot give one."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        body = json.dumps(
            {"env": dict(os.environ), "cwd": os.getcwd(), "executable": sys.executable, "events_fd": events_fd}
        ).encode()
        socket.send_fds(sock, [HEADER.pack(len(body))], [*FDS, events_fd])
        sock.sendall(body)
        reader = sock.makefile("rb")
        answer = json.loads(reader.readline() or b"{}")
    except (OSError, ValueError):
        answer = {"fork": False, "reason": "the zygote did not answer"}
    if "pid" not in answer:
        sock.close()
        _child_event(events_fd, {"start": "fresh", "zygote": answer.get("reason", "no answer")})
        os.execv(sys.executable, [*fresh_command(), str(events_fd)])
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


def _child_event(events_fd: int, child: dict[str, Any]) -> None:
    """How the child started, for the record (one short line: the runner reads it before the child's own)."""
    os.write(events_fd, (json.dumps({"event": "child", "child": child}) + "\n").encode())


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "serve":
        return serve(argv[2])
    if len(argv) == 4 and argv[1] == "run":
        return run(argv[2], int(argv[3]))
    sys.stderr.write("usage: python -m tfrun.runner.processes.zygote serve SOCKET | run SOCKET EVENTS_FD\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
