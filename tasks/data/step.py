"""The `data` step: the configured loader (built-in or the user's), checked, into the context."""

from __future__ import annotations

from typing import Any


def step(cfg: Any, ctx: Any) -> dict[str, Any]:
    from tfrun.tasks.build import instantiate
    from tfrun.tasks.user_calls import is_user_node

    notes: list[str] = []
    if is_user_node(cfg.data):  # the user's loader: checked and turned into Splits (tfrun.tasks.data.user_arrays)
        from tfrun.tasks import user_calls
        from tfrun.tasks.data import user_arrays

        result = user_calls.call(cfg.data, "data", "data", {"seed": cfg.train.seed})
        splits, notes = user_arrays.to_splits(result, str(cfg.data._target_), cfg.data, cfg.train.seed)
    else:
        splits = instantiate(cfg.data, seed=cfg.train.seed)
    checked: dict[str, Any] = {}
    if getattr(
        splits, "streamed", False
    ):  # a train factory (tfrun.tasks.data.user_streams): TensorFlow's checks, before training
        from tfrun.tasks.data import user_streams

        checked = user_streams.check(
            splits,
            ctx.need("strategy"),
            ctx.state.get("global_batch_size", cfg.train.batch_size),
            cfg.strategy.get("steps_per_epoch"),
        )
    ctx.state["data"] = splits
    info = {**splits.summary(), **checked, **({"notes": notes} if notes else {})}
    train, validation = info["train"], info["validation"]
    if checked:  # a stream's size is the loader's train_examples, when it gives it
        train = "streamed" if train is None else f"{train} streamed"
        validation = "streamed" if validation is None else validation
    return {
        "summary": f"{cfg.data.name}: {train} train / {validation} validation / "
        f"{info['holdout']} holdout, input {info['input_name']} {info['input_dtype']}"
        f"{info['input_shape']}",
        **info,
    }
