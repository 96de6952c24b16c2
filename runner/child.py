"""The child process: runs the planned steps, reporting events to the runner.

Started by tfrun.runner.processes.supervisor as `python -m tfrun.runner.child EVENTS_FD`, with the
job ({run_dir, config, plan}) as JSON on stdin. TensorFlow is imported by
the steps, so hardware settings apply before it initialises.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from tfrun.runner import steps
from tfrun.tasks.context import Context
from tfrun.tasks.export import no_room


def _emitter(fd: int):
    stream = os.fdopen(fd, "w", buffering=1)

    def emit(event: dict[str, Any]) -> None:
        stream.write(json.dumps(event, default=str) + "\n")

    return emit


def _preload() -> None:
    """A warm child (tfrun.runner.processes.warm_child) imports the heavy modules while the runner composes the config.

    Imports only: nothing here creates TensorFlow's context, so device settings still apply later.
    """
    import tensorflow  # noqa: F401
    import tf_keras  # noqa: F401


def _no_room_message(step: str | None, reason: str, exc: BaseException) -> str:
    """A write the file system refused for lack of room (a full disk: a checkpoint, a log, an export) is the user's
    to fix, not tfrun's defect: one line saying so, with the writer's own words (which name the file)."""
    return (
        f"no room to write during step {step}: {reason.lower()} (free space on that file system, or point "
        f"hydra.run.dir / models_dir at another one): {str(exc).strip()}"
    )


class _StopRequest:
    """SIGINT, how the runner stops a step, noted as well as raised (KeyboardInterrupt, as Python's default handler
    does). Raised inside TensorFlow's C++ code, KeyboardInterrupt can come out as another exception (pybind11's
    "RuntimeError: ... REPLACED BY KeyboardInterrupt" while tracing a function): once the runner asked the child to
    stop, whatever ends the step is the interruption, not a failure with a traceback for the user."""

    def __init__(self) -> None:
        self.received = False

    def __call__(self, _signum: int, _frame: Any) -> None:
        self.received = True
        raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    # The runner stops a step with SIGINT; a child started from a shell's background job inherits SIGINT
    # ignored, and Python then raises no KeyboardInterrupt: set a handler that raises it.
    stop = _StopRequest()
    signal.signal(signal.SIGINT, stop)
    if argv[1] == "--warm":
        argv = argv[:1] + argv[2:]
        _preload()
    emit = _emitter(int(argv[1]))
    raw = sys.stdin.read()
    if not raw:  # a warm child nobody took: the runner went away
        return 0
    job = json.loads(raw)
    cfg = OmegaConf.create(job["config"])
    ctx = Context(
        run_dir=Path(job["run_dir"]),
        emit=emit,
        run_id=job.get("run_id", ""),
        overrides=list(job.get("overrides") or []),
        config_dirs=list(job.get("config_dirs") or []),
        sweep_job=bool(job.get("sweep_job", False)),
    )
    name = None
    try:
        for name in job["plan"]:
            emit({"event": "step_start", "step": name})
            started = time.perf_counter()
            result = steps.load(name)(cfg, ctx) or {}
            emit({"event": "step_end", "step": name, "seconds": time.perf_counter() - started, "result": result})
            if "pruned" in ctx.state:  # an Optuna trial its pruner stopped: nothing after training is needed
                break
    except KeyboardInterrupt:
        emit({"event": "interrupted", "step": name})
        return 130
    except BaseException as exc:  # reported to the record, then printed for the log
        if stop.received:
            emit({"event": "interrupted", "step": name})
            return 130
        report = getattr(exc, "report", None)  # a problem in the user's code: their frames, none of tfrun's
        room = None if getattr(exc, "user_facing", False) else no_room(exc)
        emit(
            {
                "event": "step_error",
                "step": name,
                "type": type(exc).__name__,
                "message": str(exc) if room is None else _no_room_message(name, room, exc),
                "traceback": report() if callable(report) else traceback.format_exc(),
            }
        )
        if callable(report):
            sys.stderr.write(report())
        elif not getattr(exc, "user_facing", False) and room is None:  # else the runner's one error line says it
            traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown: a thread stuck in TensorFlow (e.g. a TPU connect) cannot hang it
