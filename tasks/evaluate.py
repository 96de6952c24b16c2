"""Holdout metrics of the trained model: data it never saw in training or validation."""

from __future__ import annotations

from typing import Any

import numpy as np

from tasks.data import pipeline


def step(cfg: Any, ctx: Any) -> dict[str, Any]:
    data, model = ctx.need("data"), ctx.need("model")
    ds = pipeline(data.x_holdout, data.y_holdout, batch_size=cfg.train.batch_size, shuffle=False, seed=0, buffer=1)
    loss, accuracy = model.evaluate(ds, verbose=0)
    probabilities = model.predict(ds, verbose=0)
    ctx.state["holdout_probabilities"] = probabilities
    predicted = probabilities.argmax(axis=1)
    per_class = {int(c): float((predicted[data.y_holdout == c] == c).mean())
                 for c in np.unique(data.y_holdout)}
    return {"summary": f"holdout accuracy {accuracy:.4f}, loss {loss:.4f} on {len(data.x_holdout)} examples",
            "metrics": {"holdout_accuracy": float(accuracy), "holdout_loss": float(loss)},
            "examples": len(data.x_holdout), "per_class_accuracy": per_class}
