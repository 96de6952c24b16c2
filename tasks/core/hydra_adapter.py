"""The one module that touches Hydra's private API; everything else calls Hydra's documented API or this.

Written for hydra-core 1.3.8 (`WRITTEN_FOR`): tests/unit/test_hydra_adapter.py fails when another version is
installed, so whoever upgrades Hydra re-checks each item below against its source first. It lives in the core
because the schemas' lazy store needs it too (tfrun.tasks.core imports only the standard library, omegaconf and
hydra). What it relies on, and what for:

- `hydra._internal.utils.run_and_report(func)`, looked up at call time by `hydra.main`'s `_run_hydra`, which
  passes it the composition and the app as `func`: `errors_first_to` shows their errors to tfrun first.
- `hydra._internal.utils.get_args_parser()` and its argparse `_actions`: Hydra's own flags (`hydra_flags`,
  `is_single_run`, `plain_multirun_overrides`).
- `Hydra.get_mode(config_name, overrides)` (`hydra._internal.hydra`) and
  `ConfigLoaderImpl.load_configuration(config_name, overrides, run_mode, from_shell, validate_sweep_overrides)`
  (`hydra._internal.config_loader_impl`): `_run_hydra` composes in the first only to read `hydra.mode`, then
  again in `Hydra.run()` through the second; `compose_patched` keeps the first composition for the second.
- `hydra._internal.defaults_list._create_interpolation_map(overrides, defaults, self_added)` and
  `InputDefault.is_interpolation()`: built for every loaded config, read only by an interpolating defaults list.
- `ConfigStore.store` and `ConfigStore.__deepcopy__` (replaced within `compose_patched`), `ConfigStore.repo`
  (nested dicts of `<name>.yaml` -> `ConfigNode`) and `ConfigStore.load()` shallow-copying a `ConfigNode` and
  setting a deep copy of its `node` on the copy: `store_lazily`.
- `hydra._internal.core_plugins.basic_sweeper.BasicSweeper`: its `_target_` path and
  `split_arguments(overrides, max_batch_size)`, the grid's job order (`basic_sweep_jobs`).
- `hydra.core.override_parser.overrides_parser.OverridesParser.create().parse_overrides` and the `Override`
  methods used by `parse_overrides`'s callers (undocumented; sweeper plugins use it); `Override.sweep_iterator`
  with `Transformer.encode` (`sweep_values`, the search space of tfrun's Optuna sweeper).
- `Plugins.instance()`'s `_register(clazz)` and its `is_in_toplevel_plugins_module(name)` check (a sweeper's
  `_target_` must otherwise live in a `hydra_plugins` package): `register_plugin`, tfrun's own Optuna sweeper
  under its own module path.
- `GlobalHydra.instance().config_loader().load_sweep_config(master_config, sweep_overrides)` and
  `HydraConfig.instance().set_config` / `.cfg`: a grid job's config as the launcher makes it
  (`sweep_job_composer`); `BasicSweeper.validate_batch_is_legal` composing each job of a batch with the same
  `load_sweep_config` call the basic and joblib launchers then make, its result discarded (`compose_each_grid_job_once`).
- `Override.value_type` (its `ValueType` names), a sweep's `tags` and `RangeSweep`'s `start`, `stop`, `step`
  (`hydra.core.override_parser.types`): what kind of sweep an override is (`sweep_kind`, `sweep_tags`,
  `range_arguments`).
- `hydra._internal.utils.create_automatic_config_search_path(None, None, config_path)`, `ConfigSearchPath.prepend
  (provider="command-line", path, anchor=SearchPathQuery(provider="schema"))` (what `_run_hydra` does for
  `--config-dir`), `Hydra.create_main_hydra2(task_name, config_search_path)`, `Hydra.compose_config(config_name,
  overrides, run_mode, with_log_configuration)` and `GlobalHydra.instance().hydra`: the command's composition in
  this process, for the Python API (`composer`).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable

import hydra._internal.utils as hydra_utils
from hydra._internal import defaults_list
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.hydra import Hydra
from hydra.core.config_store import ConfigNode, ConfigStore
from hydra.core.default_element import InputDefault
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

WRITTEN_FOR = "1.3.8"  # the hydra-core version every item of the docstring was checked against
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
MODE_OVERRIDE = "hydra.mode=RUN"  # what Hydra's _run_app adds for a run when no config sets hydra.mode


# ------------------------------------------------------------------ the command line
def hydra_flags() -> set[str]:
    """Hydra's command-line flags without their dashes (`multirun`, `m`, `config-dir`, ...)."""
    return {o.lstrip("-") for a in hydra_utils.get_args_parser()._actions for o in a.option_strings}


def is_single_run(argv: list[str]) -> bool:
    """Whether Hydra reads argv as one run (no -m, --cfg, --help, --hydra-help, --info, completion)."""
    parser = hydra_utils.get_args_parser()
    parser.exit_on_error = False  # a bad flag is Hydra's to report
    try:
        args, _ = parser.parse_known_args(argv)
    except argparse.ArgumentError:
        return False
    return not (args.multirun or args.cfg or args.help or args.hydra_help or args.info or args.shell_completion)


def plain_multirun_overrides(argv: list[str]) -> list[str] | None:
    """A multirun (-m) over tfrun's own configs — no --cfg, --help, --info, completion, rerun, other config
    folder or name — as Hydra reads argv: its overrides; None for anything else."""
    parser = hydra_utils.get_args_parser()
    parser.exit_on_error = False
    try:
        args, _ = parser.parse_known_args(argv)
    except argparse.ArgumentError:
        return None
    other = args.cfg or args.help or args.hydra_help or args.info or args.shell_completion or args.experimental_rerun
    if not args.multirun or other or args.config_dir or args.config_path or args.config_name:
        return None
    return list(args.overrides)


_SWEEP_KINDS = {  # Override.value_type's names, as the grammar's functions say them
    "CHOICE_SWEEP": "choice",
    "SIMPLE_CHOICE_SWEEP": "choice",
    "GLOB_CHOICE_SWEEP": "glob",
    "RANGE_SWEEP": "range",
    "INTERVAL_SWEEP": "interval",
}


def sweep_kind(token: str) -> str | None:
    """The kind of sweep a `key=value` override is (choice, glob, range, interval; None for one value); raises
    Hydra's OverrideParseException (hydra.errors) for one its grammar cannot read."""
    (override,) = parse_overrides([token])
    if not override.is_sweep_override():
        return None
    return _SWEEP_KINDS.get(override.value_type.name, override.value_type.name.lower())


def sweep_tags(token: str) -> set[str]:
    """The tags of a `tag(...)` sweep override (empty for any other)."""
    (override,) = parse_overrides([token])
    return set(getattr(override.value(), "tags", None) or ())


def range_arguments(token: str) -> tuple[float, float, float] | None:
    """(start, stop, step) of a `range(...)` override, None for any other."""
    from hydra.core.override_parser.types import RangeSweep

    (override,) = parse_overrides([token])
    value = override.value()
    return (value.start, value.stop, value.step) if isinstance(value, RangeSweep) else None


def parse_overrides(tokens: Iterable[str]) -> list[Any]:
    """Hydra's `Override` objects for override strings (raises Hydra's error on one it cannot parse)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides(list(tokens))


def sweep_values(override: Any) -> list[Any]:
    """The values of a choice or range sweep `Override`, as Python values (not their strings)."""
    from hydra.core.override_parser.types import Transformer

    return list(override.sweep_iterator(transformer=Transformer.encode))


def register_plugin(clazz: type) -> None:
    """Let `_target_: <clazz's dotted path>` name a Hydra plugin (tfrun's sweeper) that lives outside
    `hydra_plugins` (the wheel has one top-level name, `tfrun`): registered in this process's plugin table."""
    from hydra.core.plugins import Plugins

    plugins = Plugins.instance()
    name = f"{clazz.__module__}.{clazz.__name__}"
    if plugins.class_name_to_class.get(name) is clazz:
        return
    plugins._register(clazz)
    allowed = plugins.is_in_toplevel_plugins_module

    def in_plugins_module(classname: str) -> bool:
        return classname == name or allowed(classname)

    plugins.is_in_toplevel_plugins_module = in_plugins_module  # type: ignore[method-assign]


@contextmanager
def errors_first_to(on_error: Callable[[Exception], None]) -> Iterator[None]:
    """Within: an error of `hydra.main`'s composition or app goes to `on_error` before Hydra reports it.

    `on_error` may raise (SystemExit, say) to report it its own way; if it returns, Hydra reports the error.
    """
    run_and_report = hydra_utils.run_and_report

    def guarded(func: Callable[[], Any]) -> Any:
        def call() -> Any:
            try:
                return func()
            except Exception as exc:
                on_error(exc)
                raise

        return run_and_report(call)

    hydra_utils.run_and_report = guarded
    try:
        yield
    finally:
        hydra_utils.run_and_report = run_and_report


# ------------------------------------------------------------------ grid sweeps
def is_basic_sweeper(sweeper: Any) -> bool:
    """Whether a `hydra.sweeper` node is Hydra's basic (grid) sweeper."""
    return sweeper.get("_target_") == BASIC_SWEEPER


def basic_sweep_jobs(overrides: Iterable[str]) -> list[list[str]]:
    """Every job's overrides of a grid over `overrides`, in the basic sweeper's job-number order."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    batches = BasicSweeper.split_arguments(parse_overrides(overrides), max_batch_size=None)
    return [list(job) for batch in batches for job in batch]


@contextmanager
def sweep_job_composer(config: DictConfig) -> Iterator[Callable[[list[str]], DictConfig]]:
    """Within: `compose(overrides)` gives a grid job's config as the basic sweeper and launcher make it,
    with HydraConfig set to that job's (its own choices), as the launcher sets it; restored after."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    loader = GlobalHydra.instance().config_loader()
    previous = HydraConfig.instance().cfg

    def compose(overrides: list[str]) -> DictConfig:
        job_cfg = loader.load_sweep_config(master_config=config, sweep_overrides=list(overrides))
        HydraConfig.instance().set_config(job_cfg)
        return job_cfg

    try:
        yield compose
    finally:
        HydraConfig.instance().cfg = previous  # type: ignore[assignment]


def compose_each_grid_job_once(config: DictConfig, jobs: list[list[str]]) -> Callable[[], None]:
    """Until the returned function is called: a grid job's config, composed for the basic sweeper's check of its
    batch (`validate_batch_is_legal`, which discards it), is handed to the launcher instead of being composed again.

    Each composition is reused once, for the same master config and the same overrides, so a config a caller changed
    is never handed out twice; jobs not in `jobs` (a sweeper's later trials) compose as Hydra does.
    """
    from hydra.core.global_hydra import GlobalHydra

    loader = GlobalHydra.instance().config_loader()
    compose = loader.load_sweep_config
    planned = {tuple(job) for job in jobs}
    kept: dict[tuple[str, ...], DictConfig] = {}

    def load_sweep_config(master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        key = tuple(sweep_overrides)
        if master_config is not config or key not in planned:
            return compose(master_config, sweep_overrides)
        if key in kept:
            return kept.pop(key)
        kept[key] = composed = compose(master_config, sweep_overrides)
        return composed

    loader.load_sweep_config = load_sweep_config  # type: ignore[method-assign]

    def restore() -> None:
        kept.clear()
        if loader.load_sweep_config is load_sweep_config:
            del loader.load_sweep_config  # the class's method again

    return restore


# ------------------------------------------------------------------ the ConfigStore, lazily
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


def store_lazily(
    name: str, schema: type, group: str | None = None, package: str | None = None, provider: str | None = None
) -> None:
    """ConfigStore.instance().store(name, node=schema, group, package, provider), made into its DictConfig on
    first load, not now (1-2 ms each, and a composition loads one option per group): same config, same checks."""
    folder = ConfigStore.instance().repo
    for part in (group or "").split("/"):
        if part:
            folder = folder.setdefault(part, {})
    name = name if name.endswith(".yaml") else f"{name}.yaml"
    folder[name] = LazyConfigNode(name, schema, group, package, provider)


# ------------------------------------------------------------------ one composition for a single run
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
    """ConfigStore.store, with a dataclass made into its DictConfig on first load (store_lazily)."""
    if isinstance(node, type) and dataclasses.is_dataclass(node):
        store_lazily(name, node, group, package, provider)
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


@contextmanager
def compose_patched(single_run: bool) -> Iterator[None]:
    """Within: cheaper compositions, and for a single run one composition instead of two.

    Hydra 1.3's `_run_hydra` composes the whole config in `Hydra.get_mode()` only to read `hydra.mode`,
    then composes it again in `Hydra.run()`; each walks the whole config (deepcopy dominates). For a single
    run, get_mode composes the way the run will (RUN mode) and the run's composition takes that result. One
    that fails in RUN mode (a sweep override without -m, a missing default) falls back to Hydra's own
    get_mode, so -m, a config that sets hydra.mode, sweepers, launchers and Hydra's messages are unchanged.

    Always: deep copies of Hydra's config repository (one per composition and per sweep job) share the
    ConfigStore singleton, as in Hydra's main branch (facebookresearch/hydra#2928), since ConfigStore.load()
    hands out copies anyway; the plugins' dataclasses (joblib, optuna, submitit) are stored lazily as tfrun's
    schemas are (`store_lazily`); and the map of every group's choice is built only for a defaults list
    that interpolates (`- db: ${db_choice}`), the only reader.
    """
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


# ------------------------------------------------------------------ the command's composition, in-process
@contextmanager
def composer(config_path: str, config_dir: str | None = None) -> Iterator[Callable[[list[str], bool], DictConfig]]:
    """Within: `compose(overrides, multirun)` gives the config (with its `hydra` node) that `hydra.main` over
    `config_path` composes for that command line, `--config-dir config_dir` included (prepended before the
    structured schemas, as `_run_hydra` does), with GlobalHydra and HydraConfig set as for the command's run, so
    `sweep_job_composer` and validation work as in the command. The process's own GlobalHydra and HydraConfig
    (a notebook's `hydra.initialize`, say) are restored after."""
    import os

    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    search_path = hydra_utils.create_automatic_config_search_path(None, None, config_path)
    if config_dir is not None:
        search_path.prepend(
            provider="command-line",
            path=f"file://{os.path.abspath(config_dir)}",
            anchor=SearchPathQuery(provider="schema"),
        )
    global_hydra = GlobalHydra.instance()
    previous = (global_hydra.hydra, HydraConfig.instance().cfg)
    global_hydra.hydra = None
    try:
        hydra = Hydra.create_main_hydra2(task_name="tfrun", config_search_path=search_path)

        def compose(overrides: list[str], multirun: bool = False) -> DictConfig:
            cfg = hydra.compose_config(
                "config",
                list(overrides),
                run_mode=RunMode.MULTIRUN if multirun else RunMode.RUN,
                with_log_configuration=False,
            )
            HydraConfig.instance().set_config(cfg)
            return cfg

        yield compose
    finally:
        global_hydra.hydra, HydraConfig.instance().cfg = previous  # type: ignore[assignment]
