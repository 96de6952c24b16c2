"""What `job=deploy source=…` names: a SavedModel, the run that made it and that run's data config.

Pure standard library (json, hashlib), so the runner resolves and hash-checks a source before TensorFlow
starts, and the child's `source` step resolves it the same way. Each kind of source is one resolver in
`RESOLVERS` (a registry version brought here, a run dir or its record.json, a multirun's `best`, a SavedModel
folder); a new kind is one more function there. A source that cannot be used is a `SourceError` whose message
names the path or file.

A model registry reference (`models:/NAME/VERSION`, `models:/NAME@ALIAS`) needs the registry's client, so the
runner brings the version here first (tfrun.runner.config.deploy, tfrun.tasks.registry): a folder with the
SavedModel, the record of the run that exported it and `registry.json` (what was asked for, what it resolved
to), which the job then deploys as the source.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from tfrun.tasks.core.files import sha256_file

RECORD_NAME = "record.json"
GRAPH = "saved_model.pb"
BEST = "best"  # <multirun dir>/best: the sweep's best job
REGISTRY_PREFIX = "models:/"  # a model registry reference: brought here by the runner first
REGISTRY_MARKER = "registry.json"  # in a registry version brought here: the reference and what it resolved to
REGISTRY_SAVED_MODEL = "saved_model"  # the SavedModel's folder in it, beside the run's record.json
RECORD_FOLDERS = ("runs/**", "multiruns/**")  # where a SavedModel's run record is looked for (Hydra's dirs)
SERVING_EXTRAS = "assets.extra/"  # TF Serving's warm-up file, written into a served version after its export


class SourceError(ValueError):
    """A source that cannot be deployed; the message names the path or file and why."""


@dataclass(frozen=True)
class Source:
    """A resolved source: its SavedModel and, when known, the run that exported it."""

    given: str  # as written on the command line
    kind: str  # "registry", "run", "sweep_best", "saved_model"
    saved_model: Path
    record_path: Optional[Path] = None
    record: Optional[dict[str, Any]] = None
    artifact: Optional[dict[str, Any]] = None  # the record's saved_model artifact (files and their sha256)
    registry: Optional[dict[str, Any]] = None  # a registry version's registry.json: reference, name, version, …

    @property
    def data_config(self) -> Optional[dict[str, Any]]:
        """The source run's data config (its holdout rows are the parity check's), when a record names it."""
        data = ((self.record or {}).get("config") or {}).get("data")
        return data if isinstance(data, dict) else None

    @property
    def model_name(self) -> str:
        """The name the SavedModel was exported under: the record's, else its parent folder's."""
        named = (self.artifact or {}).get("model_name")
        return str(named) if named else self.saved_model.resolve().parent.name

    def link(self, tree_sha256: str) -> dict[str, Any]:
        """The deploy record's `source` section: which model it deployed, from which run."""
        record = self.record or {}
        registry = {} if self.registry is None else {"registry": self.registry}
        return {
            "given": self.given,
            "kind": self.kind,
            "run_id": record.get("run_id"),
            "record": None if self.record_path is None else _shown(self.record_path),
            "saved_model": _shown(self.saved_model),
            "model_name": self.model_name,
            "version": (self.artifact or {}).get("version"),
            "weights_sha256": record.get("weights_sha256"),
            "sha256": tree_sha256,
            "recorded_sha256": (self.artifact or {}).get("sha256"),
            **registry,
        }


def _shown(path: Path) -> str:
    """A path as the record shows paths: relative to the launch folder when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _read_record(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise SourceError(f"{path} cannot be read as a tfrun record ({err.__class__.__name__}: {err})") from None
    if not isinstance(data, dict):
        raise SourceError(f"{path} is not a tfrun record (not a JSON object)")
    return data


def saved_model_artifact(record: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The record's exported SavedModel (the last one it names), or None."""
    found = [a for a in record.get("artifacts") or [] if isinstance(a, dict) and a.get("kind") == "saved_model"]
    return found[-1] if found else None


def _from_record(given: str, record_path: Path, kind: str) -> Source:
    record = _read_record(record_path)
    artifact = saved_model_artifact(record)
    if artifact is None or not artifact.get("path"):
        status = record.get("status")
        raise SourceError(f"{record_path} names no exported SavedModel (the run's status: {status})")
    return Source(
        given, kind, _exported_path(record_path, record, str(artifact["path"])), record_path, record, artifact
    )


def _exported_path(record_path: Path, record: dict[str, Any], path: str) -> Path:
    """Where the record's export is from here: its path is relative to the folder the run was launched from,
    the one its `run_dir` is relative to (this one, or another for a record given from another folder: then
    that folder's export, even when this folder has one by the same path)."""
    exported = Path(path)
    run_dir = Path(str(record.get("run_dir") or ""))
    if exported.is_absolute() or run_dir.is_absolute() or not run_dir.parts:
        return exported
    folder = record_path.resolve().parent
    if folder.parts[-len(run_dir.parts) :] != run_dir.parts:
        return exported
    launch = folder.parents[len(run_dir.parts) - 1]
    if launch == Path.cwd().resolve() or not (launch / exported).exists():
        return exported  # as the record wrote it (relative to this folder, where its run was launched)
    return launch / exported


def _registry_copy(given: str, path: Path) -> Optional[Source]:
    """A registry version brought here: its SavedModel, checked against the record beside it; the reference
    it was brought for is what the deploy says it was given."""
    marker = path / REGISTRY_MARKER
    if not (path.is_dir() and marker.is_file()):
        return None
    try:
        registry = json.loads(marker.read_text())
    except (OSError, ValueError) as err:
        raise SourceError(f"{marker} cannot be read ({err.__class__.__name__}: {err})") from None
    record_path = path / RECORD_NAME
    record = _read_record(record_path)
    shown = {k: registry.get(k) for k in ("registry", "uri", "name", "version", "alias", "mlflow_run_id")}
    reference = str(registry.get("reference") or given)
    return Source(
        reference,
        "registry",
        path / REGISTRY_SAVED_MODEL,
        record_path,
        record,
        saved_model_artifact(record),
        {"reference": reference, **shown, "folder": _shown(path)},
    )


def _run(given: str, path: Path) -> Optional[Source]:
    """A run dir, or its record.json."""
    if path.is_file() and path.name == RECORD_NAME:
        return _from_record(given, path, "run")
    if path.is_dir() and (path / RECORD_NAME).is_file():
        return _from_record(given, path / RECORD_NAME, "run")
    return None


def _maximized(metric: str) -> bool:
    return "loss" not in metric


def best_job(sweep_dir: Path) -> Path:
    """The sweep's best job's record: the one its sweep.json names, else the best succeeded record by
    the sweep's optimized_metric (the rule of tfrun.runner.sweeps.summary)."""
    summary = sweep_dir / "sweep.json"
    if summary.is_file():
        try:
            best = (json.loads(summary.read_text()) or {}).get("best") or {}
        except (OSError, ValueError):
            best = {}
        job = best.get("job") if isinstance(best, dict) else None
        if job and (sweep_dir / str(job) / RECORD_NAME).is_file():
            return sweep_dir / str(job) / RECORD_NAME
    scored: list[tuple[float, Path]] = []
    for record_path in sorted(sweep_dir.glob(f"*/{RECORD_NAME}")):
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError):
            continue
        metric = (record.get("config") or {}).get("optimized_metric", "holdout_accuracy")
        value = ((record.get("metrics") or {}).get("final") or {}).get(metric)
        if record.get("status") == "succeeded" and isinstance(value, (int, float)) and not math.isnan(value):
            scored.append((value if _maximized(metric) else -value, record_path))
    if not scored:
        raise SourceError(f"{sweep_dir} holds no succeeded job with a metric to pick the best by")
    return max(scored, key=lambda pair: pair[0])[1]


def _sweep_best(given: str, path: Path) -> Optional[Source]:
    """<multirun dir>/best: the sweep's best job."""
    if path.name != BEST or path.exists() or not path.parent.is_dir():
        return None
    return _from_record(given, best_job(path.parent), "sweep_best")


def find_record(saved_model: Path, roots: tuple[str, ...] = RECORD_FOLDERS) -> Optional[Path]:
    """The newest record under the launch folder's runs/ and multiruns/ that exported this SavedModel."""
    target = saved_model.resolve()
    found: list[tuple[str, Path]] = []
    for pattern in roots:
        for record_path in Path.cwd().glob(f"{pattern}/{RECORD_NAME}"):
            try:
                text = record_path.read_text()
                if saved_model.name not in text:  # cheap: most records name other exports
                    continue
                record = json.loads(text)
            except (OSError, ValueError):
                continue
            artifact = saved_model_artifact(record) if isinstance(record, dict) else None
            if artifact and artifact.get("path") and Path(str(artifact["path"])).resolve() == target:
                found.append((str(record.get("started_at") or ""), record_path))
    return max(found)[1] if found else None


def _saved_model(given: str, path: Path) -> Optional[Source]:
    """A SavedModel folder (models/NAME/0003), with its run's record when one under runs/ names it."""
    if not path.is_dir():
        return None
    record_path = find_record(path)
    if record_path is None:
        return Source(given, "saved_model", path)
    record = _read_record(record_path)
    return Source(given, "saved_model", path, record_path, record, saved_model_artifact(record))


RESOLVERS: tuple[Callable[[str, Path], Optional[Source]], ...] = (_registry_copy, _run, _sweep_best, _saved_model)


def resolve(given: str) -> Source:
    """The source `given` names, or a SourceError saying what is missing."""
    text = str(given or "").strip()
    if not text:
        raise SourceError(
            "job=deploy needs source=<run dir | record.json | SavedModel folder | MULTIRUN/best | models:/…>"
        )
    if text.startswith(REGISTRY_PREFIX):  # the runner brings it here first and deploys that folder
        raise SourceError(f"{text}: a model registry reference is read through the registry's client, not here")
    path = Path(text).expanduser()
    for resolver in RESOLVERS:
        source = resolver(text, path)
        if source is not None:
            return source
    raise SourceError(f"{text} does not exist" if not path.exists() else f"{text} is not a run dir or SavedModel")


def check(source: Source) -> str:
    """The source is a SavedModel whose every file has the sha256 its record gives; its tree sha256.

    A file changed, missing or added since the export names itself. Without a record only the SavedModel's
    shape is checked (the hash is still returned, for the deploy's record).
    """
    folder = source.saved_model
    if not folder.is_dir():
        raise SourceError(f"{folder} does not exist (the SavedModel {source.given} names)")
    if not (folder / GRAPH).is_file():
        raise SourceError(f"{folder} is not a SavedModel: it has no {GRAPH}")
    files = [
        {"path": p.relative_to(folder).as_posix(), "sha256": sha256_file(p)}
        for p in sorted(q for q in folder.rglob("*") if q.is_file())
    ]
    recorded = (source.artifact or {}).get("files")
    want = {str(f.get("path")): f.get("sha256") for f in recorded or [] if isinstance(f, dict)}
    files = [f for f in files if f["path"] in want or not f["path"].startswith(SERVING_EXTRAS)]  # not the model's
    if want:
        have = {f["path"]: f["sha256"] for f in files}
        for name in sorted(set(want) | set(have)):
            if name not in have:
                raise SourceError(f"{folder / name} is missing (the record {source.record_path} names it)")
            if name not in want:
                raise SourceError(
                    f"{folder / name} was not exported (the record {source.record_path} has no such file)"
                )
            if want[name] != have[name]:
                raise SourceError(
                    f"{folder / name} has changed since the export: sha256 {have[name][:12]}… is not the "
                    f"{str(want[name])[:12]}… recorded in {source.record_path}"
                )
    return tree_sha256(files)


def tree_sha256(files: list[dict[str, Any]]) -> str:
    """The hash of a file list (path and sha256 of each), as tfrun.tasks.export records it."""
    import hashlib

    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f['path']}\0{f['sha256']}\n".encode())
    return digest.hexdigest()
