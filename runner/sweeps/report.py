"""A sweep's summary on the console: what a multirun prints when it ends, or when Ctrl-C ends it."""

from __future__ import annotations

from pathlib import Path

from tfrun.runner.sweeps import hparams
from tfrun.runner.sweeps.before import Before
from tfrun.runner.sweeps.summary import collect, render, sessions, write


def print_summary(sweep_dir: Path, before: Before) -> bool:
    """Write sweep.csv/json/png and the HParams events, print the table, the best line and how many jobs ran now;
    False when there is nothing to summarise (a dry run, or sweep=vertex's job failed before any trial)."""
    summary = collect(sweep_dir)
    if not summary.rows:
        return False
    write(summary)
    hparams.write(summary)
    print(render(summary), flush=True)
    now, before = sessions(sweep_dir, before)
    print(f"[tfrun] {now} job(s) ran now, {before} came from before (earlier runs into this sweep dir)", flush=True)
    print(
        f"[tfrun] sweep summary: {sweep_dir}/sweep.csv, sweep.json, sweep.png; HParams dashboard: "
        f"tensorboard --logdir {sweep_dir}",
        flush=True,
    )
    return True
