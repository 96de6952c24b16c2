"""One composition for a single run, and cheaper compositions (a shared ConfigStore, lazy plugin configs).

Hydra 1.3's `_run_hydra` composes the whole config in `Hydra.get_mode()` only to read
`hydra.mode`, then composes it again in `Hydra.run()`; each composition walks the whole config
(deepcopy dominates), so every run and every rejected config paid for two. While `patched()` is
active, get_mode composes the way the run will (RUN mode) and the run's composition takes that
result. A composition that fails in RUN mode (a sweep override without -m, a missing default)
falls back to Hydra's own get_mode, so -m, a config that sets hydra.mode, sweepers, launchers and
Hydra's error messages are unchanged.

Hydra also deep-copies its config repository for every composition (and for every job of a sweep),
and with it the ConfigStore singleton and every config in it. Copies now share the store, as in
Hydra's main branch (facebookresearch/hydra#2928): ConfigStore.load() hands out copies anyway.
The plugins Hydra finds (joblib, optuna, submitit) store their dataclasses the way tfrun's own
schemas are stored (tfrun.tasks.core.schema.lazy_store): made into DictConfigs only if a composition uses them.
And for each config it loads, Hydra builds a DictConfig of every group's choice, which only a
defaults list that interpolates (`- db: ${db_choice}`) reads; it is now built only for those.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hydra._internal import defaults_list
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.hydra import Hydra
from hydra._internal.utils import get_args_parser
from hydra.core.config_store import ConfigStore
from hydra.core.default_element import InputDefault
from hydra.types import RunMode
from omegaconf import DictConfig

from tfrun.tasks.core.schema import lazy_store

MODE_OVERRIDE = "hydra.mode=RUN"  # what Hydra's _run_app adds for a run when no config sets hydra.mode


@dataclass
class _Composed:
    """get_mode's RUN-mode composition (or its error), for the run's composition to take."""

    config_name: str | None
    overrides: list[str]
    cfg: DictConfig | None = None
    error: BaseException | None = None

    def serves(self, config_name: str | None, overrides: list[str], run_mode: RunMode) -> bool:
        """Whether composing (config_name, overrides, run_mode) would give this result."""
        head, extra = overrides[: len(self.overrides)], overrides[len(self.overrides) :]
        return (
            run_mode == RunMode.RUN
            and config_name == self.config_name
            and head == self.overrides
            and extra in ([], [MODE_OVERRIDE])
        )


_kept: _Composed | None = None
_hydra_get_mode = Hydra.get_mode
_hydra_load_configuration = ConfigLoaderImpl.load_configuration
_hydra_store = ConfigStore.store
_hydra_interpolation_map = defaults_list._create_interpolation_map


def _get_mode(hydra: Hydra, config_name: str | None, overrides: list[str]) -> Any:
    """Hydra.get_mode, composing in RUN mode and keeping the result for Hydra.run."""
    global _kept
    try:
        cfg = hydra.compose_config(config_name=config_name, overrides=overrides, run_mode=RunMode.RUN)
    except Exception as exc:  # Hydra's way: a MULTIRUN composition may still say hydra.mode
        mode = _hydra_get_mode(hydra, config_name, overrides)
        _kept = _Composed(config_name, list(overrides), error=exc)
        return mode
    _kept = _Composed(config_name, list(overrides), cfg=cfg)
    return cfg.hydra.mode


def _load_configuration(
    loader: ConfigLoaderImpl,
    config_name: str | None,
    overrides: list[str],
    run_mode: RunMode,
    from_shell: bool = True,
    validate_sweep_overrides: bool = True,
) -> DictConfig:
    """ConfigLoaderImpl.load_configuration, answering the run's composition with get_mode's (once)."""
    global _kept
    kept, _kept = _kept, None
    if kept is None or not kept.serves(config_name, overrides, run_mode) or not from_shell:
        return _hydra_load_configuration(
            loader,
            config_name=config_name,
            overrides=overrides,
            run_mode=run_mode,
            from_shell=from_shell,
            validate_sweep_overrides=validate_sweep_overrides,
        )
    if kept.error is not None:
        raise kept.error
    assert kept.cfg is not None
    if overrides[len(kept.overrides) :]:  # as Hydra applies and records the override it added
        kept.cfg.hydra.mode = RunMode.RUN
        kept.cfg.hydra.overrides.hydra.append(MODE_OVERRIDE)
    return kept.cfg


def _store(
    store: ConfigStore,
    name: str,
    node: Any,
    group: str | None = None,
    package: str | None = None,
    provider: str | None = None,
) -> None:
    """ConfigStore.store, with a dataclass made into its DictConfig on first load (lazy_store)."""
    if isinstance(node, type) and dataclasses.is_dataclass(node):
        lazy_store.store(name, node, group, package, provider)
    else:
        _hydra_store(store, name=name, node=node, group=group, package=package, provider=provider)


def _interpolation_map(overrides: Any, defaults: list[InputDefault], self_added: bool) -> DictConfig | None:
    """Hydra's map of known choices, for a defaults list that interpolates (no other reads it)."""
    if not any(d.is_interpolation() for d in defaults):
        return None
    return _hydra_interpolation_map(overrides, defaults, self_added)


def _share_store(store: ConfigStore, memo: dict[int, Any]) -> ConfigStore:
    """The ConfigStore singleton is shared by deep copies (of the config repository's schema source)."""
    return store


def is_single_run(argv: list[str]) -> bool:
    """Whether Hydra reads argv as one run (no -m, --cfg, --help, --hydra-help, --info, completion)."""
    parser = get_args_parser()
    parser.exit_on_error = False  # a bad flag is Hydra's to report
    try:
        args, _ = parser.parse_known_args(argv)
    except argparse.ArgumentError:
        return False
    return not (args.multirun or args.cfg or args.help or args.hydra_help or args.info or args.shell_completion)


@contextmanager
def patched(single_run: bool) -> Iterator[None]:
    """Within: the cheaper compositions of the module docstring; for a single run, one composition."""
    global _kept
    patches: list[tuple[Any, str, Any]] = [
        (ConfigStore, "__deepcopy__", _share_store),
        (ConfigStore, "store", _store),
        (defaults_list, "_create_interpolation_map", _interpolation_map),
    ]
    if single_run:
        patches += [(Hydra, "get_mode", _get_mode), (ConfigLoaderImpl, "load_configuration", _load_configuration)]
    saved = [(owner, name, owner.__dict__.get(name)) for owner, name, _ in patches]
    for owner, name, value in patches:
        setattr(owner, name, value)
    try:
        yield
    finally:
        _kept = None
        for owner, name, value in saved:
            if value is None:
                delattr(owner, name)
            else:
                setattr(owner, name, value)
