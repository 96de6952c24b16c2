"""A stop flag that SIGINT and SIGTERM set, for a server's main thread to wait on while other threads serve.

Why not `threading.Event.wait` with the signal handler setting it: the kernel hands a process-wide signal to any
thread not blocking it, and Python runs the handler only when the main thread next runs bytecode. A main thread
blocked in a lock wait wakes only if it was the thread chosen; with gRPC's, TensorFlow's and an HTTP server's threads
beside it, it sometimes was not, and an embedded serving replica slept through SIGINT and SIGTERM until its wait's
timeout (1 stop in 4 under load, in a replica forked from the zygote). Here the main thread waits in `select` on
Python's signal wakeup fd, which the interpreter writes from whichever thread the signal reached.
"""

from __future__ import annotations

import select
import signal
import socket
import time
from typing import Any, Callable, Optional

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_NUMBERS = {0, *(int(sig) for sig in STOP_SIGNALS)}  # 0: set()


class StopSignals:
    """Install in the main thread; `wait()` there; `set()` from any thread (a loader that failed, say)."""

    def __init__(self, on_signal: Optional[Callable[[int], None]] = None) -> None:
        self.on_signal = on_signal
        self._stopped = False
        self._read, self._write = socket.socketpair()
        for end in (self._read, self._write):
            end.setblocking(False)
        self._previous_fd: Optional[int] = None
        self._previous: dict[int, Any] = {}

    def install(self) -> "StopSignals":
        """Handle SIGINT and SIGTERM from now on (until then each keeps the handler it had)."""
        self._previous_fd = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        self._previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        self._stopped = True
        if self.on_signal is not None:
            self.on_signal(signum)

    def set(self) -> None:
        self._stopped = True
        try:
            self._write.send(b"\0")
        except OSError:  # full (a wake is pending anyway) or closed
            pass

    def is_set(self) -> bool:
        return self._stopped

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Whether a stop came, waiting up to `timeout` seconds (None: until one does). The wakeup fd's bytes are
        the numbers of the signals that came (or a `set()`'s 0), so this does not depend on when Python gets round
        to running the handler."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stopped:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            ready, _, _ = select.select([self._read], [], [], remaining)
            try:
                woken = self._read.recv(4096) if ready else b""
            except BlockingIOError:
                woken = b""
            if any(number in STOP_NUMBERS for number in woken):
                self._stopped = True
        return self._stopped

    def close(self) -> None:
        """Give the signals their handlers back; the wakeup fd too."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if self._previous_fd is not None:
            signal.set_wakeup_fd(self._previous_fd)
        self._read.close()
        self._write.close()
