"""The zygote's server and its forked workers (tfrun.runner.processes.zygote says why and how it is used).

`python -m tfrun.runner.processes.zygote_server SOCKET_PATH`: imports what every job needs, then a single-threaded
select loop (fork from a multi-threaded process is unsafe) forks one worker per request, reaps it on SIGCHLD (a
self-pipe) and sends its wait status to its client. It exits on SIGTERM or when its parent dies, once its workers
have ended.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional

from tfrun.runner.processes.zygote import (
    ACCEPT_TIMEOUT_S,
    CHILD_MODULE,
    FDS,
    HEADER,
    MODULES,
    READY_SUFFIX,
    import_time_env,
)

# What a training job's steps import when they run, beyond their own modules: Hydra's instantiate (every step
# builds its node with it), tfrun's digits loader and the schema (its user-code check reads the built-in
# targets). Each costs a forked job its import otherwise: ~0.1 s quiet, hydra.utils most of the hardware step.
STEP_IMPORTS = ("hydra.utils", "tfrun.tasks.build", "tfrun.tasks.data", "tfrun.tasks.user_calls")
STEP_IMPORTS += ("tfrun.tasks.core.schema", "tfrun.tasks.pruning")
# More modules every job of this zygote imports, comma-separated (e.g. google.cloud.aiplatform, ~3.5 s of a core,
# for jobs that run on Vertex AI): plain imports like the rest, so each must start no thread and no runtime.
PRELOAD_ENV = "TFRUN_ZYGOTE_PRELOAD"


def _preload() -> None:
    """What every job imports before its first step (tfrun.runner.child's own imports and its --warm preload), the
    train plan's step modules and what they import (STEP_IMPORTS), and nothing that starts TensorFlow's runtime:
    module imports only (tests/integration/test_zygote.py checks that the runtime has not started). The child module
    itself is left to runpy, which runs it as __main__."""
    import importlib

    import tensorflow  # noqa: F401
    import tf_keras  # noqa: F401
    from omegaconf import OmegaConf  # noqa: F401

    from tfrun.runner import steps
    from tfrun.tasks.context import Context  # noqa: F401
    from tfrun.tasks.core.plans import JOB_STEPS

    for name in [steps.STEPS[step].partition(":")[0] for step in JOB_STEPS["train"]] + list(STEP_IMPORTS):
        importlib.import_module(name)
    for name in filter(None, os.environ.get(PRELOAD_ENV, "").split(",")):
        try:
            importlib.import_module(name.strip())
        except ImportError:
            pass  # a job that needs it imports it itself (and says why it cannot)


def _warm_up() -> None:
    """Import what every job imports, then move everything this process made to the garbage collector's permanent
    generation (gc.freeze). A collection in a forked job then never walks the zygote's millions of objects: it
    would take tenths of a second each time and write to every page it touched, copying the whole heap into the
    job (copy-on-write). The collector stays off while importing, so no freed holes are left in shared pages (the
    order Python's gc.freeze documentation gives for a process that forks without exec). Collection only frees
    unreachable objects: nothing a job computes depends on it."""
    import gc

    gc.disable()
    try:
        _preload()
    finally:
        gc.freeze()
        gc.enable()


def _mismatch(request: dict[str, Any]) -> Optional[str]:
    """Why this job cannot fork from here (None: it can): its import-time environment or folder differ. PYTHONPATH
    may put absolute folders in front of the zygote's own (a project's src/, say): the worker puts them on sys.path
    as a fresh Python would, unless one of them holds a module the zygote imported from elsewhere."""
    if request.get("module", CHILD_MODULE) not in MODULES:
        return "not a module a forked process may run"
    mine, theirs = import_time_env(dict(os.environ)), import_time_env(request["env"])
    for key in sorted((set(mine) | set(theirs)) - {"PYTHONPATH"}):
        if mine.get(key) != theirs.get(key):
            return f"{key} differs from the zygote's"
    if request.get("executable") != sys.executable:
        return "another Python"
    if any(p and not os.path.isabs(p) for p in request["env"].get("PYTHONPATH", "").split(os.pathsep)):
        return "PYTHONPATH has a relative entry"
    extra = extra_path(request["env"])
    if extra is None:
        return "PYTHONPATH differs from the zygote's (only folders in front of its own may be added)"
    loaded = {name.partition(".")[0] for name in sys.modules}
    why = _shadows(request["cwd"], loaded, "its folder", required=True)
    for folder in extra:
        why = why or _shadows(folder, loaded, "a PYTHONPATH folder", required=False)
    return why


def extra_path(env: dict[str, str]) -> Optional[list[str]]:
    """The folders a job's PYTHONPATH puts in front of the zygote's own entries (None: its PYTHONPATH is not the
    zygote's with folders in front)."""
    mine = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    theirs = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if len(theirs) < len(mine) or theirs[len(theirs) - len(mine) :] != mine:
        return None
    return theirs[: len(theirs) - len(mine)]


def _shadows(folder: str, loaded: set[str], where: str, required: bool) -> Optional[str]:
    """Why `folder` early on sys.path would give a fresh Python another module than one the zygote imported. `where`
    names it in the answer (no machine path: the record keeps it); a PYTHONPATH folder that is not there (not
    `required`) gives a fresh Python nothing."""
    try:
        entries = os.listdir(folder)
    except OSError:
        return f"{where} cannot be listed" if required else None
    for entry in entries:
        name = entry.partition(".")[0]
        module = entry.endswith((".py", ".pyc", ".so")) or os.path.isfile(os.path.join(folder, entry, "__init__.py"))
        if module and name in loaded and not _same_file(name, os.path.join(folder, entry)):
            return f"{where} has {entry}, which would replace the module {name} the zygote imported"
    return None


def _same_file(module: str, entry: str) -> bool:
    """The zygote's module `module` was imported from `entry` (a package folder or a file) itself."""
    origin = getattr(sys.modules.get(module), "__file__", None)
    if not origin:
        return False
    origin, entry = os.path.realpath(origin), os.path.realpath(entry)
    return origin == entry or origin.startswith(entry + os.sep)


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
    _warm_up()
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
        watched = [wake_read, *workers.values()] + ([listener] if listener is not None else [])
        readable, _, _ = select.select(watched, [], [], 1.0)
        _stop_orphans(workers, readable)
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


def _stop_orphans(workers: dict[int, socket.socket], readable: list[Any]) -> None:
    """A worker whose client's end closed (the client was SIGKILLed, say) is stopped with its process group. The
    worker watches that too (_watch_client), but a worker blocked in TensorFlow holding the GIL (a multi-worker
    task creating its strategy for a cluster that never forms) never runs its watching thread; the zygote's loop
    always does. A client sends nothing after its request,
    so a readable connection is a closed one."""
    for pid, conn in workers.items():
        if conn in readable:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


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
    """The forked job: made to look like `python -m tfrun.runner.child EVENTS_FD` (or a cluster's server, `python -m
    tfrun.tasks.cluster_server`, or an embedded serving replica, `python -m tfrun.runner.serve_cli FLAGS`) started by
    the supervisor, then run as that. Never returns into the zygote's loop."""
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
        events_fd = request.get("events_fd")
        high = [_high(fd) for fd in fds]  # so no dup2 below overwrites a received fd not yet placed
        for fd, target in zip(high, [*FDS] if events_fd is None else [*FDS, int(events_fd)]):
            os.dup2(fd, target, inheritable=True)
            os.close(fd)
        _job_process(request, events_fd)
        _watch_client(watch)
        code = _run_module(request.get("module", CHILD_MODULE))
    except BaseException:  # the worker's own set-up failed: said on the job's stderr, exit 1
        import traceback

        traceback.print_exc()
    finally:
        flush_and_exit(code)


def flush_and_exit(code: int) -> NoReturn:
    """End a forked process: what it wrote reaches its fds, then out without the interpreter's teardown (nothing of
    the process it was forked from may run again here)."""
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


def _job_process(request: dict[str, Any], events_fd: Optional[int]) -> None:
    """The job's environment, folder, argv and seeds, as a fresh process has them. sys.stdin/stdout/stderr are kept:
    they write to fds 0-2, which now are the job's, and were configured by the same PYTHON* variables for
    non-terminal streams (and loggers made at import, e.g. absl's, hold them)."""
    import random

    extra = extra_path(request["env"]) or []  # PYTHONPATH's folders in front of the zygote's own (_mismatch)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.path[0] = request["cwd"]
    sys.path[1:1] = extra
    sys.argv = ["-m", *([str(events_fd)] if events_fd is not None else request.get("args", []))]
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


def _run_module(module: str) -> int:
    """runpy, as `python -m` runs a module; the exit status Python would give."""
    import runpy

    return exit_status(lambda: runpy.run_module(module, run_name="__main__", alter_sys=True))


def exit_status(call: Callable[[], Any]) -> int:
    """call(), then the exit status Python gives a program that did it: SystemExit's code, 1 after printing an
    uncaught exception; an uncaught KeyboardInterrupt ends the process by SIGINT, as Python's own exit does."""
    import traceback

    try:
        call()
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
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    # Straight out: nothing to flush (its output goes nowhere), and TensorFlow's interpreter teardown took ~0.5 s
    # that a sweep's end (tfrun.runner.processes.zygote.stop) waited for.
    os._exit(serve(sys.argv[1]))
