"""Parity: a deployed form's predictions against the trained model's, shared by every target.

The reference is the trained model computing as the export computes (a tf.function over
[None, ...] inputs, batch by batch); the evaluate step's Keras predictions are compared too,
with their own tolerance, since Keras' predict loop can round the last float32 bits differently.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

REFERENCE_STATE = "parity_reference"  # in ctx.state: what the checks compare with, when not a trained model


def reference_name(ctx: Any) -> str:
    """What a target's parity check compares with: the trained model, or job=deploy's source SavedModel."""
    return str(ctx.state.get(REFERENCE_STATE, "the trained model"))


def trained_predictions(model: Any, x: np.ndarray, batch: int) -> np.ndarray:
    """The trained model's probabilities computed the way the export computes them.

    A tf.function over a [None, ...] input, called batch by batch, like the SavedModel's
    serving signature. (Keras' own predict loop in the evaluate step can differ in the last
    float32 bits on some rows: it is compared with a tolerance, parity_holdout_atol.)
    """
    import tensorflow as tf

    spec = tf.TensorSpec([None, *x.shape[1:]], tf.as_dtype(x.dtype))
    fn = tf.function(lambda t: model(t, training=False), input_signature=[spec])
    return np.concatenate(
        [np.asarray(fn(tf.constant(x[i : i + batch])), dtype=np.float32) for i in range(0, len(x), batch)]
    )


def compare(
    served: np.ndarray,
    classes: Optional[np.ndarray],
    reference: Optional[np.ndarray],
    holdout: np.ndarray,
    atol: float,
    holdout_atol: float,
) -> dict[str, Any]:
    """Served probabilities against the trained model (atol) and the evaluate step (holdout_atol).

    `classes` are served class ids when the signature has them (export.class_id_output=true): they
    must be the argmax of the served probabilities. None (the default one-output signature) records
    `class_ids_consistent: None`, nothing to check.
    """

    def diff(a: Optional[np.ndarray], b: np.ndarray) -> float:
        return float(np.abs(a - b).max()) if a is not None and a.shape == b.shape else float("inf")

    out: dict[str, Any] = {}
    if reference is not None:
        d = diff(served, reference)
        out.update(
            exact=bool(served.shape == reference.shape and np.array_equal(served, reference)),
            max_abs_diff=d,
            within_tolerance=d <= atol,
            mismatched_rows=int((np.abs(served - reference).max(axis=1) > atol).sum())
            if served.shape == reference.shape
            else len(holdout),
        )
    h = diff(served, holdout)
    out.update(
        max_abs_diff_vs_evaluate=h,
        exact_vs_evaluate=bool(served.shape == holdout.shape and np.array_equal(served, holdout)),
        within_holdout_tolerance=h <= holdout_atol,
        class_ids_consistent=None
        if classes is None
        else bool(classes.shape == served.shape[:1] and np.array_equal(classes, served.argmax(axis=1))),
        class_ids_agree_with_evaluate=int((served.argmax(axis=1) == holdout.argmax(axis=1)).sum())
        if served.shape == holdout.shape
        else 0,
    )
    out["passed"] = bool(
        out.get("within_tolerance", True)
        and out["within_holdout_tolerance"]
        and out["class_ids_consistent"] is not False
    )
    return out
