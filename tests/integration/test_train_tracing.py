"""tfrun's compile makes every training variable before fit, so fit traces its train function once, not twice,
with weights and metrics bit-identical to letting fit make them (tfrun.tasks.train.build_training_variables)."""

from __future__ import annotations

import numpy as np

from tests.helpers import LazyModule, requires
from tfrun.tasks.model import build_mlp
from tfrun.tasks.train import build_training_variables, make_optimizer, weights_sha256

pytestmark = requires("tensorflow", "tf_keras")

keras = LazyModule("tf_keras")


def _fit(prebuild: bool) -> tuple[int, str, dict[str, float]]:
    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 17, (256, 8, 8)).astype("uint8")
    y = (x.reshape(256, -1).sum(axis=1) % 10).astype("int64")
    model = build_mlp(
        input_shape=[8, 8], input_dtype="uint8", input_name="pixels", scale=16.0, n_classes=10,
        name="mlp", n_hidden=1, n_neurons=16, dropout=0.2,
    )  # fmt: skip
    model.compile(
        optimizer=make_optimizer(keras, "adam", 1e-2, 0.9), loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )  # fmt: skip
    if prebuild:
        build_training_variables(model)
    history = model.fit(x[:200], y[:200], validation_data=(x[200:], y[200:]), epochs=2, batch_size=32, verbose=0)
    last = {k: v[-1] for k, v in history.history.items()}
    return model.train_function.experimental_get_tracing_count(), weights_sha256(model.get_weights()), last


def test_one_trace_and_the_same_weights_and_metrics():
    traces, weights, metrics = _fit(True)
    fit_made_them = _fit(False)
    assert fit_made_them[0] == 2, "fit itself traces twice when its first trace makes the variables"
    assert traces == 1
    assert (weights, metrics) == fit_made_them[1:]
    assert set(metrics) == {"loss", "accuracy", "val_loss", "val_accuracy"}
