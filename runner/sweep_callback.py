"""Alias kept for configs that name `tfrun.runner.sweep_callback.SweepSummary` (now tfrun.runner.sweeps.callback)."""
from tfrun.runner.sweeps.callback import SweepSummary  # noqa: F401
