"""Child processes that die with the process that started them (Linux's PR_SET_PDEATHSIG).

If tfrun itself is killed (SIGKILL, an OOM kill, a test harness's timeout), its children — the
plan-running child, cluster tasks, a TF Serving server — get SIGTERM instead of running on as
orphans. Used by the supervisor and by the TF Serving backends.
"""

from __future__ import annotations

import signal
from typing import Callable, Optional


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
