"""Record I/O helpers shared by the runner and the steps: redaction, path hiding, hashing, atomic JSON.

A step that writes a file meant for the record (an artifact path, a server log line, a trial's record)
uses these, so every record hides the same secrets and machine paths the same way.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tfrun.tasks.core.files import write_atomic
from tfrun.tasks.core.paths import SOURCE_ROOT

SCHEMA_VERSION = 2  # 2: tfrun's own code named tfrun.tasks.* / tfrun.runner.* (1: tasks.*, runner.*)
RECORD_NAME = "record.json"
STATUSES = ("running", "succeeded", "failed", "interrupted", "pruned")
# pruned: stopped early by the sweep's pruner (its trial was not promising): not a failure
PRUNED = "pruned"

_SECRET_KEY = re.compile(r"(token|passw|secret|credential|api[_-]?key|private[_-]?key|auth)", re.I)
REDACTED = "***redacted***"
PUBLIC_VALUES = ("adc", "anonymous")  # values of secret-looking keys that name a mode, not a secret


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def redact(value: Any) -> Any:
    """Copy of a config/override structure with secret-looking values hidden."""
    if isinstance(value, dict):
        return {
            k: REDACTED if _SECRET_KEY.search(str(k)) and v not in (None, "", *PUBLIC_VALUES) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str) and "=" in value:  # an override such as cloud.api_key=abc
        key, _, rest = value.partition("=")
        if _SECRET_KEY.search(key) and rest not in PUBLIC_VALUES:
            return f"{key}={REDACTED}"
    return value


def sanitize(text: str) -> str:
    """Hide machine paths (environment, home, working dir) in text kept in records."""
    import sys

    replacements = [
        (sys.prefix, "<env>"),
        (sys.base_prefix, "<python>"),
        (os.getcwd(), "."),
        (os.path.expanduser("~"), "~"),
        (str(SOURCE_ROOT), "<tfrun>"),
    ]
    for prefix, name in sorted(replacements, key=lambda pair: -len(pair[0])):
        if prefix and prefix != "/":
            text = text.replace(prefix, name)
    return text


def relative(path: Path | str) -> str:
    """A path as recorded: relative to the working dir, never an absolute machine path."""
    return os.path.relpath(path)


def config_hash(config: dict[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def resume_key(resolved: dict[str, Any]) -> str:
    """What `train.resume` matches runs by: the config hash without train.resume itself."""
    config = copy.deepcopy(resolved)
    config.get("train", {}).pop("resume", None)
    return config_hash(config)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, (json.dumps(data, indent=2, default=str) + "\n").encode())


def load(path: Path | str) -> dict[str, Any]:
    """Read a record from its file or its run dir."""
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_NAME
    with open(path) as f:
        return json.load(f)


def succeeded_run(given: str, missing: str) -> tuple[Path, dict[str, Any]]:
    """A succeeded run's record, named by its run dir or its file: (its path, its data); ValueError saying why it is
    none (`missing`: what to say when neither exists). What job=promote reads of the deploy it promotes."""
    path = Path(given)
    record = path / RECORD_NAME if path.is_dir() else path
    if not record.is_file():
        raise ValueError(missing)
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{record} is not a readable record ({err})") from None
    if data.get("status") != "succeeded":
        raise ValueError(f"{record} is a {data.get('status')} run: only a succeeded run's version is promoted")
    return record, data
