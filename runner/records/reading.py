"""The one validating loader of `tfrun-records`: a record is read, and its fields type-checked, here only.

A record can be damaged: cut off by a full disk, edited by hand, copied half-way, or written by another
tool. Every command (list, show, diff, rerun, report, sweep, mlflow, resume, cleanup) reads records through
`read`, so a damaged one is always the same single line naming the file and what is wrong, and no
command meets a field of the wrong type deep inside its formatting. Fields may be absent (older or
partial records); those present must have the type tfrun writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator

from tfrun.runner.records import legacy
from tfrun.runner.records import record as records

NUMBER = (int, float)
TEXT = (str,)
OBJECT = (dict,)
LIST = (list,)
NONE = (type(None),)

# top-level field -> the JSON types it may hold (null only where tfrun writes null)
FIELDS: dict[str, tuple[type, ...]] = {
    "schema_version": (int,),
    "run_id": TEXT,
    "status": TEXT,
    "started_at": TEXT + NONE,
    "ended_at": TEXT + NONE,
    "seconds": NUMBER + NONE,
    "job": TEXT + NONE,
    "run_dir": TEXT + NONE,
    "command": OBJECT,
    "config": OBJECT + NONE,
    "config_sha256": TEXT + NONE,
    "code": OBJECT + NONE,
    "environment": OBJECT + NONE,
    "reproducibility": OBJECT + NONE,
    "pids": OBJECT + NONE,
    "plan": LIST + NONE,
    "steps": LIST,
    "metrics": OBJECT,
    "artifacts": LIST,
    "weights_sha256": TEXT + NONE,
    "deployments": LIST,
    "error": OBJECT + NONE,
    "previous_attempts": LIST + NONE,
    "cloud_resources": LIST,
    "source": OBJECT + NONE,
}
# (section, field) -> types, checked when the section is an object
NESTED: dict[tuple[str, str], tuple[type, ...]] = {
    ("command", "argv"): LIST,
    ("command", "overrides"): LIST,
    ("config", "optimized_metric"): TEXT + NONE,
    ("metrics", "final"): OBJECT,
    ("metrics", "history"): OBJECT,
    ("pids", "runner"): (int,) + NONE,
    ("environment", "packages"): OBJECT + NONE,
    ("code", "user"): OBJECT + NONE,
}
# list field -> (types of each item's fields); each item must be an object
ITEMS: dict[str, dict[str, tuple[type, ...]]] = {
    "steps": {"name": TEXT, "status": TEXT, "seconds": NUMBER + NONE, "result": OBJECT + NONE},
    "artifacts": {"kind": TEXT + NONE, "path": TEXT + NONE},
    "deployments": {"kind": TEXT + NONE, "status": TEXT + NONE, "parity": OBJECT + NONE},
    "cloud_resources": {"kind": TEXT, "name": TEXT, "status": TEXT},
}
REQUIRED_ITEM_FIELDS = {"cloud_resources": ("kind", "name", "status")}  # clean-up cannot work without them
JSON_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number"}


class BadRecord(ValueError):
    """A record file that cannot be used: unreadable, not JSON, not an object, or a field of the wrong type."""

    def __init__(self, path: Path | str, why: str):
        super().__init__(f"{path}: {why}")
        self.path, self.why = Path(path), why


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return JSON_NAMES.get(type(value), type(value).__name__)


def _allowed(types: tuple[type, ...]) -> str:
    names = dict.fromkeys("null" if t is type(None) else JSON_NAMES.get(t, t.__name__) for t in types)
    if "an integer" in names and "a number" in names:
        del names["an integer"]
    return " or ".join(names)


def _wrong(key: str, value: Any, types: tuple[type, ...]) -> str | None:
    """Why `value` does not fit `types` (a bool is not a number here), or None when it does."""
    fits = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    return None if fits else f"{key} is {_kind(value)}, expected {_allowed(types)}"


def problem(data: Any) -> str | None:
    """The first thing wrong with a parsed record (None for a usable one): what a person needs to fix it."""
    if not isinstance(data, dict):
        return f"not a tfrun record (the JSON is {_kind(data)}, not an object)"
    for key, types in FIELDS.items():
        if key in data and (why := _wrong(key, data[key], types)):
            return why
    for (section, key), types in NESTED.items():
        node = data.get(section)
        if isinstance(node, dict) and key in node and (why := _wrong(f"{section}.{key}", node[key], types)):
            return why
    for key in ("argv", "overrides"):  # replayed on a command line: text only
        for i, item in enumerate((data.get("command") or {}).get(key) or []):
            if not isinstance(item, str):
                return f"command.{key}[{i}] is {_kind(item)}, expected a string"
    for key, fields in ITEMS.items():
        for i, item in enumerate(data.get(key) or []):
            if not isinstance(item, dict):
                return f"{key}[{i}] is {_kind(item)}, expected an object"
            for field in REQUIRED_ITEM_FIELDS.get(key, ()):
                if field not in item:
                    return f"{key}[{i}] has no {field}"
            for field, types in fields.items():
                if field in item and (why := _wrong(f"{key}[{i}].{field}", item[field], types)):
                    return why
    return _metric_problem(data)


def _metric_problem(data: dict[str, Any]) -> str | None:
    """The optimized metric is compared and sorted on: a number or null; each history a list."""
    metrics = data.get("metrics") or {}
    for name, values in (metrics.get("history") or {}).items():
        if why := _wrong(f"metrics.history.{name}", values, LIST):
            return why
    name = (data.get("config") or {}).get("optimized_metric") or "holdout_accuracy"
    final = metrics.get("final") or {}
    if name in final:
        return _wrong(f"metrics.final.{name}", final[name], NUMBER + NONE)
    return None


def read(path: Path | str) -> dict[str, Any]:
    """The record in the file at `path`, type-checked, as the current schema writes it (an older one upgraded by
    tfrun.runner.records.legacy); BadRecord naming the file and the first problem."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        if not err.doc.strip():
            raise BadRecord(path, "an empty file, not a record") from None
        if err.pos >= len(err.doc.rstrip()) or err.msg.startswith("Unterminated string"):  # the file ended early
            raise BadRecord(
                path, f"truncated JSON (the file ends inside the record, after line {err.lineno})"
            ) from None
        why = err.msg.removesuffix(" at")
        raise BadRecord(path, f"not valid JSON ({why}, line {err.lineno} column {err.colno})") from None
    except UnicodeDecodeError:
        raise BadRecord(path, "not valid JSON (not UTF-8 text)") from None
    except OSError as err:
        raise BadRecord(path, f"cannot be read ({err.strerror or err})") from None
    why = problem(data)
    if why:
        raise BadRecord(path, why)
    return legacy.upgrade(data)


def read_run(run: Path | str) -> tuple[Path, dict[str, Any]]:
    """The record file and data of a run dir or record file; FileNotFoundError when there is none."""
    path = records.locate(run)
    return path, read(path)


def say_skipped(err: BadRecord) -> None:
    """The one line a command prints for a damaged record it leaves out."""
    print(f"tfrun-records: skipping {err}", file=sys.stderr, flush=True)


def read_all(paths: Iterable[Path]) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The usable records among `paths`; each damaged one is named on stderr (one line) and left out."""
    for path in paths:
        try:
            yield path, read(path)
        except BadRecord as err:
            say_skipped(err)
