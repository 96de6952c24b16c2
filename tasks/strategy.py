"""tf.distribute strategies, chosen by the `strategy` config's _target_.

Each factory makes the documented TensorFlow calls for its strategy; cluster
strategies read TF_CONFIG (set per process by the runner, or by the
environment with cluster=tf_config).
"""

from __future__ import annotations

import threading
from typing import Any, Optional, Sequence


def _local_devices(tf: Any) -> list[str]:
    """Every GPU if any, else every logical CPU."""
    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


def one_device(*, name: str = "default", device: Optional[str] = None) -> Any:
    """TensorFlow's default strategy, or OneDeviceStrategy pinned to `device`."""
    import tensorflow as tf

    if device is None:
        return tf.distribute.get_strategy()
    return tf.distribute.OneDeviceStrategy(device)


def make_cross_device_ops(tf: Any, choice: str, on_gpu: bool) -> Any:
    ops = {
        "nccl": lambda: tf.distribute.NcclAllReduce(),
        "hierarchical_copy": lambda: tf.distribute.HierarchicalCopyAllReduce(),
        "reduction_to_one_device": lambda: tf.distribute.ReductionToOneDevice(),
    }
    if choice == "auto":
        choice = "nccl" if on_gpu else "reduction_to_one_device"
    return ops[choice]()


def mirrored(*, name: str, devices: Optional[Sequence[str]], cross_device_ops: str) -> Any:
    import tensorflow as tf

    devices = list(devices or _local_devices(tf))
    on_gpu = any("GPU" in d.upper() for d in devices)
    return tf.distribute.MirroredStrategy(
        devices=devices, cross_device_ops=make_cross_device_ops(tf, cross_device_ops, on_gpu)
    )


def central_storage(*, name: str, compute_devices: Optional[Sequence[str]], parameter_device: Optional[str]) -> Any:
    import tensorflow as tf

    compute = list(compute_devices or _local_devices(tf))
    return tf.distribute.experimental.CentralStorageStrategy(compute_devices=compute, parameter_device=parameter_device)


def multi_worker(*, name: str, communication: str) -> Any:
    import tensorflow as tf

    implementation = {
        "auto": tf.distribute.experimental.CommunicationImplementation.AUTO,
        "ring": tf.distribute.experimental.CommunicationImplementation.RING,
        "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL,
    }[communication]
    options = tf.distribute.experimental.CommunicationOptions(implementation=implementation)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def parameter_server(*, name: str, min_shard_bytes: int, max_shards: int, steps_per_epoch: Optional[int]) -> Any:
    import tensorflow as tf

    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    partitioner = None
    if max_shards > 1:
        partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
            min_shard_bytes=min_shard_bytes, max_shards=max_shards
        )
    return tf.distribute.experimental.ParameterServerStrategy(resolver, variable_partitioner=partitioner)


class TpuUnavailable(RuntimeError):
    """No TPU answered at the configured address."""


TPU_HOWTO = (
    "Set strategy.tpu to `local` on a Cloud TPU VM, to the TPU node's name, or to grpc://HOST:8470 "
    "(the node's address), and run on a machine that can reach it; see "
    "https://cloud.google.com/tpu/docs for creating one."
)


def tpu(*, name: str, tpu: Optional[str], connect_timeout_s: float) -> Any:
    """TPUStrategy. Connecting to an unreachable grpc:// address hangs in TensorFlow, so it runs under a deadline."""
    import os

    import tensorflow as tf

    address = tpu or os.environ.get("TPU_NAME")
    outcome: dict[str, Any] = {}

    def connect() -> None:
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            outcome["strategy"] = tf.distribute.TPUStrategy(resolver)
        except Exception as exc:  # reported below with the address and how to configure one
            outcome["error"] = exc

    thread = threading.Thread(target=connect, name="tpu-connect", daemon=True)
    thread.start()
    thread.join(connect_timeout_s)
    if thread.is_alive():
        raise TpuUnavailable(
            f"no TPU answered at strategy.tpu={address!r} within strategy.connect_timeout_s="
            f"{connect_timeout_s} s. {TPU_HOWTO}"
        )
    if "error" in outcome:
        exc = outcome["error"]
        raise TpuUnavailable(
            f"could not use the TPU at strategy.tpu={address!r}: {type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}. {TPU_HOWTO}"
        ) from exc
    return outcome["strategy"]


def effective_batch(global_batch: int, replicas: int, policy: str) -> int:
    """The global batch to use: unchanged if it splits evenly, else rounded (policy round) or an error."""
    if global_batch % replicas == 0:
        return global_batch
    if policy == "round":
        from tfrun.tasks.core.schema.distribute import round_batch

        return round_batch(global_batch, replicas)
    raise ValueError(
        f"train.batch_size={global_batch} does not split over {replicas} replicas: use a multiple of "
        f"{replicas} or train.batch_policy=round"
    )


def step(cfg: Any, ctx: Any) -> dict[str, Any]:
    import tensorflow as tf

    from tfrun.tasks import cluster
    from tfrun.tasks.build import instantiate

    strategy = instantiate(cfg.strategy)
    ctx.state["strategy"] = strategy
    ctx.emit(
        {
            "event": "devices",
            "devices": {
                "physical": [{"name": d.name, "type": d.device_type} for d in tf.config.list_physical_devices()],
                "logical": [d.name for d in tf.config.list_logical_devices()],
            },
        }
    )
    replicas = int(strategy.num_replicas_in_sync)
    global_batch = effective_batch(cfg.train.batch_size, replicas, cfg.train.batch_policy)
    ctx.state["global_batch_size"] = global_batch
    per_replica = global_batch // replicas
    adjusted = global_batch != cfg.train.batch_size
    note = f" (adjusted from {cfg.train.batch_size} by batch_policy=round)" if adjusted else ""
    return {
        "summary": f"{cfg.strategy.name}: {type(strategy).__name__}, {replicas} replica(s), "
        f"batch {global_batch} = {replicas} x {per_replica}{note}; task {cluster.task_name()}",
        "strategy": cfg.strategy.name,
        "class": type(strategy).__name__,
        "replicas": replicas,
        "global_batch_size": global_batch,
        "per_replica_batch_size": per_replica,
        "batch_adjusted_from": cfg.train.batch_size if adjusted else None,
        "task": cluster.task_name(),
        "chief": cluster.is_chief(),
    }
