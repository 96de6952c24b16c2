"""Versioned SavedModel export: <models_dir>/<model_name>/<NNNN>.

The model is written to a temp dir beside the versions and renamed into
place, so a reader (TF Serving's version watcher, another run) never sees a
half-written model; a rename that loses a race takes the next number.

A number once used is never given again: the next version is one above every number the model's
folder has seen — versions served, their sibling files (`0003.int8.tflite`, `0003.web`) and versions
moved out of the served set (`.rolled-back/0003-<time>`). A client or cache pinned to version 3 never
gets another model under that number.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from tfrun.tasks.core.files import sha256_file

VERSION_DIGITS = 4
ROLLED_BACK = ".rolled-back"  # where versions go when they leave the served set (tasks/tfserving/repository.py)
MOVED_TO = (ROLLED_BACK,)  # every folder inside a model's folder that versions are moved to
_NUMBERED = re.compile(r"(\d+)(?:$|[.-])")  # 0003, 0003.int8.tflite, 0003.web, 0003-20260101-120000


def existing_versions(base: Path) -> list[int]:
    """The versions a server would load now: numbered folders directly in base."""
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


def _numbers(folder: Path) -> set[int]:
    if not folder.is_dir():
        return set()
    return {int(m.group(1)) for m in (_NUMBERED.match(p.name) for p in folder.iterdir()) if m}


def used_versions(base: Path) -> set[int]:
    """Every version number base has given: served, with files named after it, or moved aside."""
    used = _numbers(base)
    for moved in MOVED_TO:
        used |= _numbers(base / moved)
    return used


def next_version(base: Path) -> int:
    """One above every number base has used, so no number ever names two models."""
    return max(used_versions(base), default=0) + 1


def publish(tmp_dir: Path, base: Path) -> tuple[int, Path]:
    """Rename a finished export to the next unused version; atomic, safe against concurrent writers."""
    while True:
        version = next_version(base)
        target = base / f"{version:0{VERSION_DIGITS}d}"
        try:
            os.rename(tmp_dir, target)  # fails if target exists and is not empty
            return version, target
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise


NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # a full disk, a full quota, a file size limit


class ExportWriteError(OSError):
    """The models folder's file system refused the export for lack of room: the message alone, no traceback."""

    user_facing = True


def no_room(exc: BaseException) -> str | None:
    """Why a write failed for lack of room (the OS's words), or None. Python raises an OSError with its errno;
    TensorFlow's file writer an OpError whose message holds the OS's text (e.g. 'No space left on device')."""
    for code in NO_ROOM:
        if (isinstance(exc, OSError) and exc.errno == code) or os.strerror(code) in str(exc):
            return os.strerror(code)
    return None


def new_version(
    base: Path, write: Callable[[Path], None], check: Callable[[list[dict[str, Any]]], None] = lambda files: None
) -> tuple[int, Path, list[dict[str, Any]]]:
    """`write` a model into a temp dir beside base's versions, `check` its files, publish it as the next
    version: (version, path, files). A failure at any point leaves no half-written version behind; a write
    refused for lack of room is an ExportWriteError naming the folder and models_dir."""
    try:
        base.mkdir(parents=True, exist_ok=True)
        tmp_dir = Path(tempfile.mkdtemp(prefix=".export-", dir=base))
    except OSError as exc:
        _raise_if_no_room(exc, base)
        raise
    try:
        write(tmp_dir)
        files = tree_files(tmp_dir)
        check(files)
        version, path = publish(tmp_dir, base)
    except BaseException as exc:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        _raise_if_no_room(exc, base)
        raise
    return version, path, files


def _raise_if_no_room(exc: BaseException, base: Path) -> None:
    reason = no_room(exc)
    if reason:
        raise ExportWriteError(
            f"the export could not be written to {base}: {reason.lower()} (free space on that file system, "
            "or set models_dir to a folder on another one); nothing was published"
        ) from None


def tree_files(root: Path) -> list[dict[str, Any]]:
    """Every file under root with its sha256 and size, in a stable order."""
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        files.append(
            {"path": path.relative_to(root).as_posix(), "sha256": sha256_file(path), "bytes": path.stat().st_size}
        )
    return files


def tree_sha256(files: list[dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f['path']}\0{f['sha256']}\n".encode())
    return digest.hexdigest()


PROBABILITIES, CLASS_ID = "probabilities", "class_id"  # the signature's output names


def output_names(class_id: bool) -> list[str]:
    """The outputs `serving_default` has: probabilities alone (the book's form), or also class_id."""
    return [PROBABILITIES, CLASS_ID] if class_id else [PROBABILITIES]


def save_serving_model(
    model: Any,
    path: Path,
    *,
    input_name: str,
    input_shape: tuple[int, ...],
    input_dtype: str,
    class_id: bool = False,
    io_device: str | None = None,
    layer_traces: bool = True,
) -> None:
    """SavedModel with `serving_default`: raw input in, class probabilities out (and the class id if asked).

    One output is what TF Serving's REST row format and Vertex answer as a bare list per instance, so
    the book's clients read a probability matrix; gRPC names it `probabilities` (the dict key here).
    `layer_traces=False` leaves out what tf_keras adds beside the signatures, each layer's traced call functions
    (which let `tf.saved_model.load` give an object callable like the Keras model): the signatures, variables and
    their answers are the same, in a fraction of the time (most of a digits export is those traces).
    """
    import tensorflow as tf

    spec = tf.TensorSpec([None, *input_shape], tf.as_dtype(input_dtype), name=input_name)

    @tf.function(input_signature=[spec])
    def serve(x):
        probabilities = model(x, training=False)
        outputs = {PROBABILITIES: probabilities}
        if class_id:
            outputs[CLASS_ID] = tf.argmax(probabilities, axis=-1)
        return outputs

    # The tf.function itself, not a concrete function: under MultiWorkerMirroredStrategy a concrete
    # function traced over distributed variables (BatchNormalization's) cannot be saved.
    with contextlib.nullcontext() if layer_traces else _without_layer_traces():
        tf.saved_model.save(
            model,
            str(path),
            signatures={"serving_default": serve},
            options=tf.saved_model.SaveOptions(experimental_io_device=io_device),
        )


LOADED_STATE = "loaded_export"  # in ctx.state: (path, the SavedModel loaded from it)


def load_once(ctx: Any, path: Path | str) -> Any:
    """The SavedModel at `path` (tf.saved_model.load), loaded once per job: a job=deploy's steps (the source check,
    TFLite's float reference, a local batch job) each loaded it again, ~0.7 s of a core every time for the digits
    model. Kept in ctx.state, so its variables live as long as its signatures are used."""
    import tensorflow as tf

    key = Path(path).resolve()
    cached = ctx.state.get(LOADED_STATE)
    if cached is not None and cached[0] == key:
        return cached[1]
    loaded = tf.saved_model.load(str(path))
    ctx.state[LOADED_STATE] = (key, loaded)
    return loaded


def _without_layer_traces() -> Any:
    """tf_keras' switch behind `model.save(save_traces=False)`, for tf.saved_model.save (which has no argument for
    it): its layers then list no traced functions among their SavedModel children."""
    from tf_keras.src.saving.legacy.saved_model import utils

    return utils.keras_option_scope(save_traces=False, in_tf_saved_model_scope=utils.in_tf_saved_model_scope())


def step(cfg: Any, ctx: Any) -> dict[str, Any]:
    from tfrun.tasks import cluster
    from tfrun.tasks.core.record_io import relative

    data, model = ctx.need("data"), ctx.need("model")
    class_id = bool(cfg.export.class_id_output)
    # A sweep's job exports without the Keras layer traces: what serves, deploys or converts it (TF Serving, Vertex,
    # TFLite, job=deploy, target=web) reads the signatures, which are the same; a single run keeps them.
    layer_traces = not getattr(ctx, "sweep_job", False)
    if not cluster.is_chief():  # saving is collective: non-chief workers save too, to a dir they remove
        with tempfile.TemporaryDirectory(prefix="tfrun-export-") as scratch:
            save_serving_model(
                model,
                Path(scratch) / "model",
                input_name=data.input_name,
                input_shape=data.input_shape,
                input_dtype=data.input_dtype,
                class_id=class_id,
                layer_traces=layer_traces,
            )
        return {"summary": f"task {cluster.task_name()}: saved to a temporary dir (the chief exports)"}
    io_device = cluster.local_io_device(cfg.cluster.name, ctx.need("strategy"))
    version, path, files = new_version(
        Path(cfg.models_dir) / cfg.model_name,
        lambda tmp_dir: save_serving_model(
            model,
            tmp_dir,
            input_name=data.input_name,
            input_shape=data.input_shape,
            input_dtype=data.input_dtype,
            class_id=class_id,
            io_device=io_device,
            layer_traces=layer_traces,
        ),
    )
    sha256, size = tree_sha256(files), sum(f["bytes"] for f in files)
    ctx.state["export"] = {"path": path, "version": version, "sha256": sha256, "bytes": size}
    artifact = {
        "kind": "saved_model",
        "path": relative(path),
        "model_name": cfg.model_name,
        "version": version,
        "signature": "serving_default",
        "input": {"name": data.input_name, "dtype": data.input_dtype, "shape": [None, *data.input_shape]},
        "outputs": output_names(class_id),
        "layer_traces": layer_traces,
        "sha256": sha256,
        "bytes": size,
        "files": files,
    }
    return {
        "summary": f"{relative(path)} (version {version}, {artifact['bytes']:,} bytes"
        f"{'' if layer_traces else ', signatures without Keras layer traces (a sweep job)'})",
        "path": relative(path),
        "version": version,
        "artifacts": [artifact],
    }
