"""What the `tfrun-records` commands share: exit codes, reading the record(s) asked for, and formatting.

Records are read only through tfrun.runner.records.reading (the validating loader), so a damaged
record is the same one line in every command.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

from tfrun.runner.records import reading
from tfrun.runner.records import record as records
from tfrun.tasks.core.record_io import PRUNED

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_DIRS = ("runs", "multiruns")
DEFAULT_METRIC = "holdout_accuracy"
MISSING = object()  # a key present in one record and not in the other


class UsageError(Exception):
    """A problem with what was asked (no record at a path, a damaged record, a run that cannot be rerun): exit 2."""


def load_run(run: str | Path) -> tuple[Path, dict[str, Any]]:
    """The record file and data of RUN (a run dir or a record.json), or a UsageError naming the path."""
    try:
        return reading.read_run(run)
    except FileNotFoundError:
        raise UsageError(f"no {records.RECORD_NAME} at {run}") from None
    except reading.BadRecord as err:
        raise UsageError(str(err)) from None


def existing_dirs(directories: list[str]) -> None:
    """A UsageError naming the first folder that does not exist."""
    for directory in directories:
        if not Path(directory).is_dir():
            raise UsageError(f"no such directory: {directory}")


def section(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """A nested dict of the record, empty when absent or null (older or partial records)."""
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


def runner_alive(data: dict[str, Any]) -> bool | None:
    """Whether the runner process that owns the record still exists.

    None when this machine cannot tell: no pid recorded, or the run is on another host.
    """
    pid = section(data, "pids").get("runner")
    host = section(data, "environment").get("host")
    if not isinstance(pid, int) or pid <= 0 or (host and host != socket.gethostname()):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return None
    return True


def is_stale(data: dict[str, Any]) -> bool:
    """A `running` record whose runner is gone: the run died without finishing its record."""
    return data.get("status") == "running" and runner_alive(data) is False


def display_status(data: dict[str, Any]) -> str:
    """The status as `show` prints it: a stale run and a pruned one say what that means."""
    status = str(data.get("status", "?"))
    if status == PRUNED:
        return f"{status} (stopped early by the sweep's pruner: not a failure)"
    return f"{status} (stale)" if is_stale(data) else status


def pruned_text(pruned: Any) -> str | None:
    """Where and why a pruned run stopped, from its record's `pruned` section (None without one)."""
    if not isinstance(pruned, dict):
        return None
    value = pruned.get("value")
    shown = f" ({pruned.get('monitor', 'value')} {value:.4f})" if isinstance(value, (int, float)) else ""
    return f"at epoch {pruned.get('epoch', '?')} of {pruned.get('of_epochs', '?')} by the {pruned.get('pruner', '?')} pruner{shown}"


def main_metric(data: dict[str, Any]) -> tuple[str, Any]:
    """The run's optimized metric (config.optimized_metric) and its final value (None if not reached)."""
    name = section(data, "config").get("optimized_metric") or DEFAULT_METRIC
    return str(name), section(data, "metrics", "final").get(name)


def overrides(data: dict[str, Any]) -> list[str]:
    value = section(data, "command").get("overrides")
    return [str(v) for v in value] if isinstance(value, list) else []


def fmt(value: Any) -> str:
    """One value as a person (and a diff line) should see it: exact floats, JSON for structures."""
    if value is MISSING:
        return "<absent>"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value) if not isinstance(value, float) else repr(value)


def short_hash(value: Any, n: int = 12) -> str:
    return f"{value[:n]}.." if isinstance(value, str) and len(value) > n else fmt(value)


def fmt_metric(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("-" if value is None else fmt(value))


def fmt_seconds(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def fmt_started(value: Any) -> str:
    """Start time in local time to the second: the list is read by a person at this machine."""
    try:
        return datetime.fromisoformat(str(value)).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(value or "-")
