"""The model repository TF Serving watches: `<base>/<model_name>/<version>/saved_model.pb ...`.

A version appears in one rename (written to a hidden temp folder beside it, `saved_model.pb`
copied last), so a watcher never loads half a model. Rollback moves newer versions out of the
way into `<model>/.rolled-back/` (a name no server parses as a version), newest last, so a
server on the `latest` policy goes straight back to the target version. Nothing is deleted, and
a number set aside is never given to another model (tfrun.tasks.export.next_version counts them).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from tfrun.tasks.export import ROLLED_BACK, VERSION_DIGITS, existing_versions, next_version, used_versions

WARMUP_RELATIVE = Path("assets.extra") / "tf_serving_warmup_requests"


def versions_on_disk(base_path: str | Path) -> dict[int, Path]:
    """Numeric child folders of a model's base path (TF Serving parses the name as an int64)."""
    base = Path(base_path)
    found: dict[int, Path] = {}
    try:
        children = list(base.iterdir())
    except OSError:
        return found
    for child in children:
        name = child.name
        if name.isdigit() and child.is_dir():
            found[int(name)] = child
    return found


def model_dir(base_path: str | Path, model_name: str) -> Path:
    return Path(base_path) / model_name


def version_dir(model: Path, version: int) -> Path:
    """The folder of `version`, whatever its zero padding (0001 or 1)."""
    for child in model.iterdir() if model.is_dir() else []:
        if child.name.isdigit() and int(child.name) == version and child.is_dir():
            return child
    return model / f"{version:0{VERSION_DIGITS}d}"


def versions(model: Path) -> list[int]:
    return existing_versions(model)


def push(export_path: Path, model: Path, version: int) -> tuple[int, Path, bool]:
    """Put an export into the repository as `version` (the next unused one if that number was ever used).

    Returns (version, path, copied). An export already inside `model` is used where it is.
    """
    export_path = Path(export_path).resolve()
    model.mkdir(parents=True, exist_ok=True)
    if export_path.parent == model.resolve():
        return int(export_path.name), export_path, False
    tmp = Path(tempfile.mkdtemp(prefix=".push-", dir=model))
    try:
        files = sorted(p for p in export_path.rglob("*") if p.is_file())
        last = [p for p in files if p.name in ("saved_model.pb", "saved_model.pbtxt") and p.parent == export_path]
        for src in [p for p in files if p not in last] + last:  # the graph last: a half copy never looks loadable
            dst = tmp / src.relative_to(export_path)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        candidate = version
        while True:
            target = model / f"{candidate:0{VERSION_DIGITS}d}"
            try:
                if candidate in used_versions(model):
                    raise FileExistsError(target)
                os.rename(tmp, target)
                return candidate, target, True
            except OSError as err:
                if not isinstance(err, FileExistsError) and err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                candidate = next_version(model)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def set_aside(model: Path, version: int) -> Path:
    """Move one version out of the served set (into .rolled-back/), atomically; returns where it went."""
    src = version_dir(model, version)
    holding = model / ROLLED_BACK
    holding.mkdir(exist_ok=True)
    dst = holding / f"{src.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    n = 1
    while dst.exists():
        dst, n = holding / f"{src.name}-{time.strftime('%Y%m%d-%H%M%S')}-{n}", n + 1
    os.rename(src, dst)
    return dst


def put_back(model: Path, moved: Path) -> Path:
    """Undo set_aside: the folder goes back under its version name (a rollback the server did not follow)."""
    original = model / Path(moved).name.split("-", 1)[0]
    if original.exists():
        raise FileExistsError(f"{original} exists: {moved} was left where it is")
    os.rename(moved, original)
    return original


def rollback_versions(model: Path, to_version: Optional[int]) -> tuple[int, list[int]]:
    """(target version, versions to set aside). Default target: the one before the newest."""
    have = versions(model)
    if not have:
        raise FileNotFoundError(f"no versions in {model}")
    if to_version is None:
        if len(have) < 2:
            raise ValueError(f"{model} has only version {have[0]}: there is no previous version to roll back to")
        to_version = have[-2]
    if to_version not in have:
        raise ValueError(f"version {to_version} is not in {model} (versions there: {', '.join(map(str, have))})")
    newer = [v for v in have if v > to_version]
    if not newer:
        raise ValueError(f"version {to_version} is already the newest in {model}; nothing to roll back")
    return to_version, newer


def rollback(model: Path, to_version: Optional[int]) -> dict[str, Any]:
    """Set aside every version newer than the target, oldest first and the newest last."""
    target, newer = rollback_versions(model, to_version)
    moved = {v: set_aside(model, v) for v in newer}
    return {"to_version": target, "set_aside": {v: str(p) for v, p in moved.items()}}


def write_warmup(
    version_path: Path,
    model_name: str,
    input_name: str,
    examples: Any,
    *,
    signature: str = "serving_default",
    records: int = 8,
) -> Path:
    """assets.extra/tf_serving_warmup_requests: `records` PredictionLogs of one holdout example each.

    Written to a temp file and renamed, so a server never reads half of it.
    """
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    from tfrun.tasks.tfserving.tensors import as_tensor_content

    target = version_path / WARMUP_RELATIVE
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    with tf.io.TFRecordWriter(str(tmp)) as writer:
        for i in range(min(records, len(examples))):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature
            request.inputs[input_name].CopyFrom(as_tensor_content(np.asarray(examples[i : i + 1])))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    os.replace(tmp, target)
    return target
