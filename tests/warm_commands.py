"""The suite's `tfrun` commands, forked from a warm Python instead of started afresh (tests only).

A `tfrun` command that stops at a refused config spends ~0.4 of its ~0.7 s of a core starting Python and importing
Hydra and tfrun's runner: the same work, a thousand times in the suite. Each test process gets one server (this
file run as a script) that imports `tfrun.runner.cli` and what a command goes on to import, nothing of TensorFlow
or a cloud SDK, then forks one process per command. The forked process is made to look like the console script
started afresh (argv, environment, folder, sys.path, fds 0-2 and the exit status) and runs the same `main()`.

A command whose import-time environment differs from the server's (tfrun's zygote rule: `_mismatch`) runs afresh,
as does every command when the server cannot start: `run()` then is `subprocess.run`. Tests about the process
itself (signals, its children, the console script) start `BIN / "tfrun"` themselves.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from tfrun.runner.processes.zygote import READY_SUFFIX, Zygote

BIN = Path(sys.executable).parent
HEADER = struct.Struct("!I")
# Never loaded by the server: the offline tests' import blocker (tests/fakes/offline) must see a command import them.
HEAVY = ("tensorflow", "tf_keras", "keras", "google.cloud.aiplatform", "google.cloud.storage", "google.auth", "grpc")
HEAVY += ("mlflow", "optuna")
READY_TIMEOUT_S = 30.0


# ------------------------------------------------------------------------------------------------ the client
class WarmCommands:
    """One server per test process, started on first use with the environment `server_env()` gives (the commands'
    own, without a test's additions); `run` is subprocess.run for `tfrun ARGS`."""

    def __init__(self, server_env: Callable[[], dict[str, str]]) -> None:
        self._server_env = server_env
        self._server: Optional[Zygote] = None  # the zygote's start/ready/stop, for a lighter warm process
        self._lock = threading.Lock()
        self.last_forked = False  # whether the last command ran forked (tests/unit/test_warm_commands.py)

    def run(self, args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
        path = self._socket()
        done = None if path is None else self._forked(path, args, cwd, env, timeout)
        self.last_forked = done is not None
        if done is not None:
            return done
        return subprocess.run(
            [str(BIN / "tfrun"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = None

    def _socket(self) -> Optional[str]:
        with self._lock:
            if self._server is None:
                folder = tempfile.mkdtemp(prefix="tfrun-warm-commands-")
                path = os.path.join(folder, "socket")
                proc = subprocess.Popen(
                    [sys.executable, __file__, path],
                    cwd=folder,
                    env=self._server_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                self._server = Zygote(proc, folder, path)
                import atexit

                atexit.register(self.stop)
            return self._server.path if self._server.ready(READY_TIMEOUT_S) else None

    def _forked(
        self, path: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float
    ) -> Optional[subprocess.CompletedProcess]:
        """The command run by a fork of the server; None when the server would not fork it."""
        request = {"args": args, "cwd": str(cwd), "env": env, "executable": sys.executable}
        body = json.dumps(request).encode()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, open(os.devnull, "rb") as stdin:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                try:
                    sock.connect(path)
                    socket.send_fds(sock, [HEADER.pack(len(body))], [stdin.fileno(), out.fileno(), err.fileno()])
                    sock.sendall(body)
                    reader = sock.makefile("rb")
                    answer = json.loads(reader.readline() or b"{}")
                except (OSError, ValueError):
                    return None
                if "pid" not in answer:
                    return None
                sock.settimeout(timeout)
                try:
                    status = int(json.loads(reader.readline())["status"])
                except (TimeoutError, socket.timeout):
                    _kill(int(answer["pid"]))
                    raise subprocess.TimeoutExpired(
                        [str(BIN / "tfrun"), *args], timeout, _text(out), _text(err)
                    ) from None
            code = os.waitstatus_to_exitcode(status)
            return subprocess.CompletedProcess([str(BIN / "tfrun"), *args], code, _text(out), _text(err))


def _kill(pid: int) -> None:
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _text(file: Any) -> str:
    """What the command wrote, read as subprocess.run(text=True) reads it (locale's encoding, universal newlines)."""
    import io
    import locale

    file.seek(0)
    return io.TextIOWrapper(file, encoding=locale.getpreferredencoding(False), newline=None).read()


# ------------------------------------------------------------------------------------------------ the server
def _warm_up() -> None:
    """What a command imports on its way to a refused config or a job (found by listing sys.modules after a few
    commands), and Hydra's plugin discovery."""
    import importlib

    import tfrun.runner.cli  # noqa: F401

    for name in (
        "tfrun.runner.job",
        "tfrun.runner.config.validate",
        "tfrun.runner.config.compose_errors",
        "tfrun.runner.processes.warm_child",
        "tfrun.runner.sweeps.callback",
        "hydra._internal.core_plugins.basic_launcher",
        "hydra._internal.core_plugins.basic_sweeper",
        "hydra.experimental.callback",
    ):
        importlib.import_module(name)
    from hydra.core.plugins import Plugins

    Plugins.instance()
    loaded = [name for name in sys.modules if name.startswith(HEAVY)]
    if loaded:
        raise SystemExit(f"the warm commands' server must not import {loaded}")


def _mismatch(request: dict[str, Any]) -> Optional[str]:
    """tfrun's zygote rule for what may fork (same import-time variables, PYTHONPATH only adding folders in front,
    none shadowing a loaded module), and no Hydra plugins of a project's own (the server discovered its own)."""
    from tfrun.runner.processes import zygote_server

    why = zygote_server._mismatch({**request, "module": zygote_server.CHILD_MODULE})
    extra = zygote_server.extra_path(request["env"]) or []
    if why is None and any(os.path.isdir(os.path.join(folder, "hydra_plugins")) for folder in extra):
        why = "a PYTHONPATH folder has Hydra plugins"
    return why


def serve(path: str) -> None:
    """Accept one command at a time (a test process runs one at a time), fork it, send its pid, then its status."""
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    listener.settimeout(1.0)
    _warm_up()
    Path(path + READY_SUFFIX).touch()
    while os.getppid() == parent:
        try:
            conn, _ = listener.accept()
        except (TimeoutError, socket.timeout):
            continue
        with conn:
            conn.settimeout(None)
            try:
                request, fds = _receive(conn)
            except (OSError, ValueError, ConnectionError):
                continue
            why = _mismatch(request)
            if why is not None:
                for fd in fds:
                    os.close(fd)
                _send(conn, {"fork": False, "reason": why})
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                conn.close()
                _command(request, fds)
            for fd in fds:
                os.close(fd)
            _send(conn, {"pid": pid})
            _, status = os.waitpid(pid, 0)
            try:
                _send(conn, {"status": status})
            except OSError:
                pass  # the test timed out and went on


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(conn, HEADER.size, 3)
    while len(data) < HEADER.size:
        data += conn.recv(HEADER.size - len(data))
    (size,) = HEADER.unpack(data)
    body = b""
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ConnectionError("the client went away")
        body += chunk
    return json.loads(body), fds


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def _command(request: dict[str, Any], fds: list[int]) -> None:
    """The forked command: the console script's process, then `main()`. Never returns into the server's loop."""
    import atexit
    import random
    import signal
    import traceback

    code = 1
    try:
        os.setpgid(0, 0)  # its own group: nothing it does to its group reaches the server
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL if sig != signal.SIGPIPE else signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        from tfrun.runner.processes import zygote_server

        extra = zygote_server.extra_path(request["env"]) or []
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = [str(BIN / "tfrun"), *request["args"]]
        _console_script_main()
        sys.path[1:1] = extra
        for folder in extra:  # a fresh Python imports the first sitecustomize on its path (tests/fakes/offline's)
            if os.path.isfile(os.path.join(folder, "sitecustomize.py")):
                import runpy

                runpy.run_path(os.path.join(folder, "sitecustomize.py"), run_name="sitecustomize")
                break
        random.seed()
        tempfile.tempdir = None
        code = _main()
        # then what the interpreter does at its exit: join non-daemon threads and run their exit hooks (a joblib
        # sweep's executor tells its workers to stop there), then the atexit handlers
        if "threading" in sys.modules:
            sys.modules["threading"]._shutdown()
        atexit._run_exitfuncs()
    except BaseException:
        traceback.print_exc()
    finally:
        from tfrun.runner.processes.zygote_server import flush_and_exit

        flush_and_exit(code)


def _console_script_main() -> None:
    """`__main__` as the console script's: what multiprocessing and joblib's loky workers import as their main
    module (a worker running the server's file instead never reaches the sweep's jobs)."""
    import types

    main = types.ModuleType("__main__")
    main.__file__ = str(BIN / "tfrun")
    main.__spec__ = None
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main


def _main() -> int:
    """`tfrun`'s main() with the exit status Python gives a console script."""
    from tfrun.runner.cli import main
    from tfrun.runner.processes.zygote_server import exit_status

    return exit_status(main)


if __name__ == "__main__":
    sys.path[0] = str(BIN)  # as the console script has it: nothing comes from the tests' folder
    serve(sys.argv[1])
