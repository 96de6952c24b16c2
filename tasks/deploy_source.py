"""The `source` step of job=deploy: the source SavedModel loaded as the run's model, in place of training.

It fills the state the export and evaluate steps fill in a training run (`export`, `model`,
`holdout_probabilities`), so every target's steps run unchanged, and their parity checks compare the
deployed form with the source SavedModel's own serving signature on the data's holdout rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tfrun.tasks.core import sources
from tfrun.tasks.export import PROBABILITIES, load_once
from tfrun.tasks.parity import REFERENCE_STATE

SIGNATURE = "serving_default"


class SourceMismatch(RuntimeError):
    """The source SavedModel cannot serve what the target sends it (no signature, another input)."""


def _checked_signature(loaded: Any, path: Path, data: Any) -> Any:
    """The serving signature every target calls: raw `data.input_name` in, `probabilities` out."""
    if SIGNATURE not in loaded.signatures:
        raise SourceMismatch(f"{path} has no {SIGNATURE!r} signature (it has: {sorted(loaded.signatures) or 'none'})")
    serve = loaded.signatures[SIGNATURE]
    inputs = serve.structured_input_signature[1]
    if data.input_name not in inputs:
        raise SourceMismatch(
            f"{path}'s {SIGNATURE} takes {sorted(inputs)}, not the data's input {data.input_name!r} "
            "(another data config than the one it was trained on? give the right data=…)"
        )
    shape = list(inputs[data.input_name].shape)[1:]
    if shape != list(data.input_shape):
        raise SourceMismatch(
            f"{path}'s {SIGNATURE} takes {data.input_name} of shape {shape}, the data's rows are "
            f"{list(data.input_shape)} (give the data=… the model was trained on)"
        )
    if PROBABILITIES not in serve.structured_outputs:
        raise SourceMismatch(f"{path}'s {SIGNATURE} answers {sorted(serve.structured_outputs)}, not {PROBABILITIES!r}")
    return serve


def step(cfg: Any, ctx: Any) -> dict[str, Any]:
    import numpy as np
    import tensorflow as tf

    from tfrun.tasks import evaluate
    from tfrun.tasks.core.record_io import relative

    source = sources.resolve(str(cfg.source))
    sha256 = sources.check(source)  # again here: the files may have changed since the runner checked them
    data = ctx.need("data")
    if getattr(data, "streamed", False):
        raise SourceMismatch("job=deploy needs data with holdout arrays for its parity check, not a streamed loader")
    path = source.saved_model
    serve = _checked_signature(load_once(ctx, path), path, data)
    batch = int(cfg.train.batch_size)
    x = data.x_holdout
    probabilities = np.concatenate(
        [
            np.asarray(serve(tf.constant(x[i : i + batch]))[PROBABILITIES], dtype=np.float32)
            for i in range(0, len(x), batch)
        ]
    )
    ctx.state["holdout_probabilities"] = probabilities
    ctx.state["model"] = lambda t, training=False: serve(t)[PROBABILITIES]  # the parity reference (tasks/parity.py)
    ctx.state[REFERENCE_STATE] = f"the source SavedModel {relative(path)}"
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    version = int(path.name) if path.name.isdigit() else 1  # tfserving_push takes the next unused number anyway
    ctx.state["export"] = {"path": path, "version": version, "sha256": sha256, "bytes": size}
    metrics = evaluate.metrics(probabilities, data.y_holdout)
    link = source.link(sha256)
    run = f" of run {link['run_id']}" if link["run_id"] else " (no run record)"
    checked = ", files as recorded" if (source.artifact or {}).get("files") else ""
    return {
        "summary": f"{relative(path)}{run}: holdout accuracy {metrics['holdout_accuracy']:.4f} "
        f"on {len(x)} rows of {cfg.data.name}{checked}",
        "metrics": metrics,
        "weights_sha256": link["weights_sha256"],
        "source": link,
    }
