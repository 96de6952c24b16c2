"""Serving containers of the prebuilt TensorFlow image forked from a warm process instead of started cold.

The stand-in for Vertex's prebuilt TF prediction image is `tfrun-serve --vertex` (containers.py). Started cold,
each container spends most of its start-up importing TensorFlow (~8 s of a core here), and the e2e tests deploy
about twenty of them. This process imports TensorFlow and the container's modules once, on the first request,
and forks one process per container: the container is still a process of its own (its own session, argv,
environment, working directory, log file and exit status; stopped by its process group), running the same
`tfrun.runner.serve_cli.main` a cold start runs; only the interpreter's start-up is shared. Like tfrun's own
zygote (tfrun.runner.processes.zygote_server) it imports modules and nothing more (no TensorFlow op, no device
listed), so each fork starts TensorFlow's runtime afresh, and it forks only a container whose import-time
environment (TF_*, PYTHON*, ... as tfrun's zygote compares them) equals its own: any other container starts cold.

Protocol (one Unix-socket connection per container): the client sends one JSON line {"argv", "env", "cwd",
"log"}; the zygote answers {"pid": N} once forked (or {"fork": false, "reason": ...}) and later, once it has
reaped the process, {"status": <wait status>}. `fork()` gives the fake a Popen-like handle of it (`pid`,
`poll`, `wait`, `returncode`). The zygote (`start()`, the session fixture `serving_zygote` in fixture.py) exits on
SIGTERM or when the process that started it is gone.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import traceback
from typing import Any, Optional

# What tfrun-serve sets before TensorFlow is imported (runner/serve_cli.py, tasks/vertex/container.py): the zygote
# imports with them, and a container's environment is compared with them applied.
SERVE_DEFAULTS = {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
# `python -c` rather than `-m`: the module is imported once, as part of its package, not run a second time as __main__
ENTRY = (
    "import sys; from tests.fakes.vertex.serving_zygote import serve; sys.exit(serve(sys.argv[1], int(sys.argv[2])))"
)
ANSWER_TIMEOUT_S = 600.0  # the first request waits for TensorFlow's import, which is slow on a loaded machine


def _import_time_env(env: dict[str, str]) -> dict[str, str]:
    from tfrun.runner.processes.zygote import import_time_env

    return import_time_env({**SERVE_DEFAULTS, **env})


# ------------------------------------------------------------------------------------------------ the zygote
def _preload() -> None:
    """tfrun-serve --vertex's imports: TensorFlow, the container, the servable and Cloud Storage (modules only)."""
    import gc

    for key, value in SERVE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    gc.disable()
    try:
        import tensorflow  # noqa: F401
        from google.cloud import storage  # noqa: F401

        from tfrun.runner import serve_cli  # noqa: F401
        from tfrun.tasks import gcs  # noqa: F401
        from tfrun.tasks.tfserving import servable  # noqa: F401
        from tfrun.tasks.vertex import container  # noqa: F401
    finally:
        gc.freeze()  # a forked container's collections never walk (and copy) the zygote's heap
        gc.enable()


def _become(request: dict[str, Any], keep: list[socket.socket]) -> None:
    """In the forked process: the container's session, files, environment and argv, then tfrun-serve's main."""
    code = 1
    try:
        for sock in keep:
            sock.close()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        os.setsid()
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = list(request["argv"])
        from tfrun.runner import serve_cli

        code = serve_cli.main(sys.argv[1:])  # ends the process itself (os._exit) once it served
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the container's crash, in its log as a cold start would show it
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(path: str, parent: int) -> int:
    """Accept requests until SIGTERM or the parent's end; fork each container, report each one's end."""
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    loaded = False
    mine: dict[str, str] = {}
    waiting: dict[int, socket.socket] = {}  # pid -> the connection that asked for it
    while not stopping and os.getppid() == parent:
        ready, _, _ = select.select([listener], [], [], 0.1)
        if ready:
            conn, _ = listener.accept()
            try:
                request = json.loads(conn.makefile("rb").readline() or b"{}")
                if not loaded:
                    mine = _import_time_env(dict(os.environ))
                    _preload()
                    loaded = True
                theirs = _import_time_env(request["env"])
                differs = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
                if differs:
                    conn.sendall(json.dumps({"fork": False, "reason": f"{differs[0]} differs"}).encode() + b"\n")
                    conn.close()
                    continue
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _become(request, [listener, conn, *waiting.values()])
                waiting[pid] = conn
                conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            except (OSError, ValueError, KeyError) as exc:
                try:
                    conn.sendall(json.dumps({"fork": False, "reason": repr(exc)}).encode() + b"\n")
                except OSError:
                    pass
                conn.close()
        _reap(waiting)
    listener.close()
    for pid in list(waiting):  # the session ends: no container outlives its zygote
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    while waiting:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        _report(waiting.pop(pid, None), status)
    return 0


def _reap(waiting: dict[int, socket.socket]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _report(waiting.pop(pid, None), status)


def _report(conn: Optional[socket.socket], status: int) -> None:
    if conn is None:
        return
    try:
        conn.sendall(json.dumps({"status": status}).encode() + b"\n")
    except OSError:
        pass
    conn.close()


# ------------------------------------------------------------------------------------------------ the client
class ForkedProcess:
    """A container forked by the zygote, as the fake handles a subprocess.Popen: pid, poll, wait, returncode."""

    def __init__(self, pid: int, conn: socket.socket, reader: Any) -> None:
        self.pid = pid
        self.returncode: Optional[int] = None
        self._ended = threading.Event()
        self._conn = conn
        threading.Thread(target=self._watch, args=(reader,), name=f"forked-{pid}", daemon=True).start()

    def _watch(self, reader: Any) -> None:
        try:
            self._conn.settimeout(None)  # a container lives as long as its test wants
            line = reader.readline()
            status = int(json.loads(line)["status"]) if line else None
        except (OSError, ValueError, KeyError):
            status = None
        if status is None:  # the zygote went away first: the process went with it (serve's last loop)
            self.returncode = -signal.SIGKILL
        else:
            self.returncode = os.waitstatus_to_exitcode(status)
        self._conn.close()
        self._ended.set()

    def poll(self) -> Optional[int]:
        return self.returncode if self._ended.is_set() else None

    def wait(self, timeout: Optional[float] = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"forked container {self.pid}", timeout or 0)
        assert self.returncode is not None
        return self.returncode


def fork(path: str, argv: list[str], env: dict[str, str], cwd: str, log: str) -> Optional[ForkedProcess]:
    """The container forked by the zygote at `path`, or None when it cannot be (then the fake starts it cold)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(ANSWER_TIMEOUT_S)
        conn.connect(path)
        conn.sendall(json.dumps({"argv": argv, "env": env, "cwd": cwd, "log": log}).encode() + b"\n")
        reader = conn.makefile("rb")
        answer = json.loads(reader.readline() or b"{}")
    except (OSError, ValueError):
        conn.close()
        return None
    if "pid" not in answer:
        conn.close()
        return None
    return ForkedProcess(int(answer["pid"]), conn, reader)


def start(path: str, env: dict[str, str], cwd: str, log: str) -> subprocess.Popen:
    """The zygote process (it imports nothing heavy until the first container is asked for)."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", ENTRY, path, str(os.getpid())],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C is for the tests; the zygote ends with its parent
        )
