"""tf.distribute strategies, chosen by the `strategy` config's _target_."""

from __future__ import annotations

from typing import Any, Optional


def one_device(*, name: str = "default", device: Optional[str] = None) -> Any:
    """TensorFlow's default strategy, or OneDeviceStrategy pinned to `device`."""
    import tensorflow as tf

    if device is None:
        return tf.distribute.get_strategy()
    return tf.distribute.OneDeviceStrategy(device)


def step(cfg: Any, ctx: Any) -> dict[str, Any]:
    import hydra.utils

    strategy = hydra.utils.instantiate(cfg.strategy, _convert_="all")
    ctx.state["strategy"] = strategy
    replicas = strategy.num_replicas_in_sync
    global_batch = cfg.train.batch_size
    per_replica = global_batch // replicas
    return {"summary": f"{cfg.strategy.name}: {type(strategy).__name__}, {replicas} replica(s), "
                       f"batch {global_batch} = {replicas} x {per_replica}",
            "strategy": cfg.strategy.name, "class": type(strategy).__name__, "replicas": replicas,
            "global_batch_size": global_batch, "per_replica_batch_size": per_replica}
