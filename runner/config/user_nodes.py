"""The user's own `model`, `data` and `train.extra_callbacks` nodes: completed, checked, recorded.

A `model` or `data` node that no tfrun schema types (a user's `conf/model/tiny.yaml` holding
`_target_: mymodels.build`) is the user's. Before anything runs it is checked against the
function's signature, read from source by tfrun.runner.config.user_code (nothing of the user's is imported):
the module and function exist, every key is a parameter, every required parameter is given.
tfrun.runner.config.unknown_keys leaves these nodes alone; this module is their key check.

Keys of a user node:
- its own: passed to the function as keyword arguments;
- tfrun's (RESERVED): `name` (model and data; defaults to the config option's name and makes
  `model_name`), and for data `holdout_fraction`, `validation_fraction`, `limit`,
  `shuffle_buffer` (tfrun's defaults are filled in, so the record shows what was used). tfrun
  reads them, and also passes them to the function when its signature names them;
- supplied by tfrun (SUPPLIED), never written in the node: a model builder gets the data's input
  spec, a data loader the run's seed, each only if its signature names it (or takes **kwargs).
The calling side (and the contract for what the functions return) is tasks/user_calls.py.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from omegaconf import DictConfig, OmegaConf, open_dict

from tfrun.runner.config import user_code
from tfrun.tasks.core.git import git_state
from tfrun.tasks.core.problems import Problem, at_least, between, did_you_mean
from tfrun.tasks.core.record_io import sanitize
from tfrun.tasks.core.user_keys import DATA_DEFAULTS, HYDRA_KEYS, RESERVED, SUPPLIED

EXAMPLE = {"model": "mymodels.build", "data": "mydata.load", "callback": "mycallbacks.StopEarly"}


def is_user_node(node: Any) -> bool:
    """A config node no schema dataclass types: the user's own (tfrun's nodes are all typed)."""
    return (
        isinstance(node, DictConfig)
        and not node._is_none()
        and not node._is_missing()
        and OmegaConf.get_type(node) is dict
    )


def complete(cfg: DictConfig) -> None:
    """Fill the tfrun keys a user node leaves out (`name`, data split defaults), before interpolation.

    `name` defaults to the config option's name (`model=tiny` -> tiny), else the function's name, so
    `model_name: ${data.name}_${model.name}` resolves for a node that does not set one.
    """
    for group in ("data", "model"):
        node = cfg.get(group)
        if not is_user_node(node):
            continue
        with open_dict(node):
            if "name" not in node:
                node["name"] = _choice(group) or str(node.get("_target_") or group).rpartition(".")[2]
            if group == "data":
                for key, value in DATA_DEFAULTS.items():
                    if key not in node:
                        node[key] = value


def _choice(group: str) -> Optional[str]:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    choice = HydraConfig.get().runtime.choices.get(group)
    return str(choice).rpartition("/")[2] if choice else None


# ------------------------------------------------------------------------------ typed stand-ins
@dataclass
class UserModel:
    """A user's model node, with what validate's cross-group rules read from a model config."""

    target: Any
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    needs_images: bool = False  # the user's builder decides what it takes

    def problems(self) -> Iterator[Problem]:
        yield from target_problems("model", "model", self.target, {"name": self.name, **self.params})


@dataclass
class UserData:
    """A user's data node: its own keys, plus the split settings tfrun applies."""

    target: Any
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    holdout_fraction: Any = 0.2
    validation_fraction: Any = 0.1
    limit: Any = None
    shuffle_buffer: Any = 10_000
    image_shape: None = None  # the loader gives the shape

    def problems(self) -> Iterator[Problem]:
        numbers = {
            "data.holdout_fraction": self.holdout_fraction,
            "data.validation_fraction": self.validation_fraction,
            "data.shuffle_buffer": self.shuffle_buffer,
            "data.limit": self.limit,
        }
        bad = [
            k
            for k, v in numbers.items()
            if not (isinstance(v, (int, float)) and not isinstance(v, bool)) and not (k == "data.limit" and v is None)
        ]
        for key in bad:
            yield Problem(key, numbers[key], "a number" + (" or null" if key == "data.limit" else ""))
        if "data.holdout_fraction" not in bad:
            yield from between("data.holdout_fraction", self.holdout_fraction, 0.0, 1.0)
        if "data.validation_fraction" not in bad:
            yield from between("data.validation_fraction", self.validation_fraction, 0.0, 1.0, low_inclusive=True)
        if "data.shuffle_buffer" not in bad:
            yield from at_least("data.shuffle_buffer", self.shuffle_buffer, 1)
        if self.limit is not None and "data.limit" not in bad:
            yield from at_least("data.limit", self.limit, 20)
        node = {"name": self.name, **self.params, **{k.split(".")[1]: v for k, v in numbers.items()}}
        yield from target_problems("data", "data", self.target, node)


def adopt(config: Any) -> None:
    """Replace the plain dicts OmegaConf.to_object made of user nodes with UserModel / UserData."""
    for group, kind in (("model", UserModel), ("data", UserData)):
        node = getattr(config, group)
        if isinstance(node, dict):
            params = {k: v for k, v in node.items() if k not in HYDRA_KEYS and k not in RESERVED[group]}
            tfrun_keys = {k: node[k] for k in RESERVED[group] if k in node and k != "name"}
            setattr(
                config,
                group,
                kind(target=node.get("_target_"), name=str(node.get("name", group)), params=params, **tfrun_keys),
            )


def callback_problems(callbacks: Any) -> Iterator[Problem]:
    """train.extra_callbacks: a list of `_target_` nodes, each checked like a model node."""
    if not isinstance(callbacks, list):
        yield Problem("train.extra_callbacks", callbacks, "a list of nodes with a _target_ (tf-keras callbacks)")
        return
    for i, node in enumerate(callbacks):
        key = f"train.extra_callbacks[{i}]"
        if not isinstance(node, dict):
            yield Problem(
                key, node, "a node with a _target_, e.g. {_target_: tf_keras.callbacks.CSVLogger, filename: epochs.csv}"
            )
            continue
        yield from target_problems(key, "callback", node.get("_target_"), node)


def target_problems(key: str, kind: str, target: Any, node: dict[str, Any]) -> Iterator[Problem]:
    """The module and callable exist; the node's keys are its parameters; its required ones are given."""
    if target is None:
        yield Problem(f"{key}._target_", None, f"the dotted path of your function, e.g. {EXAMPLE[kind]}")
        return
    found = user_code.find(target)
    if isinstance(found, user_code.NotFound):
        yield Problem(f"{key}._target_", target, found.reason)
        return
    supplied, reserved = SUPPLIED[kind], RESERVED[kind]
    own = [k for k in node if k not in HYDRA_KEYS and k not in reserved]
    for k in own:
        if k in supplied:
            source = "the data" if kind == "model" else "train.seed"
            yield Problem(f"{key}.{k}", node[k], f"no {k} here: tfrun passes {k} to {target} from {source}")
    signature = found.signature
    if signature is None:  # cannot be read without running it: the call in the child reports bad keys
        return
    params = ", ".join(p for p in signature.accepted if p not in supplied) or "(none)"
    for k in own:
        if k not in supplied and k not in signature.accepted and not signature.var_keyword:
            close = did_you_mean(k, [p for p in signature.accepted if p not in supplied], n=2)
            yield Problem(f"{key}.{k}", node[k], f"a parameter of {target} ({found.where}): {params}{close}")
    for p in signature.required:
        if p not in node and p not in supplied:
            yield Problem(
                f"{key}.{p}", "???", f"a value: {target} ({found.where}) requires {p!r} and the config does not give it"
            )


def retargeted_problems(config: Any) -> Iterator[Problem]:
    """A tfrun model/data node whose `_target_` was changed (`model._target_=mymodels.build`): the module and
    callable must exist, checked like a user node's (from source, nothing run), so a typo costs no TensorFlow
    start. Its keys stay tfrun's schema's, so no signature check."""
    for group in ("data", "model"):
        node = getattr(config, group)
        if isinstance(node, (UserModel, UserData)):
            continue
        fields = getattr(type(node), "__dataclass_fields__", {})
        target = getattr(node, "_target_", None)
        if "_target_" not in fields or target == fields["_target_"].default:
            continue  # tfrun's own function, as shipped
        found = user_code.find(target)
        if isinstance(found, user_code.NotFound):
            yield Problem(f"{group}._target_", target, found.reason)


# ------------------------------------------------------------------------------------ the record
def targets(config: Any) -> dict[str, str]:
    """Config key -> `_target_` of every user node of a validated config."""
    found: dict[str, str] = {}
    for group in ("data", "model"):
        node = getattr(config, group)
        if isinstance(node, (UserModel, UserData)):
            found[group] = str(node.target)
    for i, node in enumerate(getattr(config.train, "extra_callbacks", None) or []):
        found[f"train.extra_callbacks[{i}]"] = str(node["_target_"])
    return found


def provenance(config: Any) -> dict[str, dict[str, Any]]:
    """For the record: each user `_target_`, its source file's sha256, and the git state of its project."""
    entries: dict[str, dict[str, Any]] = {}
    repos: dict[str, dict[str, Any]] = {}
    for key, target in targets(config).items():
        found = user_code.find(target)
        file = found.file if isinstance(found, user_code.Found) else None
        entry: dict[str, Any] = {"target": target, "file": None, "sha256": None}
        if file is not None and file.is_file():
            entry["file"] = _recorded_path(file)
            entry["sha256"] = hashlib.sha256(file.read_bytes()).hexdigest()
            folder = str(file.parent)
            if folder not in repos:
                repos[folder] = git_state(file.parent, untracked_is_dirty=False)
            entry.update(repos[folder])
        entries[key] = entry
    return entries


def _recorded_path(file: Path) -> str:
    """Relative to the working dir when under it; otherwise with machine prefixes hidden (tfrun.runner.records.record)."""
    rel = os.path.relpath(file)
    return rel if not rel.startswith("..") else sanitize(str(file))
