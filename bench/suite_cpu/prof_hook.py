"""Loaded by every Python process of a profiled suite run (a .pth file in the venv; bench/suite_cpu/run.sh): at its
exit, one JSON line with its own CPU time, argv, whether it was forked, and the test that started it (pytest puts
PYTEST_CURRENT_TEST in the environment its subprocesses inherit). Diagnostic only: never installed by the set-up."""

import atexit
import json
import os
import signal
import sys
import time

_LOG = os.environ.get("TFRUN_CPU_LOG", "")
_state = {"pid": os.getpid(), "t0": time.time(), "forked": False, "done": False}


def _write(how: str) -> None:
    if not _LOG or (_state["done"] and _state["pid"] == os.getpid()):
        return
    _state["done"] = True
    try:
        t = os.times()
        line = json.dumps(
            {
                "pid": os.getpid(),
                "argv": [str(a)[-80:] for a in sys.argv[:6]],
                "cpu": round(t.user + t.system, 3),  # this process's own; a forked child's starts at zero
                "wall": round(time.time() - _state["t0"], 3),
                "forked": _state["forked"],
                "how": how,
                "test": os.environ.get("PYTEST_CURRENT_TEST", ""),
                "worker": os.environ.get("PYTEST_XDIST_WORKER", ""),
            }
        )
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, (line + "\n").encode())
        os.close(fd)
    except Exception:
        pass


def _after_fork() -> None:
    _state.update(pid=os.getpid(), t0=time.time(), forked=True, done=False)


def _exit(code: int) -> None:
    _write("_exit")
    _real_exit(code)


def _on_term(signum: int, _frame: object) -> None:
    _write("sigterm")
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


if _LOG:
    os.register_at_fork(after_in_child=_after_fork)
    atexit.register(_write, "atexit")
    _real_exit = os._exit
    os._exit = _exit  # a forked worker ends with os._exit, which skips atexit
    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_term)
    except (ValueError, OSError):
        pass
