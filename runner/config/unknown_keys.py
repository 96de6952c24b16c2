"""Keys the schema does not know, found in the composed config.

Hydra lets `+key=value` add a key even to a structured config (it opens the node for the addition),
and OmegaConf.to_object then drops it without a word: `tfrun +train.epoch=5` (a typo of epochs) would
train 20 epochs. So every node typed by a schema dataclass is compared with that dataclass's fields.
Free-form maps (Dict[...] fields such as cluster.task_env, or a node that no dataclass types, like a
user's own `_target_` model) take any key; `hydra.*` is Hydra's to check.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

from omegaconf import DictConfig, OmegaConf

from tfrun.tasks.core.problems import Problem, did_you_mean

NOT_OURS = ("hydra",)  # top-level nodes another program checks


def problems(cfg: DictConfig) -> Iterator[Problem]:
    """One Problem per key that a schema-typed node does not declare, with the close matches."""
    yield from _node_problems(cfg, "")


def _node_problems(node: DictConfig, path: str) -> Iterator[Problem]:
    schema = OmegaConf.get_type(node)
    fields = [f.name for f in dataclasses.fields(schema)] if dataclasses.is_dataclass(schema) else None
    for key in node.keys():
        key = str(key)
        full = f"{path}.{key}" if path else key
        if not path and key in NOT_OURS:
            continue
        if fields is not None and key not in fields:
            value = OmegaConf.to_container(node, resolve=False)[key]  # as given: an interpolation stays unresolved
            yield Problem(full, value, _allowed(path, key, fields))
            continue
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            yield from _node_problems(child, full)


def _allowed(path: str, key: str, fields: list[str]) -> str:
    """'a key of train: epochs, batch_size, ... (did you mean train.epochs?)'."""
    public = [f for f in fields if not f.startswith("_")]
    where = f"a key of {path}" if path else "a top-level key"
    text = f"{where}: {', '.join(public)}"
    return text + did_you_mean(key, public, prefix=f"{path}." if path else "")
