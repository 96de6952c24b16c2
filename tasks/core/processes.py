"""Child processes that die with the process that started them (Linux's PR_SET_PDEATHSIG), and the command that
forks a module from the zygote a run names (tfrun.runner.processes.zygote).

If tfrun itself is killed (SIGKILL, an OOM kill, a test harness's timeout), its children — the
plan-running child, cluster tasks, a TF Serving server — get SIGTERM instead of running on as
orphans. Used by the supervisor and by the TF Serving backends.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Callable, Optional

ZYGOTE_ENV = "TFRUN_ZYGOTE"  # the socket of the zygote this process's jobs fork from
NO_FORK_ENV = "TFRUN_NO_FORK"  # 1: no process forks from a zygote
ZYGOTE_CLIENT = "tfrun.runner.processes.zygote"
SERVE_MODULE = "tfrun.runner.serve_cli"  # `tfrun-serve`, the embedded TF Serving server (tasks/tfserving/server.py)
CLEANUP_MODULE = "tfrun.tasks.vertex.cleanup"  # removes a run's cloud resources (runner/records/cloud_cleanup.py)
CONVERTER_MODULE = "tfrun.tasks.web.converter"  # the tensorflowjs converter's command line (tasks/web/steps.py)


def forking_enabled() -> bool:
    return os.environ.get(NO_FORK_ENV, "") in ("", "0")


def zygote_socket() -> Optional[str]:
    """The zygote this process's children fork from, if any (and forking is on)."""
    path = os.environ.get(ZYGOTE_ENV)
    return path if path and forking_enabled() else None


def forked_module_command(module: str, args: list[str]) -> Optional[list[str]]:
    """`python -m MODULE ARGS` as a process forked from the run's zygote (None when no zygote is named): the
    zygote's client stays the process its starter sees (pid, signals, exit status) and becomes the fresh process
    when the zygote cannot fork it. MODULE must be one the zygote may run (its MODULES)."""
    path = zygote_socket()
    return None if path is None else [sys.executable, "-m", ZYGOTE_CLIENT, "module", path, module, *args]


def module_command(module: str, args: list[str]) -> list[str]:
    """`python -m MODULE ARGS`: forked from the run's zygote when one is named (forked_module_command), else fresh."""
    return forked_module_command(module, args) or [sys.executable, "-m", module, *args]


def die_with_parent() -> Optional[Callable[[], None]]:
    """A callable for Popen's preexec_fn (None where prctl is unavailable).

    libc is loaded here, in the parent: between fork and exec the child must not import anything.
    """
    try:
        import ctypes

        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
