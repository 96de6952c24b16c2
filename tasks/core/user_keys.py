"""The keys of a user's own `model`, `data` and callback nodes, shared by validation and the steps.

Validation (tfrun.runner.config.user_nodes) checks a node's keys against these; the steps (tfrun.tasks.user_calls)
split the same node into the function's own keyword arguments and tfrun's keys by the same lists.
"""

from __future__ import annotations

from typing import Any

HYDRA_KEYS = frozenset({"_target_", "_recursive_", "_convert_", "_partial_", "_args_"})
SUPPLIED: dict[str, tuple[str, ...]] = {  # given by tfrun when the function's signature names them
    "model": ("input_shape", "input_dtype", "input_name", "scale", "n_classes"),
    "data": ("seed",),
    "callback": (),
}
DATA_DEFAULTS: dict[str, Any] = {
    "holdout_fraction": 0.2,
    "validation_fraction": 0.1,
    "limit": None,
    "shuffle_buffer": 10_000,
}
RESERVED: dict[str, tuple[str, ...]] = {"model": ("name",), "data": ("name", *DATA_DEFAULTS), "callback": ()}


def builtin_targets() -> frozenset[str]:
    """The `_target_`s of tfrun's own data and model options."""
    from tfrun.tasks.core.schema import SCHEMAS

    return frozenset(cls._target_ for group in ("data", "model") for cls in SCHEMAS[group].values())


def names_user_code(node: Any) -> bool:
    """In the training child, where every node is a plain map: a node whose `_target_` is not tfrun's."""
    target = node.get("_target_") if hasattr(node, "get") else None
    return isinstance(target, str) and target not in builtin_targets()
