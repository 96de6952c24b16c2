"""Records of older schema versions, read as records written now.

Schema 1 is every record written before tfrun became one package: its config names tfrun's own code by the old
top-level modules (`_target_: tasks.data.load_digits`, Hydra callbacks `runner.sweep_callback.SweepSummary`).
`upgrade` maps those names to today's (`tfrun.tasks.data.load_digits`, `tfrun.runner.sweeps.callback.SweepSummary`),
in the resolved config and in the recorded command (which `tfrun-records rerun` replays), and recomputes the
hashes taken over the config, so an old run shows, diffs, reruns and verifies like a new one. Only tfrun's own old
names are mapped, and only in records older than the current schema: a user's `_target_` (listed under
`code.user`) and anything in a current record are left as they are. The file itself is never rewritten; what was
recorded before the mapping is kept under `upgraded_from`.

A record of any schema written before the config gained a key (`alias`, `k8s`, `track.register`, ...) reads with it
at the default of the option the record chose: `Config`'s field, or `SCHEMAS[group][name]`'s dataclass for a group
node, nested dataclasses too (`fill`), so a key added later needs no edit here. A key whose default would change
what the old run did is taken from the record instead (CHOSEN_BY_RECORD: `sweep`, as its command chose it). The
hashes are retaken over the filled config; the keys added and the hashes as written are kept under
`config_keys_added`.

A pure function of the parsed record: it imports nothing that reads files, and leaves a value of an unexpected
shape (a damaged record) as it is, so the validating loader can say what is wrong.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from enum import Enum
from typing import Any, Callable

from omegaconf import MISSING

from tfrun.tasks.core.record_io import SCHEMA_VERSION, config_hash, resume_key
from tfrun.tasks.core.schema import SCHEMAS, Config, field_default
from tfrun.tasks.core.schema.sweep import defaults as sweep_defaults

PACKAGE = "tfrun"
OLD_PACKAGES = ("tasks", "runner")  # top-level import names before the move; now tfrun.tasks, tfrun.runner
RENAMED_MODULES = {  # old modules that did not just move under tfrun (the two aliases removed with the move)
    "runner.sweep_callback": "tfrun.runner.sweeps.callback",
    "runner.optuna_resume": "tfrun.runner.sweeps.optuna_resume",
}
TARGET_KEY = "_target_"
_OLD_PATH = re.compile(r"(?<![\w.])(?:%s)\.[A-Za-z_][\w.:]*" % "|".join(OLD_PACKAGES))
_TARGET_IN_VALUE = re.compile(r"""(%s['"]?\s*[:=]\s*['"]?)([A-Za-z_][\w.:]*)""" % TARGET_KEY)


def module_path(path: str) -> str:
    """Today's dotted path for one of tfrun's old ones (`tasks.model.build_mlp`); any other path unchanged."""
    for old, new in RENAMED_MODULES.items():
        if path == old or path.startswith((f"{old}.", f"{old}:")):
            return new + path[len(old) :]
    head = re.split(r"[.:]", path, maxsplit=1)[0]
    return f"{PACKAGE}.{path}" if head in OLD_PACKAGES and path != head else path


def override(text: str) -> str:
    """An override (`strategy._target_=tasks.strategy.mirrored`, `+train.extra_callbacks=[{_target_: ...}]`) with
    tfrun's old module paths mapped where a `_target_` takes them; other values (file names...) unchanged."""
    key, eq, value = text.partition("=")
    if not eq:
        return text
    if key.lstrip("+~").endswith(TARGET_KEY):  # the value is one path, or a sweep's choice of them
        return f"{key}={_OLD_PATH.sub(lambda m: module_path(m.group(0)), value)}"
    return f"{key}={_TARGET_IN_VALUE.sub(lambda m: m.group(1) + module_path(m.group(2)), value)}"


def config(node: Any, user_keys: frozenset[str] = frozenset(), where: str = "") -> Any:
    """A copy of a resolved config with every `_target_` of tfrun's mapped; the nodes at `user_keys` (config keys
    as `code.user` names them: `model`, `train.extra_callbacks[0]`) are the user's and kept."""
    if isinstance(node, dict):
        mine = where not in user_keys
        return {
            k: module_path(v)
            if k == TARGET_KEY and isinstance(v, str) and mine
            else config(v, user_keys, f"{where}.{k}" if where else str(k))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [config(v, user_keys, f"{where}[{i}]") for i, v in enumerate(node)]
    return node


def _version(record: dict[str, Any]) -> int:
    version = record.get("schema_version", 1)
    return version if isinstance(version, int) and not isinstance(version, bool) else SCHEMA_VERSION


# Keys whose default is not what an older run had: filled from what its record says instead of from the schema.
# `sweep` is the search the run was a job of, as its command chose it (none, optuna's defaults, vertex).
def _chosen_sweep(record: dict[str, Any]) -> dict[str, Any]:
    overrides = (record.get("command") or {}).get("overrides") if isinstance(record.get("command"), dict) else None
    chosen = [o.split("=", 1)[1] for o in overrides or [] if isinstance(o, str) and o.startswith("sweep=")]
    return sweep_defaults(chosen[-1] if chosen else "none")


CHOSEN_BY_RECORD: dict[str, Callable[[dict[str, Any]], Any]] = {"sweep": _chosen_sweep}
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")
_UNSET = object()


def _plain(value: Any) -> Any:
    """A default as a record holds it: an enum as its value, a dataclass as a dict."""
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _lookup(root: dict[str, Any], path: str) -> Any:
    node: Any = root
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _UNSET
        node = node[part]
    return node


def _resolved(value: Any, root: dict[str, Any]) -> Any:
    """A default with its `${key}` interpolations resolved against the record's config (as a record holds it
    resolved); _UNSET when one names a key the config lacks or a resolver (`${now:...}`) or is MISSING."""
    if isinstance(value, dict):
        items = {k: _resolved(v, root) for k, v in value.items()}
        return _UNSET if any(v is _UNSET for v in items.values()) else items
    if isinstance(value, list):
        listed = [_resolved(v, root) for v in value]
        return _UNSET if any(v is _UNSET for v in listed) else listed
    if not isinstance(value, str):
        return value
    if value == MISSING:
        return _UNSET
    whole = _INTERPOLATION.fullmatch(value)
    if whole:
        return _lookup(root, whole.group(1))
    parts = [_lookup(root, m.group(1)) for m in _INTERPOLATION.finditer(value)]
    if any(p is _UNSET or isinstance(p, (dict, list)) for p in parts):
        return _UNSET
    text = _INTERPOLATION.sub(lambda m: str(_lookup(root, m.group(1))), value)
    return _UNSET if "${" in text else text


def _option(group: str, node: Any, user_keys: frozenset[str]) -> type | None:
    """The schema of a group node as tfrun's option `name` (None for a user's node or an unknown name)."""
    if group in user_keys or not isinstance(node, dict):
        return None
    schema = SCHEMAS[group].get(str(node.get("name")))
    if schema is None:
        return None
    target = next((f.default for f in dataclasses.fields(schema) if f.name == TARGET_KEY), None)
    if TARGET_KEY in node and node[TARGET_KEY] != target:  # a user's own code under tfrun's name
        return None
    return schema


def _fill_node(node: dict[str, Any], schema: type, root: dict[str, Any], where: str, added: list[str]) -> None:
    """Add the fields of `schema` that `node` lacks, at their defaults; into nested dataclass nodes too."""
    for field_ in dataclasses.fields(schema):
        key = f"{where}.{field_.name}" if where else field_.name
        default = field_default(field_, _UNSET)
        if field_.name in node:
            if isinstance(node[field_.name], dict) and dataclasses.is_dataclass(default):
                _fill_node(node[field_.name], type(default), root, key, added)
            continue
        value = _resolved(_plain(default), root)
        if value is not _UNSET:
            node[field_.name] = value
            added.append(key)


def fill(config: dict[str, Any], record: dict[str, Any]) -> list[str]:
    """Add to `config` (in place) each key the current schema has and it lacks, at the default of the option the
    record chose (CHOSEN_BY_RECORD's keys from the record itself): what a rerun of it composes today. The
    dotted keys added. A user's `_target_` node (listed under `code.user`) and an unknown option are left as
    they are."""
    code = record.get("code")
    user = code.get("user") if isinstance(code, dict) else None
    user_keys = frozenset(user) if isinstance(user, dict) else frozenset()
    added: list[str] = []
    while True:  # again while a pass adds keys: a default may interpolate one added after it (`${models_dir}`)
        more = _fill_pass(config, record, user_keys)
        added += more
        if not more:
            return added


def _fill_pass(config: dict[str, Any], record: dict[str, Any], user_keys: frozenset[str]) -> list[str]:
    """One pass of `fill` over the top level and each node a schema knows; the keys it added."""
    added: list[str] = []
    for key, chosen in CHOSEN_BY_RECORD.items():
        if key not in config:
            config[key] = chosen(record)
            added.append(key)
    for field_ in dataclasses.fields(Config):
        name, node = field_.name, config.get(field_.name, _UNSET)
        if field_.name in SCHEMAS:
            schema = _option(name, node, user_keys)
            if schema is not None:
                _fill_node(node, schema, config, name, added)
            continue
        default = field_default(field_, _UNSET)
        if node is _UNSET:
            value = _resolved(_plain(default), config)
            if value is not _UNSET:
                config[name] = value
                added.append(name)
        elif isinstance(node, dict) and dataclasses.is_dataclass(default) and name not in user_keys:
            _fill_node(node, type(default), config, name, added)
    return added


def added_keys(record: dict[str, Any]) -> dict[str, Any]:
    """The keys (dotted) the current schema would add to the record's config, with their values."""
    config_ = copy.deepcopy(record.get("config"))
    if not isinstance(config_, dict):
        return {}
    return {key: _lookup(config_, key) for key in fill(config_, record)}


def _fill(new: dict[str, Any], record: dict[str, Any], before: dict[str, Any]) -> list[str]:
    """Add the keys new["config"] lacks; retake the hashes over it when the record holds what was hashed (nothing in
    it was redacted), keeping the written ones in `before`. The keys added."""
    old = record["config"]
    added = fill(new["config"], record)
    if record.get("config_sha256") == config_hash(old):
        new["config_sha256"] = config_hash(new["config"])
        before["config_sha256"] = record["config_sha256"]
    if "resume_key" in record and record["resume_key"] == resume_key(old):
        new["resume_key"] = resume_key(new["config"])
        before["resume_key"] = record["resume_key"]
    return added


def _with_added_keys(record: dict[str, Any]) -> dict[str, Any]:
    """A current record written before the schema gained a key: the key at the value the run had (a new dict, with
    what was written under `config_keys_added`); one that has them all as it is."""
    config_, version = record.get("config"), record.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):  # damaged: the loader names it
        return record
    if not isinstance(config_, dict) or not added_keys(record):
        return record
    new = copy.deepcopy(record)
    before: dict[str, Any] = {}
    before["keys"] = _fill(new, record, before)
    new["config_keys_added"] = before
    return new


def upgrade(record: Any) -> Any:
    """The record as the current schema writes it (a new dict); a current or damaged record as it is."""
    if not isinstance(record, dict):
        return record
    if _version(record) >= SCHEMA_VERSION:
        return _with_added_keys(record)
    new = copy.deepcopy(record)
    before: dict[str, Any] = {"schema_version": _version(record)}
    code = record.get("code")
    user = code.get("user") if isinstance(code, dict) else None
    user_keys = frozenset(user) if isinstance(user, dict) else frozenset()
    old = record.get("config")
    if isinstance(old, dict):
        new["config"] = config(old, user_keys)
        added = _fill(new, record, before)
        if added:
            new["config_keys_added"] = {"keys": added}
    command = record.get("command")
    if isinstance(command, dict):
        for key in ("overrides", "argv"):
            if isinstance(command.get(key), list):
                new["command"][key] = [override(v) if isinstance(v, str) else v for v in command[key]]
    new["schema_version"] = SCHEMA_VERSION
    new["upgraded_from"] = before
    return new


def sweep_overrides(manifest: Any) -> list[str]:
    """The task overrides of a sweep's multirun.yaml (as plain data), mapped when a tfrun of schema 1 made the sweep.

    The file holds no schema version: an older tfrun is known by the Hydra callbacks it installed, which name its
    old modules (`runner.sweeps.callback.SweepSummary`)."""
    hydra = manifest.get("hydra") if isinstance(manifest, dict) else None
    hydra = hydra if isinstance(hydra, dict) else {}
    overrides = hydra.get("overrides") if isinstance(hydra.get("overrides"), dict) else {}
    task = [str(o) for o in overrides.get("task") or []]
    callbacks = hydra.get("callbacks") if isinstance(hydra.get("callbacks"), dict) else {}
    targets = [c.get(TARGET_KEY) for c in callbacks.values() if isinstance(c, dict)]
    old = any(isinstance(t, str) and module_path(t) != t for t in targets)
    return [override(o) for o in task] if old else task
