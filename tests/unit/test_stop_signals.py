"""tfrun.tasks.core.stop_signals: a serving process's main thread wakes for SIGINT/SIGTERM whichever thread the
kernel handed the signal to (in a real process: signal delivery is what is tested)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from tfrun.tasks.core.stop_signals import StopSignals

# The main thread blocks the signals once a second thread (which does not) is running: the kernel must hand them to
# that thread, as it sometimes chose to in a serving process with gRPC's and TensorFlow's threads.
SERVER = """
import signal, sys, threading, time
from tfrun.tasks.core.stop_signals import StopSignals
stop = StopSignals(on_signal=lambda signum: print("handled", signum, flush=True)).install()
started = threading.Event()
threading.Thread(target=lambda: (started.set(), time.sleep(60)), daemon=True).start()
started.wait()
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
print("waiting", flush=True)
print("stopped" if stop.wait(float(sys.argv[1])) else "timed out", flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_another_thread_took_still_wakes_the_main_thread(sig):
    proc = subprocess.Popen([sys.executable, "-c", SERVER, "20"], stdout=subprocess.PIPE, text=True, env={**os.environ})
    try:
        assert proc.stdout.readline().strip() == "waiting"
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "stopped" in out.splitlines(), out
    assert f"handled {int(sig)}" in out.splitlines()  # the handler ran too (the server's log line)
    assert proc.returncode == 0


def test_set_from_another_thread_wakes_a_wait_without_timeout():
    stop = StopSignals()  # not installed: set() alone (a loader that failed)
    try:
        threading.Timer(0.2, stop.set).start()
        assert stop.wait() is True and stop.is_set()
    finally:
        stop.close()


def test_wait_returns_false_when_nothing_came_and_close_gives_the_handlers_back():
    before = signal.getsignal(signal.SIGTERM)
    stop = StopSignals().install()
    try:
        assert signal.getsignal(signal.SIGTERM) == stop._handle
        started = time.monotonic()
        assert stop.wait(0.2) is False and not stop.is_set()
        assert time.monotonic() - started >= 0.2
    finally:
        stop.close()
    assert signal.getsignal(signal.SIGTERM) == before
