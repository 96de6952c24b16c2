"""Alias kept for configs that name `runner.sweep_callback.SweepSummary` (now runner.sweeps.callback)."""
from runner.sweeps.callback import SweepSummary  # noqa: F401
