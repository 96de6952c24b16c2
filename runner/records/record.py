"""The run record: one JSON file per run, rewritten atomically as the run goes.

Readers (tfrun-records, a sweeper, a person with `cat`) never see a torn
file: every save writes a temp file in the same folder and renames it.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tfrun.runner.records import legacy
from tfrun.tasks.core.record_io import (  # noqa: F401 (the record's helpers, re-exported for its readers)
    RECORD_NAME,
    REDACTED,
    SCHEMA_VERSION,
    STATUSES,
    config_hash,
    now_iso,
    redact,
    relative,
    sanitize,
    write_json_atomic,
)
from tfrun.tasks.core.record_io import load as load_as_written


class Record:
    """The record of one run, owned by the runner process (its only writer)."""

    def __init__(self, run_dir: Path, data: dict[str, Any]):
        self.run_dir = run_dir
        self.path = run_dir / RECORD_NAME
        self.data = data

    @classmethod
    def start(cls, directory: Path, **fields: Any) -> "Record":
        data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "run_id": fields.pop("run_id"),
            "status": "running",
            "started_at": now_iso(),
            "ended_at": None,
            "seconds": None,
            **fields,
            "steps": [],
            "metrics": {"history": {}, "final": {}},
            "artifacts": [],
            "weights_sha256": None,
            "deployments": [],
            "error": None,
            "previous_attempts": cls._keep_previous(directory),
        }
        record = cls(directory, data)
        record.save()
        return record

    @staticmethod
    def _keep_previous(directory: Path) -> list[str]:
        """A re-run in the same run dir (e.g. to resume) moves the earlier record to attempts/, never over it."""
        current = directory / RECORD_NAME
        attempts = directory / "attempts"
        if current.exists():
            try:
                previous_id = load(current).get("run_id") or "unknown"
            except (OSError, ValueError):
                previous_id = "unreadable"
            attempts.mkdir(exist_ok=True)
            os.replace(current, attempts / f"{previous_id}.json")
        return sorted(p.stem for p in attempts.glob("*.json")) if attempts.is_dir() else []

    def save(self) -> None:
        write_json_atomic(self.path, self.data)

    # --- updates, each followed by a save by the caller's event handler ---
    def step_started(self, name: str) -> None:
        self.data["steps"].append(
            {"name": name, "status": "running", "started_at": now_iso(), "seconds": None, "result": None}
        )

    def step_finished(self, name: str, seconds: float, result: dict[str, Any]) -> None:
        step = self._step(name)
        step.update(status="succeeded", seconds=round(seconds, 3), result=result)
        self.data["metrics"]["final"].update(result.pop("metrics", {}) if isinstance(result, dict) else {})
        self.data["artifacts"].extend(result.pop("artifacts", []))
        for move in result.pop("moved", []):
            self.artifact_moved(move["path"], move["moved_to"])
        if "weights_sha256" in result:
            self.data["weights_sha256"] = result["weights_sha256"]
        if isinstance(result.get("source"), dict):  # job=deploy: the model it deployed, and its run
            self.data["source"] = result["source"]
        if isinstance(result.get("promotion"), dict):  # job=promote: which alias moved, from which version to which
            self.data["promotion"] = result["promotion"]
        self.data["deployments"].extend(result.pop("deployments", []))

    def artifact_moved(self, path: str, moved_to: str) -> None:
        """A step moved a folder an earlier artifact lives in (a rolled-back version): each such artifact gets
        `moved_to`, where it is now, so the record never names a path that holds another model or nothing."""
        for artifact in self.data["artifacts"]:
            where = artifact.get("path")
            if isinstance(where, str) and (where == path or where.startswith(path.rstrip("/") + "/")):
                artifact["moved_to"] = moved_to + where[len(path) :]

    def cloud_resource(self, resource: dict[str, Any]) -> None:
        """Add or update one cloud resource (by kind and name): what a run created must never be lost."""
        resources = self.data.setdefault("cloud_resources", [])
        for i, known in enumerate(resources):
            if known["kind"] == resource["kind"] and known["name"] == resource["name"]:
                resources[i] = resource
                return
        resources.append(resource)

    def epoch(self, logs: dict[str, float]) -> None:
        history = self.data["metrics"]["history"]
        for key, value in logs.items():
            history.setdefault(key, []).append(value)

    def finish(self, status: str, error: dict[str, Any] | None = None) -> None:
        assert status in STATUSES
        for step in self.data["steps"]:
            if step["status"] == "running":
                step["status"] = "failed" if status == "failed" else status
        self.data["status"] = status
        self.data["error"] = error
        self.data["ended_at"] = now_iso()
        started = datetime.fromisoformat(self.data["started_at"])
        self.data["seconds"] = round((datetime.now(timezone.utc) - started).total_seconds(), 3)
        self.save()

    def current_step(self) -> str | None:
        running = [s["name"] for s in self.data["steps"] if s["status"] == "running"]
        return running[-1] if running else None

    def _step(self, name: str) -> dict[str, Any]:
        for step in reversed(self.data["steps"]):
            if step["name"] == name:
                return step
        raise KeyError(name)


# --- reading records back (tfrun-records, sweep summaries, tests) ---------------------------
def load(path: Path | str) -> dict[str, Any]:
    """A record from its file or run dir, as the current schema writes it (older ones upgraded: legacy.upgrade)."""
    return legacy.upgrade(load_as_written(path))


def locate(path: Path | str) -> Path:
    """The record file of a run given its run dir or the file itself.

    Raises FileNotFoundError naming the path, so a caller can report exactly what was missing.
    """
    path = Path(path)
    candidate = path / RECORD_NAME if path.is_dir() else path
    if not candidate.is_file():
        raise FileNotFoundError(f"no {RECORD_NAME} at {path}")
    return candidate


def find_all(directories: list[Path | str]) -> list[Path]:
    """Every record file below the given folders (recursively, no duplicates, in path order)."""
    found: set[Path] = set()
    for directory in directories:
        found.update(p for p in Path(directory).rglob(RECORD_NAME) if p.is_file())
    return sorted(found)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level of dotted keys (`train.learning_rate`), so two configs compare key by key.

    Lists and empty dicts stay whole values: they are compared as a unit.
    """
    if isinstance(data, dict) and (data or not prefix):
        flat: dict[str, Any] = {}
        for key, value in data.items():
            flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: data}
