"""`tfrun-records sweep SWEEP_DIR [--register]`: a sweep's table by metric, the best job's command,
sweep.csv/json/png; with --register, the best job's export becomes a version in MLflow's model registry (the
sweep's track=mlflow store, or --uri) without training it again.

A damaged job record is named on stderr (one line) and left out of the summary; a sweep dir with no
usable job record at all is exit 2, and so is --register without an MLflow store to register in.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tfrun.runner.records.cli_common import EXIT_FAILED, EXIT_OK, UsageError


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
    return _register(sweep_dir, args) if args.register else EXIT_OK


def _store(sweep_dir: Path, args: argparse.Namespace) -> tuple[str, str, float]:
    """(uri, experiment, timeout) to register in: --uri, else the track=mlflow settings the sweep ran with."""
    import json

    from tfrun.tasks.core.schema import option_class
    from tfrun.tasks.core.schema.track import LOCAL_STORE
    from tfrun.tasks.core.sources import SourceError, best_job

    try:
        track = (json.loads(best_job(sweep_dir).read_text()).get("config") or {}).get("track") or {}
    except (SourceError, OSError, ValueError) as err:
        raise UsageError(f"--register: {err}") from None
    mlflow = option_class("track", str(track.get("name"))).logs_to_mlflow
    if args.uri is None and not mlflow:
        raise UsageError(
            f"--register: {sweep_dir} ran with track={track.get('name', 'none')}; give --uri URI (an MLflow store) "
            "to register its best job in"
        )
    uri = args.uri or (track.get("uri") if mlflow else None) or LOCAL_STORE
    return uri, str(track.get("experiment") or "tfrun"), float(track.get("timeout_s") or 5.0)


def _register(sweep_dir: Path, args: argparse.Namespace) -> int:
    """The best job's export registered (tfrun.runner.tracking.register_best); one line if that failed."""
    uri, experiment, timeout_s = _store(sweep_dir, args)
    try:
        from tfrun.runner.tracking import mlflow_log

        client = mlflow_log.client(uri, timeout_s)
    except ImportError:
        raise UsageError("--register: mlflow is not installed: pip install 'tfrun[mlflow]'") from None
    why = mlflow_log.reachable(uri, timeout_s)
    if why:
        print(f"tfrun-records: the MLflow server at {uri} does not answer ({why})", file=sys.stderr)
        return EXIT_FAILED
    from tfrun.runner import tracking

    try:
        section = tracking.register_best(client, mlflow_log.experiment_id(client, experiment), uri, sweep_dir)
    except Exception as err:  # noqa: BLE001 - one line, not MLflow's tracebacks
        print(f"tfrun-records: registering at {uri} failed: {mlflow_log.describe(err)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK if section else EXIT_FAILED


def add_parser(sub: Any) -> None:
    p = sub.add_parser("sweep", help="summarise a sweep dir: table by metric, best job's command, sweep.csv/json/png")
    p.add_argument("sweep_dir", metavar="SWEEP_DIR")
    p.add_argument(
        "--register",
        action="store_true",
        help="register the best job's export in MLflow's model registry (the sweep's track=mlflow store)",
    )
    p.add_argument("--uri", help="with --register: the MLflow store (default: the one the sweep's jobs tracked to)")
    p.set_defaults(func=cmd_sweep)
