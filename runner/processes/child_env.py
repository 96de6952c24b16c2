"""Environment of the child process: settings TensorFlow reads only at start-up."""

from __future__ import annotations

import os

from tfrun.tasks.core.schema import DeviceKind, HardwareConfig

PYTHON_HASH_SEED = "0"


def child_environment(hardware: HardwareConfig, base: dict[str, str] | None = None) -> dict[str, str]:
    """Variables for the child, derived from the hardware config.

    CUDA_VISIBLE_DEVICES must be set before TensorFlow loads CUDA, hence here
    and not in tfrun.tasks.hardware; PCI bus order makes the indices match nvidia-smi.
    """
    env = dict(os.environ if base is None else base)
    env["TF_USE_LEGACY_KERAS"] = "1"  # tf-keras: model.fit works under every tf.distribute strategy
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONHASHSEED"] = PYTHON_HASH_SEED  # fixed string hashing: same iteration orders in every run
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if hardware.kind is DeviceKind.cpu:
        env["CUDA_VISIBLE_DEVICES"] = "-1"
    elif hardware.visible_devices is not None:
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in hardware.visible_devices)
    return env
