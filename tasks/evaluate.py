"""Holdout metrics of the trained model: data it never saw in training or validation.

Predictions are plain model calls in batches, not model.evaluate, so the
same code runs under every strategy (no collective ops, no coordinator).
"""

from __future__ import annotations

from typing import Any

import numpy as np

EPSILON = 1e-7  # Keras' clipping for cross-entropy


def predict(model: Any, x: np.ndarray, batch_size: int) -> np.ndarray:
    outputs = [np.asarray(model(x[i : i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
    return np.concatenate(outputs).astype("float32")


def metrics(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    picked = np.clip(probabilities[np.arange(len(labels)), labels], EPSILON, 1 - EPSILON)
    return {
        "holdout_accuracy": float((probabilities.argmax(axis=1) == labels).mean()),
        "holdout_loss": float(-np.log(picked).mean()),
    }


def step(cfg: Any, ctx: Any) -> dict[str, Any]:
    data, model = ctx.need("data"), ctx.need("model")
    probabilities = predict(model, data.x_holdout, max(cfg.train.batch_size, 256))
    ctx.state["holdout_probabilities"] = probabilities
    result = metrics(probabilities, data.y_holdout)
    predicted = probabilities.argmax(axis=1)
    per_class = {int(c): float((predicted[data.y_holdout == c] == c).mean()) for c in np.unique(data.y_holdout)}
    return {
        "summary": f"holdout accuracy {result['holdout_accuracy']:.4f}, loss {result['holdout_loss']:.4f} "
        f"on {len(data.x_holdout)} examples",
        "metrics": result,
        "examples": len(data.x_holdout),
        "per_class_accuracy": per_class,
    }
