"""Start the training child while Hydra is still composing the config.

Importing TensorFlow takes seconds and does not depend on the config, as
long as the child's environment is right. So for a plain single run, tfrun
starts the child first thing, with the environment a CPU run gets; the
child imports TensorFlow and waits for its job on stdin. Once the config is
validated, the runner takes this warm child only if the config asks for
exactly that environment (hardware=cpu, one process); otherwise it stops it
and starts a fresh one. A warm child left unused is killed.
Set TFRUN_NO_PRESTART=1 to always start the child after validation (bench/bench_overhead.py
measures both).
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from typing import Optional

from tfrun.runner.processes.child_env import child_environment
from tfrun.tasks.core.schema import HardwareConfig, option_class


@dataclass
class WarmChild:
    proc: subprocess.Popen
    events_read: int
    env: dict[str, str]


_warm: Optional[WarmChild] = None


def is_single_run(argv: list[str]) -> bool:
    """One run, as Hydra's own parser reads argv (no -m, --cfg, --help, --info, completion)."""
    from tfrun.tasks.core.hydra_adapter import is_single_run as hydra_single_run

    return hydra_single_run(argv)


def takes_another_child(argv: list[str]) -> bool:
    """The command line already says the run will not take the warm child: a local cluster starts processes
    of its own, other hardware needs another environment. Starting one would only cost a TensorFlow import
    on a core the run needs (a preset that sets these is still found out after validation)."""
    for arg in argv:
        key, _, value = arg.lstrip("+~").partition("=")
        if (key == "cluster" and option_class("cluster", value).local_processes) or (
            key == "hardware" and value not in ("", "cpu")
        ):
            return True
    return False


def start(argv: list[str]) -> None:
    """Start a warm child for a single CPU run (does nothing for --help, --cfg, -m, a local cluster ...)."""
    global _warm
    if _warm is not None or not is_single_run(argv) or takes_another_child(argv) or os.environ.get("TFRUN_NO_PRESTART"):
        return
    from tfrun.runner.processes import zygote

    if zygote.socket_path():  # the job forks from a zygote that imported TensorFlow already
        return
    from tfrun.runner.processes.commands import child_command

    env = child_environment(HardwareConfig())
    events_read, events_write = os.pipe()
    proc = subprocess.Popen(
        [*child_command(), "--warm", str(events_write)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        pass_fds=(events_write,),
        start_new_session=True,
    )
    os.close(events_write)
    _warm = WarmChild(proc, events_read, env)


def take(env: dict[str, str]) -> Optional[WarmChild]:
    """The warm child if it was started with exactly `env` and is still alive; else None (and it is stopped)."""
    global _warm
    warm, _warm = _warm, None
    if warm is not None and warm.env == env and warm.proc.poll() is None:
        return warm
    _stop(warm)
    return None


def discard() -> None:
    """Stop a warm child nobody took (config error, --cfg printed, a cluster run)."""
    global _warm
    warm, _warm = _warm, None
    _stop(warm)


def _stop(warm: Optional[WarmChild]) -> None:
    if warm is None:
        return
    try:
        os.killpg(warm.proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    warm.proc.wait()
    for stream in (warm.proc.stdin, warm.proc.stdout):
        if stream is not None:
            stream.close()
    os.close(warm.events_read)
