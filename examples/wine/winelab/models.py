"""A small tf-keras classifier for tabular measurements on very different scales."""

from __future__ import annotations

from typing import Sequence


def build(
    *,
    input_shape: Sequence[int],
    input_dtype: str,
    input_name: str,
    n_classes: int,
    units: int = 32,
    depth: int = 2,
    dropout: float = 0.0,
):
    """BatchNormalization first (it learns each feature's scale, so the export takes raw measurements),
    then `depth` Dense(units, relu) layers and a softmax over the classes."""
    import tf_keras as keras

    inputs = keras.Input(shape=tuple(input_shape), dtype=input_dtype, name=input_name)
    x = keras.layers.BatchNormalization(momentum=0.9, name="standardize")(inputs)
    for i in range(depth):
        x = keras.layers.Dense(units, activation="relu", name=f"hidden_{i + 1}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="tabular")
