"""Stopping a service the tests started: by its PID, politely first; whether a PID is gone."""

from __future__ import annotations

import os
import signal
import subprocess


def stop(process: subprocess.Popen, timeout: float, *, group: bool = False) -> None:
    """SIGTERM the process; SIGKILL it (its whole process group with group=True) if it does not exit in time."""
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout)


def gone(pid: int) -> bool:
    """Whether no process has this PID any more."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
