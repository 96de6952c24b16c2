"""`tfrun-records mlflow DIR... [--uri URI] [--experiment NAME]`: send existing records to MLflow.

Sweeps go as a parent run with one child per job, other runs alone; a record already sent is not sent
twice. Damaged records are named on stderr (one line each) and not sent; the others are (exit 0). A tracking
server that does not answer is one line and exit 1; mlflow not installed is exit 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

from tfrun.runner.records import reading
from tfrun.runner.records import record as records
from tfrun.runner.records.cli_common import EXIT_FAILED, EXIT_OK, UsageError, existing_dirs


def _usable(path: Path) -> bool:
    try:
        reading.read(path)
    except reading.BadRecord:
        return False
    return True


def _send(client: Any, experiment: str, dirs: list[str]) -> tuple[int, int]:
    """(runs sent now, runs already there): sweeps first, then every run outside a sweep."""
    from tfrun.runner.tracking import mlflow_log

    sweeps = sorted({p.parent for d in dirs for p in Path(d).rglob("sweep.json")})
    sent = skipped = 0
    for sweep_dir in sweeps:
        parent, new = mlflow_log.log_sweep(client, experiment, sweep_dir)
        jobs = sum(_usable(p) for p in sweep_dir.glob(f"*/{records.RECORD_NAME}"))
        sent, skipped = sent + new, skipped + max(0, jobs - new)
        print(f"sweep {sweep_dir}: parent run {parent}, {new} job run(s) sent")
    outside = [p for p in records.find_all(dirs) if not any(p.parent.parent == s for s in sweeps)]
    for path, data in reading.read_all(outside):
        _, new = mlflow_log.log_record(client, experiment, path, data)
        sent, skipped = sent + new, skipped + (not new)
    return sent, skipped


def cmd_mlflow(args: argparse.Namespace) -> int:
    """Send existing records to MLflow: sweeps as parent + children, other runs alone; none sent twice."""
    from tfrun.tasks.core.schema.track import LOCAL_STORE

    args.uri = args.uri or LOCAL_STORE
    existing_dirs(args.dirs)
    from tfrun.runner.tracking import mlflow_log

    not_installed = "mlflow is not installed: pip install 'tfrun[mlflow]' (scripts/env.sh mlflow)"
    if importlib.util.find_spec("mlflow") is None:
        raise UsageError(not_installed)
    # asked before mlflow is imported (seconds of CPU): a server that does not answer is said at once
    why = mlflow_log.reachable(args.uri, 5.0)
    if why:
        print(f"tfrun-records: the MLflow tracking server at {args.uri} does not answer ({why})", file=sys.stderr)
        return EXIT_FAILED
    try:
        client = mlflow_log.client(args.uri)
    except ImportError:
        raise UsageError(not_installed) from None
    try:
        experiment = mlflow_log.experiment_id(client, args.experiment)
        sent, skipped = _send(client, experiment, args.dirs)
    except Exception as err:  # noqa: BLE001 - a server that fails half-way: one line, not MLflow's tracebacks
        print(f"tfrun-records: sending to MLflow at {args.uri} failed: {mlflow_log.describe(err)}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{sent} run(s) sent to {args.uri} (experiment {args.experiment!r}), {skipped} already there")
    return EXIT_OK


def add_parser(sub: Any) -> None:
    p = sub.add_parser("mlflow", help="send existing records to MLflow (sweeps as parent + children; idempotent)")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="folders holding runs and sweeps")
    p.add_argument("--uri", help="tracking URI (default: the local store here, as track=mlflow uses)")
    p.add_argument("--experiment", default="tfrun", help="MLflow experiment (default: tfrun)")
    p.set_defaults(func=cmd_mlflow)
