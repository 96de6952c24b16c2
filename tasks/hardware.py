"""Device settings onto TensorFlow's own calls, made before any op runs.

`configure` takes the `tf` module as an argument so the exact calls for GPU
settings can be checked on machines without a GPU (tests pass a recorder).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence


class HardwareUnavailable(RuntimeError):
    """The config asks for devices this machine's TensorFlow does not see."""

    user_facing = True  # the message says what to do: the child reports it alone, without a traceback


def configure(
    tf: Any,
    *,
    kind: str,
    intra_op_threads: int = 0,
    inter_op_threads: int = 0,
    logical_devices: int = 1,
    visible_devices: Optional[Sequence[int]] = None,
    memory_growth: bool = False,
    memory_limit_mb: Optional[int] = None,
    logical_gpu_memory_mb: Optional[Sequence[int]] = None,
    mixed_precision: bool = False,
    soft_placement: bool = True,
    log_device_placement: bool = False,
) -> dict[str, Any]:
    """Apply one `hardware` config; returns what was set, for the record.

    visible_devices is applied through CUDA_VISIBLE_DEVICES by the runner
    (it must precede CUDA's start-up), so GPUs seen here are already filtered.
    """
    tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)
    tf.config.set_soft_device_placement(soft_placement)
    tf.debugging.set_log_device_placement(log_device_placement)

    if kind == "tpu":
        pass  # nothing to set locally: strategy=tpu connects to the TPU system
    elif kind == "cpu":
        if logical_devices > 1:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(logical_devices)]
            )
    else:
        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            wanted = "all GPUs" if visible_devices is None else f"GPU(s) {list(visible_devices)}"
            raise HardwareUnavailable(
                f"hardware={kind} asks for {wanted}, but TensorFlow sees no GPU on this machine "
                "(CUDA_VISIBLE_DEVICES, driver and a CUDA build of TensorFlow are needed). "
                "Use hardware=cpu here, or check `nvidia-smi` and "
                "`python -c \"import tensorflow as tf; print(tf.config.list_physical_devices('GPU'))\"`."
            )
        if kind == "split_gpu":
            tf.config.set_logical_device_configuration(
                gpus[0], [tf.config.LogicalDeviceConfiguration(memory_limit=mb) for mb in logical_gpu_memory_mb or []]
            )
        else:
            for gpu in gpus:
                if memory_growth:
                    tf.config.experimental.set_memory_growth(gpu, True)
                elif memory_limit_mb is not None:
                    tf.config.set_logical_device_configuration(
                        gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=memory_limit_mb)]
                    )
    if mixed_precision:
        import tf_keras

        tf_keras.mixed_precision.set_global_policy("mixed_float16")
    # No logical-device listing here: it would initialise TensorFlow's context, after which
    # MultiWorkerMirroredStrategy can no longer configure collective ops. The strategy step reports devices.
    return {
        "kind": kind,
        "logical_cpus": logical_devices if kind == "cpu" else None,
        "mixed_precision": mixed_precision,
    }


def step(cfg: Any, ctx: Any) -> dict[str, Any]:
    import tensorflow as tf

    from tfrun.tasks.build import instantiate

    applied = instantiate(cfg.hardware, tf=tf)
    seed_everything(tf, seed=cfg.train.seed, deterministic=cfg.train.deterministic)
    physical = [d.name for d in tf.config.list_physical_devices()]
    return {
        "summary": f"TensorFlow {tf.__version__}; physical devices: {', '.join(physical)}",
        "tensorflow": tf.__version__,
        "physical_devices": physical,
        **applied,
    }


def seed_everything(tf: Any, *, seed: int, deterministic: bool) -> None:
    """Same seed + op determinism: two fresh processes give bit-identical weights."""
    import tf_keras

    tf_keras.utils.set_random_seed(seed)  # python, numpy and TensorFlow
    if deterministic:
        tf.config.experimental.enable_op_determinism()
