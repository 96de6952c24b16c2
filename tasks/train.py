"""model.fit under the strategy's scope, with the configured callbacks."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from tasks.data import pipeline


def weights_sha256(weights: list[np.ndarray]) -> str:
    """A hash of every weight's dtype, shape and bytes: equal hashes mean identical models."""
    digest = hashlib.sha256()
    for w in weights:
        w = np.ascontiguousarray(w)
        digest.update(f"{w.dtype.str}{w.shape}".encode())
        digest.update(w.tobytes())
    return digest.hexdigest()


def make_optimizer(keras: Any, name: str, learning_rate: float, momentum: float) -> Any:
    optimizers = {
        "sgd": lambda: keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum),
        "adam": lambda: keras.optimizers.Adam(learning_rate=learning_rate),
        "adamw": lambda: keras.optimizers.AdamW(learning_rate=learning_rate),
        "nadam": lambda: keras.optimizers.Nadam(learning_rate=learning_rate),
        "rmsprop": lambda: keras.optimizers.RMSprop(learning_rate=learning_rate),
    }
    return optimizers[name]()


def _callbacks(keras: Any, cfg: Any, ctx: Any) -> list[Any]:
    options = cfg.train.callbacks
    run_dir = ctx.run_dir

    class Events(keras.callbacks.Callback):
        """Each epoch's metrics go to the record as they happen."""

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            ctx.emit({"event": "epoch", "epoch": epoch + 1,
                      "logs": {k: float(v) for k, v in (logs or {}).items()}})

    callbacks: list[Any] = [Events()]
    if options.backup_and_restore:
        callbacks.append(keras.callbacks.BackupAndRestore(backup_dir=str(run_dir / "backup")))
    if options.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard"), histogram_freq=0))
    has_validation = cfg.data.validation_fraction > 0
    if options.checkpoint:
        callbacks.append(keras.callbacks.ModelCheckpoint(
            str(run_dir / "checkpoints" / "best.weights.h5"), save_weights_only=True, save_best_only=True,
            monitor="val_loss" if has_validation else "loss"))
    stopping = options.early_stopping
    if stopping.enabled:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=stopping.monitor, patience=stopping.patience,
                                                       restore_best_weights=stopping.restore_best_weights))
    return callbacks


def step(cfg: Any, ctx: Any) -> dict[str, Any]:
    import tf_keras as keras

    data, model, strategy = ctx.need("data"), ctx.need("model"), ctx.need("strategy")
    train = cfg.train
    with strategy.scope():
        model.compile(optimizer=make_optimizer(keras, train.optimizer, train.learning_rate, train.momentum),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    shuffle_buffer = cfg.data.shuffle_buffer
    train_ds = pipeline(data.x_train, data.y_train, batch_size=train.batch_size, shuffle=True, seed=train.seed,
                        buffer=shuffle_buffer)
    valid_ds = None
    if len(data.x_valid):
        valid_ds = pipeline(data.x_valid, data.y_valid, batch_size=train.batch_size, shuffle=False,
                            seed=train.seed, buffer=shuffle_buffer)
    history = model.fit(train_ds, validation_data=valid_ds, epochs=train.epochs, verbose=train.verbose,
                        callbacks=_callbacks(keras, cfg, ctx))
    last = {k: float(v[-1]) for k, v in history.history.items() if v}
    epochs_run = len(next(iter(history.history.values()), []))
    summary = ", ".join(f"{k} {v:.4f}" for k, v in last.items())
    return {"summary": f"{epochs_run} epoch(s); {summary}", "epochs_run": epochs_run,
            "metrics": last, "weights_sha256": weights_sha256(model.get_weights())}
