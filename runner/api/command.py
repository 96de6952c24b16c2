"""The real `tfrun` command in a child process, for the Python API: the run is exactly the command's.

Its output reaches this process's stdout/stderr as it comes (in Jupyter: the cell), and the records it
starts are reported through the file TFRUN_RECORD_LOG names (tfrun.runner.processes.execute.announce), so the
API never guesses which run folder is its own. Ctrl-C here (KeyboardInterrupt, Jupyter's "interrupt
kernel") is passed on as a terminal passes it: SIGINT to the command's process group. The command then stops
its child and finishes the record as `interrupted`; this waits for that, then re-raises. A second Ctrl-C is
passed on again; a third kills the command at once (its children get SIGTERM; the record may then still say
`running`).
"""

from __future__ import annotations

import codecs
import collections
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tfrun.runner.processes.execute import RECORD_LOG_ENV
from tfrun.tasks.core.processes import die_with_parent

TICK_S = 0.25  # how often `on_tick` hears of the records while the command runs
DRAIN_S = 1.0  # after the command exits: how long a grandchild holding its pipes open is waited for
KILL_AFTER_PRESSES = 3
ERROR_LINES = 200


class CommandError(RuntimeError):
    """The command ended without writing a record, and not for a config problem (its exit code and last lines)."""

    def __init__(self, exit_code: int, lines: list[str]):
        self.exit_code = exit_code
        self.lines = lines
        tail = "\n".join(lines[-20:])
        super().__init__(f"tfrun exited with code {exit_code} and wrote no record" + (f":\n{tail}" if tail else ""))


@dataclass
class Finished:
    exit_code: int
    records: list[Path]  # the record files the command started, in that order
    errors: list[str] = field(default_factory=list)  # the last lines it wrote to stderr (config problems go there)


def tfrun_command() -> list[str]:
    """`tfrun` of this same Python (its console script when installed beside it), so the run uses these packages
    and, as the script does, does not put the project folder first on the runner's own import path (-P)."""
    script = Path(sys.executable).parent / "tfrun"
    if script.is_file():
        return [sys.executable, str(script)]
    return [sys.executable, "-P", "-m", "tfrun.runner.cli"]


def recorded(log: Path) -> list[Path]:
    try:
        return [Path(line) for line in log.read_text().splitlines() if line.strip()]
    except OSError:
        return []


class _Relay:
    """The command's stdout and stderr, written here as they come (decoded as they come: a progress bar's
    carriage returns stay), stderr's last lines kept."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.selector = selectors.DefaultSelector()
        self.errors: collections.deque[str] = collections.deque(maxlen=ERROR_LINES)
        self._error_partial = ""
        assert proc.stdout is not None and proc.stderr is not None
        for pipe, target, kept in ((proc.stdout, sys.stdout, False), (proc.stderr, sys.stderr, True)):
            os.set_blocking(pipe.fileno(), False)
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            self.selector.register(pipe, selectors.EVENT_READ, (target, decoder, kept))

    def pump(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            target, decoder, kept = key.data
            data = os.read(key.fd, 65536)
            text = decoder.decode(data, final=not data)
            if not data:
                self.selector.unregister(key.fileobj)
            if text:
                _write(target, text)
                if kept:
                    *lines, self._error_partial = (self._error_partial + text).split("\n")
                    self.errors.extend(lines)

    def until_exit(self, on_tick: Callable[[], None]) -> None:
        exited_at: float | None = None
        while self.selector.get_map():
            self.pump(TICK_S)
            on_tick()
            if _exited(self.proc):
                exited_at = exited_at or time.monotonic()
                if time.monotonic() - exited_at > DRAIN_S:
                    break
        self.proc.wait()
        on_tick()

    def close(self) -> None:
        for key in list(self.selector.get_map().values()):
            self.selector.unregister(key.fileobj)
            key.fileobj.close()  # type: ignore[union-attr]
        self.selector.close()
        if self._error_partial.strip():
            self.errors.append(self._error_partial)


def _exited(proc: subprocess.Popen) -> bool:
    """Whether the command has ended, asked without reaping it (waitid with WNOWAIT) and so without Popen.poll's
    lock: a KeyboardInterrupt raised inside Popen.poll between taking that lock and the `try` that releases it
    leaves it taken, poll then answers "running" for ever and wait() blocks (seen once: Ctrl-C in tfrun.run, the
    command ended, the call never returned). Where os.waitid is missing (macOS before Python 3.13): poll."""
    if proc.returncode is not None:
        return True
    if not hasattr(os, "waitid"):
        return proc.poll() is not None
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped already
        return True


def _write(stream: IO[str], text: str) -> None:
    stream.write(text)
    stream.flush()


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # its process group, as a terminal's Ctrl-C (it leads its own session)
    except (ProcessLookupError, PermissionError):
        pass


def run_command(args: list[str], cwd: Path, on_tick: Callable[[list[Path]], None]) -> Finished:
    """Run `tfrun ARGS` in cwd to its end, `on_tick(records so far)` every TICK_S; KeyboardInterrupt stops it
    (see the module docstring) and is re-raised once its record is finished."""
    with tempfile.TemporaryDirectory(prefix="tfrun-api-") as folder:
        log = Path(folder) / "records.txt"
        log.touch()
        proc = subprocess.Popen(
            [*tfrun_command(), *args],
            cwd=cwd,
            env={**os.environ, RECORD_LOG_ENV: str(log), **_zygote_env()},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Jupyter's interrupt reaches only the kernel; this passes it on, once
            preexec_fn=die_with_parent(),  # a kernel that dies takes the command with it
        )
        relay = _Relay(proc)

        def tick() -> None:
            on_tick(recorded(log))

        try:
            try:
                relay.until_exit(tick)
            except KeyboardInterrupt:
                _stop(proc, relay, tick)
                raise
        finally:
            relay.close()
        return Finished(proc.returncode, recorded(log), list(relay.errors))


def _zygote_env() -> dict[str, str]:
    """The session's zygote: each call's jobs fork from a warm TensorFlow (TFRUN_NO_FORK=1: fresh processes)."""
    from tfrun.runner.processes import zygote

    path = zygote.for_session()
    return {zygote.ZYGOTE_ENV: path} if path else {}


def _stop(proc: subprocess.Popen, relay: _Relay, tick: Callable[[], None]) -> None:
    """Ctrl-C passed on, and the command's end (its last lines, the record's final state) waited for."""
    presses = 1
    _signal(proc, signal.SIGINT)
    while True:
        try:
            relay.until_exit(tick)
            return
        except KeyboardInterrupt:
            presses += 1
            _signal(proc, signal.SIGKILL if presses >= KILL_AFTER_PRESSES else signal.SIGINT)
