"""`tfrun-records sweep SWEEP_DIR`: a sweep's table by metric, the best job's command, sweep.csv/json/png.

A damaged job record is named on stderr (one line) and left out of the summary; a sweep dir with no
usable job record at all is exit 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tfrun.runner.records.cli_common import EXIT_OK, UsageError


def sweep_dir_of(text: str) -> Path:
    """The sweep dir named on the command line, or a UsageError."""
    path = Path(text)
    if not path.is_dir():
        raise UsageError(f"{path} is not a sweep dir (a folder with one job dir per job)")
    return path


def cmd_sweep(args: argparse.Namespace) -> int:
    from tfrun.runner.sweeps.summary import render, summarise

    sweep_dir = sweep_dir_of(args.sweep_dir)
    summary = summarise(sweep_dir)
    if not summary.rows:
        raise UsageError(f"{sweep_dir} holds no usable job records (*/record.json)")
    from tfrun.runner.sweeps import hparams

    hparams.write(summary)
    print(render(summary))
    print(
        f"[tfrun-records] wrote {sweep_dir / 'sweep.csv'}, sweep.json, sweep.png and the HParams dashboard's "
        f"events (tensorboard --logdir {sweep_dir})"
    )
    return EXIT_OK


def add_parser(sub: Any) -> None:
    p = sub.add_parser("sweep", help="summarise a sweep dir: table by metric, best job's command, sweep.csv/json/png")
    p.add_argument("sweep_dir", metavar="SWEEP_DIR")
    p.set_defaults(func=cmd_sweep)
