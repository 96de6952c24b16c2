"""Ctrl-C on a sweep: every started job's record ends `interrupted`, and the summary of what finished is printed.

A launcher that runs jobs in tfrun's own process (basic, Optuna's) needs nothing more: the job's supervisor
records the interruption and its KeyboardInterrupt ends the sweep. joblib runs jobs in loky worker processes and,
on a KeyboardInterrupt in tfrun's process, kills its workers at once: a worker still stopping its job never
finished the record (it stayed `running`). So while a joblib sweep runs, tfrun's own process answers SIGINT and
SIGTERM itself (`_on_signal`):

1. it leaves a stop mark in the sweep dir, so a worker starts no queued job (`stopping`, read by run_job);
2. it passes SIGINT on to its workers (a terminal's Ctrl-C reached them already; `kill -INT <tfrun>` did not);
3. it waits, bounded by run.stop_grace_s plus a margin for cloud clean-up, until no job of this sweep is
   running; a second Ctrl-C stops the wait;
4. it raises KeyboardInterrupt, as Python would have at once.

`interrupted()` (called by the command when the KeyboardInterrupt reaches it) finishes as `interrupted` any record
of this sweep still `running` whose runner is gone, removes the folder of a queued job that a worker had taken
but never started (joblib killed the worker while Hydra was making the folder, before the stop mark was read),
and prints the summary.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from tfrun.runner.records.record import RECORD_NAME, Record
from tfrun.runner.sweeps.before import Before
from tfrun.runner.unstarted import remove_if_unstarted
from tfrun.tasks.core.record_io import load

STOP_MARK = ".tfrun-stopping"  # holds the pid of the tfrun process whose workers must start no more jobs
CLEANUP_MARGIN_S = 60.0  # beyond run.stop_grace_s: a job's own clean-up (cloud resources) after its child stopped
WORKER_COMMAND = "joblib.externals.loky.backend.popen_loky_posix"  # a loky worker's command line


@dataclass
class _Sweep:
    sweep_dir: Path
    before: Before  # what the sweep dir held when this invocation's multirun began (an earlier session's jobs)
    wait_s: float
    handlers: dict[int, Any] = field(default_factory=dict)  # the ones replaced while a joblib sweep runs


_active: _Sweep | None = None


def begin(config: DictConfig, before: Before) -> None:
    """The multirun starts (in tfrun's own process): remember it; with joblib, answer Ctrl-C as described above."""
    global _active
    sweep_dir = Path(str(config.hydra.sweep.dir))
    (sweep_dir / STOP_MARK).unlink(missing_ok=True)  # left by an earlier sweep that was killed
    grace = float(config.get("run", {}).get("stop_grace_s", 10.0))
    _active = _Sweep(sweep_dir, before, grace + CLEANUP_MARGIN_S)
    if _in_workers(config):
        _active.handlers = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}


def end() -> _Sweep | None:
    """The multirun is over (finished or interrupted): the signal handlers and the stop mark go."""
    global _active
    sweep, _active = _active, None
    if sweep is not None:
        for signum, handler in sweep.handlers.items():
            signal.signal(signum, handler)
        (sweep.sweep_dir / STOP_MARK).unlink(missing_ok=True)
    return sweep


def stopping(sweep_dir: Path) -> bool:
    """In a job of a sweep: the tfrun process that launched this worker is stopping the sweep (start nothing)."""
    try:
        return int((sweep_dir / STOP_MARK).read_text()) == os.getppid()
    except (OSError, ValueError):
        return False


def interrupted() -> None:
    """The KeyboardInterrupt reached the command: finish the records left `running`, print the summary."""
    sweep = end()
    if sweep is None or not sweep.sweep_dir.is_dir():
        return
    for path in _records(sweep):
        data = load(path)
        if data.get("status") == "running" and not _alive(data):
            Record(path.parent, data).finish(
                "interrupted",
                {
                    "type": "Interrupted",
                    "message": "the sweep was interrupted and this job's runner stopped before finishing its "
                    "record; its processes were stopped",
                },
            )
    for job_dir in _job_dirs(sweep):
        remove_if_unstarted(job_dir)
    from tfrun.runner.sweeps.report import print_summary

    try:
        print_summary(sweep.sweep_dir, sweep.before)
    except Exception as exc:  # the records are right; Ctrl-C must still end with 130 and no traceback
        print(f"[tfrun] could not summarise {sweep.sweep_dir}: {type(exc).__name__}: {exc}", flush=True)


def _in_workers(config: DictConfig) -> bool:
    """Whether the launcher runs jobs in worker processes it kills on a KeyboardInterrupt (joblib)."""
    target = str((config.hydra.get("launcher") or {}).get("_target_", ""))
    return target.endswith("JoblibLauncher")


def _on_signal(signum: int, _frame: Any) -> None:
    sweep = _active
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.default_int_handler)  # a second Ctrl-C: stop waiting
    if sweep is None:
        raise KeyboardInterrupt
    sweep.sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep.sweep_dir / STOP_MARK).write_text(str(os.getpid()))
    for pid in _workers():
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + sweep.wait_s
    if _running(sweep):
        print(
            f"[tfrun] {signal.Signals(signum).name}: waiting up to {sweep.wait_s:.0f} s for the running jobs to stop "
            "and finish their records (Ctrl-C again stops at once)",
            file=sys.stderr,
            flush=True,
        )
    while time.monotonic() < deadline and _running(sweep):
        time.sleep(0.2)
    raise KeyboardInterrupt


def _workers() -> list[int]:
    """This process's loky workers (children whose command line is loky's worker), from /proc."""
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent = stat[stat.rindex(")") + 2 :].split()[1]
            if parent == me and WORKER_COMMAND in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _records(sweep: _Sweep) -> list[Path]:
    """This invocation's job records (written since it started)."""
    return [path for path in sweep.sweep_dir.glob(f"*/{RECORD_NAME}") if sweep.before.is_new(sweep.sweep_dir, path)]


def _job_dirs(sweep: _Sweep) -> list[Path]:
    """This invocation's job folders (made or changed since it started)."""
    return [path for path in sweep.sweep_dir.iterdir() if path.is_dir() and sweep.before.is_new(sweep.sweep_dir, path)]


def _running(sweep: _Sweep) -> bool:
    """Some job of this sweep still runs: its record says `running` and its runner (a worker) is alive."""
    for path in _records(sweep):
        try:
            data = load(path)
        except (OSError, ValueError):
            continue
        if data.get("status") == "running" and _alive(data):
            return True
    return False


def _alive(data: dict[str, Any]) -> bool:
    """The record's runner is a live process other than this one."""
    pid = (data.get("pids") or {}).get("runner")
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
