"""A run's record as an object (`tfrun.load`, `tfrun.records`, what `tfrun.run` returns).

The record file is the truth: `Record.data` is its JSON, and every attribute reads from it. Paths in a
record are relative to the folder the run was started in (records hold no machine paths), so a Record
also knows that folder: given by `tfrun.run`, else worked out from where the record file is now.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from tfrun.runner.records.record import RECORD_NAME, find_all, locate
from tfrun.runner.records.record import load as load_json

DEFAULT_DIRS = ("runs", "multiruns")  # as `tfrun-records list`


class Record:
    """One run's record: `.status`, `.metrics` (final), `.path`, `.run_dir`, `.saved_model`, `.deployments`,
    `.error` and `.data` (the whole JSON)."""

    def __init__(self, path: Path, data: dict[str, Any], base: Path | None = None):
        self.path = path.resolve()
        self.data = data
        self.base = base.resolve() if base is not None else _started_in(self.run_dir, data.get("run_dir"))

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    @property
    def run_id(self) -> str | None:
        return self.data.get("run_id")

    @property
    def status(self) -> str | None:
        return self.data.get("status")

    @property
    def metrics(self) -> dict[str, Any]:
        """The final metrics (`holdout_accuracy`, `loss`, a target's own ...)."""
        return dict((self.data.get("metrics") or {}).get("final") or {})

    @property
    def history(self) -> dict[str, list[float]]:
        """Each epoch's metrics, by name."""
        return dict((self.data.get("metrics") or {}).get("history") or {})

    @property
    def config(self) -> dict[str, Any]:
        """The resolved config the run ran with (secrets redacted)."""
        return dict(self.data.get("config") or {})

    @property
    def overrides(self) -> list[str]:
        return list((self.data.get("command") or {}).get("overrides") or [])

    @property
    def seconds(self) -> float | None:
        return self.data.get("seconds")

    @property
    def error(self) -> dict[str, Any] | None:
        """Why the run did not succeed (type, message, step, ...), None if it did."""
        return self.data.get("error")

    @property
    def deployments(self) -> list[dict[str, Any]]:
        return list(self.data.get("deployments") or [])

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        return list(self.data.get("artifacts") or [])

    def artifact(self, kind: str) -> Path | str | None:
        """Where the run's artifact of this kind (`saved_model`, `tflite`, ...) is: a local path made absolute,
        a `gs://` URI as recorded; None if the run made none."""
        for artifact in reversed(self.artifacts):
            if artifact.get("kind") == kind and artifact.get("path"):
                path = str(artifact["path"])
                return path if "://" in path else self.base / path
        return None

    @property
    def saved_model(self) -> Path | str | None:
        """The exported SavedModel's folder (None if the run exported none)."""
        return self.artifact("saved_model")

    def reload(self) -> "Record":
        """The record as its file says now (a running run's record changes after every step and epoch)."""
        return Record(self.path, load_json(self.path), self.base)

    def __repr__(self) -> str:
        metric = (self.data.get("config") or {}).get("optimized_metric") or "holdout_accuracy"
        value = self.metrics.get(metric)
        shown = f", {metric}={value:.4f}" if isinstance(value, (int, float)) else ""
        return f"Record({self.run_id!r}, {self.status!r}{shown}, path={str(self.path)!r})"


def _started_in(run_dir: Path, recorded: Any) -> Path:
    """The folder the run was started in: the run dir less the recorded (relative) run dir; else the current one."""
    parts = Path(str(recorded)).parts if isinstance(recorded, str) and recorded else ()
    if parts and ".." not in parts and not Path(recorded).is_absolute() and run_dir.parts[-len(parts) :] == parts:
        return Path(*run_dir.parts[: -len(parts)])
    return Path.cwd()


def load(path: Path | str, base: Path | None = None) -> Record:
    """The record of a run, given its run dir or its record.json (FileNotFoundError, ValueError naming the file)."""
    file = locate(path)
    try:
        data = load_json(file)
    except ValueError as exc:
        raise ValueError(f"{file}: not a readable record ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{file}: not a record (a JSON {type(data).__name__}, not an object)")
    return Record(file, data, base)


def records(*dirs: Path | str) -> list[Record]:
    """Every record below the folders (default ./runs and ./multiruns), oldest first. A damaged record is
    skipped with a warning naming it, as `tfrun-records list` goes on with the others."""
    folders = [Path(d) for d in dirs] if dirs else [Path(d) for d in DEFAULT_DIRS if Path(d).is_dir()]
    for folder in folders:
        if not folder.is_dir():
            raise FileNotFoundError(f"no folder {folder}")
    found: list[Record] = []
    for file in find_all(list(folders)):
        try:
            found.append(load(file))
        except (OSError, ValueError) as exc:
            warnings.warn(str(exc), stacklevel=2)
    return sorted(found, key=lambda r: (str(r.data.get("started_at") or ""), str(r.path)))


__all__ = ["RECORD_NAME", "Record", "load", "records"]
