"""`tfrun-records list [DIR ...] [--json]`: a table of the runs recorded below some folders, oldest first.

A damaged record is named on stderr (one line) and left out; the listing still exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from tfrun.runner.records import reading
from tfrun.runner.records import record as records
from tfrun.runner.records.cli_common import (
    DEFAULT_DIRS,
    EXIT_OK,
    existing_dirs,
    fmt,
    fmt_metric,
    fmt_seconds,
    fmt_started,
    is_stale,
    main_metric,
    overrides,
)


def _start_key(row: dict[str, Any]) -> tuple[int, float, str]:
    """Sort by start time; records without a readable one go first, then by path."""
    try:
        return (1, datetime.fromisoformat(str(row["started_at"])).timestamp(), row["record"])
    except ValueError:
        return (0, 0.0, row["record"])


def list_row(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """One line of `list` (also its --json form)."""
    metric, value = main_metric(data)
    return {
        "run_id": data.get("run_id"),
        "started_at": data.get("started_at"),
        "status": data.get("status"),
        "stale": is_stale(data),
        "overrides": overrides(data),
        "metric": metric,
        "metric_value": value,
        "seconds": data.get("seconds"),
        "run_dir": str(path.parent),
        "record": str(path),
    }


def collect_rows(directories: list[str]) -> list[dict[str, Any]]:
    """Rows for every usable record below the folders; damaged ones are named on stderr and skipped."""
    rows = [list_row(path, data) for path, data in reading.read_all(records.find_all(directories))]
    return sorted(rows, key=_start_key)


def print_table(rows: list[dict[str, Any]]) -> None:
    """The run table; a pipe or file gets full-width lines instead of the wrapping a terminal needs."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    metrics = {row["metric"] for row in rows}
    metric_header = metrics.pop() if len(metrics) == 1 else "main metric"
    table = Table(box=None, pad_edge=False, header_style="bold")
    for header, justify in (
        ("run id", "left"),
        ("started", "left"),
        ("status", "left"),
        ("overrides", "left"),
        (metric_header, "right"),
        ("seconds", "right"),
        ("run dir", "left"),
    ):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        metric = fmt_metric(row["metric_value"])
        if metric_header == "main metric":
            metric = f"{row['metric']} {metric}"
        status = f"{row['status']} (stale)" if row["stale"] else str(row["status"])
        cells = [
            fmt(row["run_id"]),
            fmt_started(row["started_at"]),
            status,
            " ".join(row["overrides"]),
            metric,
            fmt_seconds(row["seconds"]),
            row["run_dir"],
        ]
        table.add_row(*(Text(cell) for cell in cells))  # Text: no rich markup in overrides like a=[1,2]
    Console(width=None if sys.stdout.isatty() else 100_000).print(table)


def cmd_list(args: argparse.Namespace) -> int:
    directories = args.dirs or [d for d in DEFAULT_DIRS if Path(d).is_dir()]
    existing_dirs(args.dirs)
    rows = collect_rows(directories)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    elif not rows:
        where = ", ".join(directories) if directories else "./runs or ./multiruns (neither exists here)"
        print(f"no records found in {where}")
    else:
        print_table(rows)
    return EXIT_OK


def add_parser(sub: Any) -> None:
    p = sub.add_parser("list", help="table of runs found below DIRs, oldest first")
    p.add_argument("dirs", nargs="*", metavar="DIR", help="folders to search (default: ./runs and ./multiruns)")
    p.add_argument("--json", action="store_true", help="machine-readable rows")
    p.set_defaults(func=cmd_list)
