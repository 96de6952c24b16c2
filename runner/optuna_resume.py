"""Alias kept for configs that name `runner.optuna_resume.ResumeOptunaStudy` (now runner.sweeps.optuna_resume)."""
from runner.sweeps.optuna_resume import ResumeOptunaStudy  # noqa: F401
