"""Alias kept for configs that name `tfrun.runner.optuna_resume.ResumeOptunaStudy` (now tfrun.runner.sweeps.optuna_resume)."""
from tfrun.runner.sweeps.optuna_resume import ResumeOptunaStudy  # noqa: F401
