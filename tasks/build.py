"""Calling a config node's `_target_`, with the target's own error when it fails."""

from __future__ import annotations

from typing import Any


def instantiate(node: Any, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, re-raising the target's exception rather than Hydra's wrapper.

    A user should read "no TPU answered at grpc://..." or "data.path ... not found",
    not "Error in call to target 'tfrun.tasks.strategy.tpu'".
    """
    import hydra.utils
    from hydra.errors import InstantiationException

    try:
        return hydra.utils.instantiate(node, _convert_="all", **kwargs)
    except InstantiationException as exc:
        if exc.__cause__ is not None:
            raise exc.__cause__ from None
        raise
