"""The sweep benchmark's row (f): a Hydra multirun in one process, written the lightning-hydra-template way
(`src/train.py` there): `@hydra.main` over config groups whose nodes name their `_target_`, `instantiate` per
job, training in-process, and `main` returning the optimized metric for the sweeper.

The data and model are tfrun's own digits loader and MLP builder (as `_target_`s), with tfrun's defaults, so the
row trains exactly what `tfrun` trains; the trainer is tf_keras' `model.fit`, seeded and op-deterministic per job.
Each job writes `metrics.json` to its output dir (the benchmark reads them).

Usage: python bench/hydra_app/train.py -m model.n_hidden=1,2 model.n_neurons=32,64 optimizer.learning_rate=0.001,0.01
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Optional

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig  # noqa: E402


def train(cfg: DictConfig) -> dict[str, Any]:
    """One job: seed, data, model, fit, holdout metrics (the template's `train` returns its metric dict)."""
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    from tfrun.tasks.data.splits import pipeline

    keras.backend.clear_session()  # one process runs every job: drop the previous job's graph state
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    data = hydra.utils.instantiate(cfg.data, seed=cfg.seed)
    model = hydra.utils.instantiate(
        cfg.model,
        input_shape=list(data.input_shape),
        input_dtype=data.input_dtype,
        input_name=data.input_name,
        scale=data.scale,
        n_classes=data.n_classes,
    )
    model.compile(
        optimizer=hydra.utils.instantiate(cfg.optimizer),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    out = Path(HydraConfig.get().runtime.output_dir)
    callbacks = [
        hydra.utils.instantiate(c, filepath=str(out / "checkpoints" / "last.weights.h5"))
        for c in cfg.callbacks.values()
    ]
    batch, buffer = cfg.trainer.batch_size, cfg.data.shuffle_buffer
    history = model.fit(
        pipeline(data.x_train, data.y_train, batch_size=batch, shuffle=True, seed=cfg.seed, buffer=buffer),
        validation_data=pipeline(
            data.x_valid, data.y_valid, batch_size=batch, shuffle=False, seed=cfg.seed, buffer=buffer
        ),
        epochs=cfg.trainer.max_epochs,
        verbose=0,
        callbacks=callbacks,
    )
    probabilities = np.concatenate(
        [np.asarray(model(data.x_holdout[i : i + 256], training=False)) for i in range(0, len(data.x_holdout), 256)]
    )
    return {
        "holdout_accuracy": float((probabilities.argmax(axis=1) == data.y_holdout).mean()),
        "epochs": len(history.history["loss"]),
        "val_accuracy": float(history.history["val_accuracy"][-1]),
    }


@hydra.main(version_base="1.3", config_path="configs", config_name="train.yaml")
def main(cfg: DictConfig) -> Optional[float]:
    started = time.perf_counter()
    metrics = train(cfg)
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    (Path(HydraConfig.get().runtime.output_dir) / "metrics.json").write_text(json.dumps(metrics))
    return metrics.get(cfg.optimized_metric)  # the template's get_metric_value: what an Optuna sweeper optimizes


if __name__ == "__main__":
    main()
