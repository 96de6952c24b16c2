"""Epoch backups for strategies that tf-keras' BackupAndRestore does not support.

tf-keras' callback covers the default, Mirrored, MultiWorkerMirrored and TPU
strategies; CentralStorage and ParameterServer get this one: a
tf.train.Checkpoint of model, optimizer and epoch after every epoch,
restored before fit (as its initial_epoch) and removed when training ends.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

KERAS_SUPPORTED = (
    "_DefaultDistributionStrategy",
    "OneDeviceStrategy",
    "MirroredStrategy",
    "MultiWorkerMirroredStrategy",
    "TPUStrategy",
    "CollectiveAllReduceStrategy",
)


def keras_supports(strategy: Any) -> bool:
    return type(strategy).__name__ in KERAS_SUPPORTED


def epoch_backup(keras: Any, model: Any, backup_dir: Path, io_device: str | None = None) -> tuple[Any, int]:
    """A callback saving after each epoch, and the epoch restored from an earlier backup (0 if none).

    `io_device`: the device that reads and writes the files (tfrun.tasks.cluster.local_io_device).
    """
    import tensorflow as tf

    options = tf.train.CheckpointOptions(experimental_io_device=io_device)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="backup_epoch")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=epoch)
    manager = tf.train.CheckpointManager(checkpoint, str(backup_dir), max_to_keep=1)
    restored = 0
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint, options=options)
        restored = int(epoch.numpy())

    class EpochBackup(keras.callbacks.Callback):
        def on_epoch_end(self, index: int, logs: dict | None = None) -> None:
            epoch.assign(index + 1)
            manager.save(options=options)

        def on_train_end(self, logs: dict | None = None) -> None:
            shutil.rmtree(backup_dir, ignore_errors=True)  # finished: a re-run starts afresh

    return EpochBackup(), restored
