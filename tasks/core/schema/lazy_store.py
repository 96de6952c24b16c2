"""ConfigStore entries made into DictConfigs when Hydra first loads them, not at start-up.

ConfigStore.store() turns a dataclass into a DictConfig at once (about 1-2 ms each), and tfrun
registers every option of every group at start-up, while a composition loads one option per group.
An entry stored here builds its DictConfig on the first load and keeps it: the same config, the
same type checks, only paid for the options a composition uses.
"""

from __future__ import annotations

from typing import Any

from hydra.core.config_store import ConfigNode, ConfigStore
from omegaconf import DictConfig, OmegaConf


class LazyConfigNode(ConfigNode):
    """A ConfigStore entry whose `node` is made from its dataclass when first read.

    ConfigStore.load() shallow-copies the entry, reads `node` and sets a deep copy on the copy;
    the made DictConfig is shared (a one-item list) by the copies, never handed out itself.
    """

    def __init__(
        self, name: str, schema: type, group: str | None, package: str | None = None, provider: str | None = None
    ) -> None:
        self._schema = schema
        self._made: list[DictConfig] = []
        node: Any = None  # made when first read
        super().__init__(name=name, node=node, group=group, package=package, provider=provider)

    @property  # type: ignore[override]
    def node(self) -> DictConfig:
        if not self._made:
            self._made.append(OmegaConf.structured(self._schema))
        return self._made[0]

    @node.setter
    def node(self, value: Any) -> None:
        if value is not None:  # ConfigStore.load()'s copy gets its own node; the original keeps the made one
            self._made = [value]


def store(
    name: str, schema: type, group: str | None = None, package: str | None = None, provider: str | None = None
) -> None:
    """ConfigStore.instance().store(name, node=schema, group, package, provider), made on first load."""
    folder = ConfigStore.instance().repo
    for part in (group or "").split("/"):
        if part:
            folder = folder.setdefault(part, {})
    name = name if name.endswith(".yaml") else f"{name}.yaml"
    folder[name] = LazyConfigNode(name, schema, group, package, provider)
