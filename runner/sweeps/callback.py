"""Hydra callback: summarise every multirun when it ends (table, best line, sweep.csv/json/png)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from runner.sweeps.summary import collect, render, write

        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        summary = collect(sweep_dir)
        if not summary.rows:  # nothing ran (a dry run, or every job rejected before it started)
            return
        write(summary)
        print(render(summary), flush=True)
        print(f"[tfrun] sweep summary: {sweep_dir}/sweep.csv, sweep.json, sweep.png", flush=True)
