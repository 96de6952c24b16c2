"""tfrun: a declarative experiment runner for TensorFlow.

The repository's `runner/`, `tasks/` and `conf/` install as `tfrun.runner`, `tfrun.tasks` and `tfrun.conf`.
Importing this package stays light (no TensorFlow, no Hydra): the command line imports it on every call, so
the Python API below is loaded on first use (PEP 562), from tfrun.runner.api:

    import tfrun
    record = tfrun.run("train.epochs=3")          # one job, exactly as `tfrun train.epochs=3`: a Record
    record.status, record.metrics["holdout_accuracy"], record.saved_model
    sweep = tfrun.sweep("model.n_hidden=1,2")     # `tfrun -m ...`: .jobs, .best, .rows
    tfrun.load("runs/2026-12-06/10-00-00")        # a run dir or its record.json: a Record
    tfrun.records("runs")                         # every record below the folders
    tfrun.compose("model=cnn")                    # the validated config; nothing runs

A bad value raises `tfrun.ConfigError` (its `.problems` are what the command prints) before anything starts.
Ctrl-C (or Jupyter's "interrupt kernel") during `run`/`sweep` stops the run, leaves its record `interrupted`
and re-raises KeyboardInterrupt.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_API = {  # name -> the module that defines it
    "run": "tfrun.runner.api.calls",
    "sweep": "tfrun.runner.api.calls",
    "load": "tfrun.runner.api.records",
    "records": "tfrun.runner.api.records",
    "compose": "tfrun.runner.api.compose",
    "Record": "tfrun.runner.api.records",
    "Sweep": "tfrun.runner.api.sweeps",
    "CommandError": "tfrun.runner.api.command",
    "ConfigError": "tfrun.tasks.core.problems",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'tfrun' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # found once; later uses are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
