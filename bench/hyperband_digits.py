"""The sweep benchmark's row (e): Keras Tuner's Hyperband in one process, over the benchmark's search space, on
tfrun's digits splits with tfrun's MLP builder (what `tfrun` trains), max_epochs = the grid's epochs.

Keras Tuner picks Keras 3 when the `keras` package is version 3; tfrun trains with tf_keras (Keras 2), so the tuner
is pointed at tf_keras (its own code path for Keras 2, `tensorflow.keras` with TF_USE_LEGACY_KERAS=1).
Prints one JSON line: best holdout accuracy (the tuner's best trial by val_accuracy, evaluated on the holdout),
epochs trained over all trials, trials, seconds.

Usage: python bench/hyperband_digits.py SPACE_JSON EPOCHS WORK_DIR
  SPACE_JSON: {"learning_rate": [...], "n_neurons": [...], "n_hidden": [...]}
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ["TF_USE_LEGACY_KERAS"] = "1"
STARTED = time.perf_counter()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

sys.modules["keras"] = tf_keras  # before keras_tuner: its Keras 2 path (tensorflow.keras, i.e. tf_keras here)
import keras_tuner  # noqa: E402

from tfrun.tasks.data import load_digits  # noqa: E402
from tfrun.tasks.data.splits import pipeline  # noqa: E402
from tfrun.tasks.model import build_mlp  # noqa: E402

SEED, BATCH, BUFFER = 42, 32, 10_000  # tfrun's train.seed, train.batch_size, data.shuffle_buffer


def main(space: dict[str, list], epochs: int, work: str) -> dict:
    tf_keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    data = load_digits(
        seed=SEED,
        name="digits",
        input_name="pixels",
        holdout_fraction=0.2,
        validation_fraction=0.1,
        limit=None,
        shuffle_buffer=BUFFER,
        image_shape=None,
    )

    def build(hp: keras_tuner.HyperParameters) -> tf_keras.Model:
        model = build_mlp(
            input_shape=list(data.input_shape),
            input_dtype=data.input_dtype,
            input_name=data.input_name,
            scale=data.scale,
            n_classes=data.n_classes,
            name="mlp",
            n_hidden=hp.Choice("n_hidden", space["n_hidden"]),
            n_neurons=hp.Choice("n_neurons", space["n_neurons"]),
            dropout=0.0,
        )
        model.compile(
            optimizer=tf_keras.optimizers.Adam(learning_rate=hp.Choice("learning_rate", space["learning_rate"])),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    class CountEpochs(tf_keras.callbacks.Callback):
        total = 0

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            CountEpochs.total += 1

    tuner = keras_tuner.Hyperband(
        build,
        objective="val_accuracy",
        max_epochs=epochs,
        factor=3,
        hyperband_iterations=1,
        seed=SEED,
        directory=work,
        project_name="hyperband",
        overwrite=True,
    )
    tuner.search(
        pipeline(data.x_train, data.y_train, batch_size=BATCH, shuffle=True, seed=SEED, buffer=BUFFER),
        validation_data=pipeline(data.x_valid, data.y_valid, batch_size=BATCH, shuffle=False, seed=SEED, buffer=BUFFER),
        callbacks=[CountEpochs()],
        verbose=0,
    )
    best = tuner.get_best_models(1)[0]
    probabilities = np.asarray(best.predict(data.x_holdout, batch_size=256, verbose=0))
    return {
        "best_holdout_accuracy": float((probabilities.argmax(axis=1) == data.y_holdout).mean()),
        "best_hyperparameters": tuner.get_best_hyperparameters(1)[0].values,
        "epochs_trained": CountEpochs.total,
        "trials": len(tuner.oracle.trials),
        "seconds": round(time.perf_counter() - STARTED, 2),
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3])))
