"""A tf-keras callback of this project's own (imports TensorFlow at the top: tfrun's checks never import it)."""

from __future__ import annotations

import tf_keras as keras


class StopAtAccuracy(keras.callbacks.Callback):
    """Stop training once `monitor` reaches `threshold` (for a quick, good-enough model)."""

    def __init__(self, threshold: float, monitor: str = "val_accuracy"):
        super().__init__()
        self.threshold = threshold
        self.monitor = monitor

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (logs or {}).get(self.monitor, 0.0) >= self.threshold:
            print(
                f"StopAtAccuracy: {self.monitor} {logs[self.monitor]:.4f} >= {self.threshold} after epoch {epoch + 1}"
            )
            self.model.stop_training = True
