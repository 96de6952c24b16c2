"""The wine data set (178 wines, 13 chemical measurements, 3 cultivars), bundled with scikit-learn."""

from __future__ import annotations

from typing import Optional, Sequence


def load(*, seed: int, features: Optional[Sequence[str]] = None) -> dict:
    """All examples as raw float32 measurements; tfrun splits them (data.holdout_fraction, ...).

    `features` keeps only the named columns (null: all 13), e.g. [alcohol, color_intensity, proline].
    """
    from sklearn.datasets import load_wine

    wine = load_wine()
    names = list(wine.feature_names)
    unknown = sorted(set(features or []) - set(names))
    if unknown:
        raise ValueError(f"unknown feature(s) {unknown}; the wine data has {names}")
    columns = [names.index(f) for f in features] if features else list(range(len(names)))
    x = wine.data[:, columns].astype("float32")
    return {"x": x, "y": wine.target, "input_name": "measurements", "n_classes": 3}
