"""model.fit under the strategy's scope, with the configured callbacks."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import numpy as np

from tfrun.tasks import backup, cluster
from tfrun.tasks.core import vertex_env
from tfrun.tasks.data.splits import pipeline


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


def build_training_variables(model: Any) -> None:
    """Create the optimizer's slots and the compiled loss and metrics before fit (inside the strategy's scope).

    fit creates them inside the first trace of its train function, and a tf.function whose first trace created
    variables traces again without them: each run paid a second trace of train_step (about 0.3-0.5 s of a CPU job
    that trains 1-2 epochs). Made here, with the zeros they start from, the one trace is the one that runs; weights
    and metrics are bit-identical. Only for tfrun's own compile of a single-output model: labels are sparse class
    ids there (sparse_categorical_crossentropy), which picks the same accuracy metric Keras picks from the data."""
    import tensorflow as tf

    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1 or (outputs[0].shape.rank or 0) < 2:  # one (batch, classes) output, or leave it to fit
        return
    (output,) = outputs
    model.optimizer.build(model.trainable_variables)
    model.compiled_loss.build(output)
    model.compiled_metrics.build(output, tf.TensorSpec(output.shape[:-1], tf.int64))


def _callbacks(
    keras: Any, cfg: Any, ctx: Any, model: Any, strategy: Any, has_validation: bool
) -> tuple[list[Any], int]:
    """The configured callbacks and the epoch to start from; non-chief workers log to their own dirs."""
    options = cfg.train.callbacks
    run_dir = ctx.run_dir

    class Events(keras.callbacks.Callback):
        """Each epoch's metrics go to the record as they happen; a restored backup shows as a later first epoch."""

        first_epoch: int | None = None
        epoch_started = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            self.epoch_started = time.perf_counter()
            if self.first_epoch is None:
                self.first_epoch = epoch
                if epoch > 0 and not initial_epoch:  # tf-keras' BackupAndRestore restored it
                    ctx.emit({"event": "resumed", "epoch": epoch})

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = {k: float(v) for k, v in (logs or {}).items()}
            logs["epoch_seconds"] = round(time.perf_counter() - self.epoch_started, 4)
            ctx.emit({"event": "epoch", "epoch": epoch + 1, "logs": logs})

    callbacks: list[Any] = [Events()]
    initial_epoch = 0
    if options.backup_and_restore and backup.keras_supports(strategy):
        # tf-keras keeps non-chief workers' backups apart by itself
        callbacks.append(keras.callbacks.BackupAndRestore(backup_dir=str(run_dir / "backup")))
    elif options.backup_and_restore:
        callback, initial_epoch = backup.epoch_backup(
            keras, model, run_dir / "backup", cluster.local_io_device(cfg.cluster.name, strategy)
        )
        callbacks.append(callback)
        if initial_epoch:
            ctx.emit({"event": "resumed", "epoch": initial_epoch})
    if vertex_env.inside_vertex() and cluster.on_vertex(cfg.cluster):  # the backup and logs to Vertex's AIP_* dirs
        from tfrun.tasks.vertex.replica import epoch_sync_callback

        callbacks.append(epoch_sync_callback(keras, cfg, run_dir))
    if vertex_env.in_trial():  # each epoch's measurement, for the study's automated stopping (tuning.early_stopping)
        from tfrun.tasks.vertex.trial_reports import epoch_report_callback

        callbacks.append(epoch_report_callback(keras, cfg))
    if options.tensorboard:
        callbacks.append(
            keras.callbacks.TensorBoard(log_dir=str(cluster.worker_dir(run_dir / "tensorboard")), histogram_freq=0)
        )
    if options.checkpoint:
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                str(cluster.worker_dir(run_dir / "checkpoints") / "best.weights.h5"),
                save_weights_only=True,
                save_best_only=True,
                monitor="val_loss" if has_validation else "loss",
            )
        )
    stopping = options.early_stopping
    if stopping.enabled:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=stopping.monitor, patience=stopping.patience, restore_best_weights=stopping.restore_best_weights
            )
        )
    if cfg.train.get("extra_callbacks"):  # the user's, after tfrun's own (tfrun.tasks.user_calls checks each)
        from tfrun.tasks.user_calls import callbacks as user_callbacks

        callbacks += user_callbacks(cfg.train.extra_callbacks)
    return callbacks, initial_epoch


def _is_parameter_server(strategy: Any) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy)


def fit_inputs(cfg: Any, data: Any, strategy: Any, global_batch: int) -> dict[str, Any]:
    """model.fit's data arguments. ParameterServerStrategy needs a DatasetCreator and steps_per_epoch."""
    import math

    if getattr(data, "streamed", False):  # the user's dataset factory (tfrun.tasks.data.user_streams)
        from tfrun.tasks.data.user_streams import fit_inputs as streamed_inputs

        return streamed_inputs(cfg, data, strategy, global_batch)
    train, buffer = cfg.train, cfg.data.shuffle_buffer
    if not _is_parameter_server(strategy):
        inputs: dict[str, Any] = {
            "x": pipeline(
                data.x_train, data.y_train, batch_size=global_batch, shuffle=True, seed=train.seed, buffer=buffer
            )
        }
        if len(data.x_valid):
            inputs["validation_data"] = pipeline(
                data.x_valid, data.y_valid, batch_size=global_batch, shuffle=False, seed=train.seed, buffer=buffer
            )
        return inputs
    import tensorflow as tf
    import tf_keras as keras

    def dataset_fn(input_context: Any) -> Any:
        batch = input_context.get_per_replica_batch_size(global_batch)
        ds = tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        ds = ds.shuffle(min(buffer, len(data.x_train)), seed=train.seed).repeat()
        return ds.batch(batch).prefetch(tf.data.AUTOTUNE)

    steps = cfg.strategy.steps_per_epoch or math.ceil(len(data.x_train) / global_batch)
    return {"x": keras.utils.experimental.DatasetCreator(dataset_fn), "steps_per_epoch": steps}


def _remove_worker_dirs(run_dir: Any) -> None:
    import shutil

    if not cluster.is_chief():
        for name in ("tensorboard", "checkpoints"):
            shutil.rmtree(cluster.worker_dir(run_dir / name), ignore_errors=True)


def step(cfg: Any, ctx: Any) -> dict[str, Any]:
    import tf_keras as keras

    data, model, strategy = ctx.need("data"), ctx.need("model"), ctx.need("strategy")
    train = cfg.train
    quantized = None
    if train.get("quantization_aware", False):  # QAT: fake-quantized layers, so int8 TFLite loses less
        from tfrun.tasks.qat import quantize_aware

        with strategy.scope():
            model, quantized = quantize_aware(model)
        ctx.state["model"] = model
    from tfrun.tasks.user_calls import compiled_by_builder

    compiled_by = "builder" if quantized is None and compiled_by_builder(model) else "tfrun"
    if compiled_by == "tfrun":  # a user's builder may compile the model itself (QAT's wrapper needs a new compile)
        with strategy.scope():
            model.compile(
                optimizer=make_optimizer(keras, train.optimizer, train.learning_rate, train.momentum),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
            build_training_variables(model)
    inputs = fit_inputs(cfg, data, strategy, ctx.state.get("global_batch_size", train.batch_size))
    callbacks, initial_epoch = _callbacks(keras, cfg, ctx, model, strategy, "validation_data" in inputs)
    from tfrun.tasks import pruning

    trial = pruning.callback(keras, cfg)  # a pruned Optuna sweep's trial: reports each epoch, may stop early
    if trial is not None:
        callbacks.append(trial)
    from tfrun.tasks.data.user_streams import reading

    try:
        with reading(data):  # a streamed dataset's read error names the user's loader
            history = model.fit(
                epochs=train.epochs, initial_epoch=initial_epoch, verbose=train.verbose, callbacks=callbacks, **inputs
            )
    finally:
        _remove_worker_dirs(ctx.run_dir)
    last = {k: float(v[-1]) for k, v in history.history.items() if v}
    ctx.state["train_metrics"] = last
    epochs_run = len(next(iter(history.history.values()), []))
    summary = ", ".join(f"{k} {v:.4f}" for k, v in last.items())
    if trial is not None and trial.pruned:  # the plan ends here (tfrun.runner.child) and the record says pruned
        ctx.state["pruned"] = trial.pruned
        ctx.emit({"event": "pruned", "pruned": trial.pruned})
        summary = f"pruned by the sweep's {trial.pruned['pruner']} pruner; {summary}"
    return {
        "summary": f"{epochs_run} epoch(s); {summary}",
        "epochs_run": epochs_run,
        "metrics": last,
        "weights_sha256": weights_sha256(model.get_weights()),
        "compiled_by": compiled_by,
        **({"quantization_aware_layers": quantized} if quantized is not None else {}),
    }
