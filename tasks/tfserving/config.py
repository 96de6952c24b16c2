"""What the server serves: model configs (name, base path, version policy, labels) and batching.

Parses TF Serving's own files: `--model_config_file` (a text-format ModelServerConfig) and
`--batching_parameters_file` (a text-format BatchingParameters). Imports protobuf only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from tfrun.tasks.tfserving.status import Code, ServingError, invalid


# ------------------------------------------------------------------------------------ version policy
@dataclass(frozen=True)
class VersionPolicy:
    """TF Serving's ServableVersionPolicy: latest N (default 1), all, or specific versions."""

    kind: str = "latest"  # latest | all | specific
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def aspired(self, on_disk: Iterable[int]) -> set[int]:
        found = sorted(set(on_disk))
        if self.kind == "all":
            return set(found)
        if self.kind == "specific":
            return set(found) & set(self.versions)
        return set(found[-max(self.num_versions, 1) :]) if found else set()

    def describe(self) -> str:
        if self.kind == "latest":
            return f"latest {self.num_versions}"
        if self.kind == "specific":
            return "specific " + ",".join(map(str, self.versions))
        return "all"


@dataclass
class ModelConfig:
    name: str
    base_path: str
    policy: VersionPolicy = field(default_factory=VersionPolicy)
    labels: dict[str, int] = field(default_factory=dict)
    platform: str = "tensorflow"


def _proto_module():
    from tensorflow_serving.config import model_server_config_pb2

    return model_server_config_pb2


def configs_from_proto(proto) -> list[ModelConfig]:
    """ModelServerConfig -> ModelConfigs (only model_config_list is supported, as in TF Serving's reload)."""
    which = proto.WhichOneof("config")
    if which is None:
        return []
    if which != "model_config_list":
        raise invalid(
            "ServerModelConfig type not supported by HandleReloadConfigRequest. "
            "Only ModelConfigList is currently supported"
        )
    configs = []
    for c in proto.model_config_list.config:
        policy = VersionPolicy()
        choice = c.model_version_policy.WhichOneof("policy_choice")
        if choice == "latest":
            policy = VersionPolicy("latest", num_versions=c.model_version_policy.latest.num_versions or 1)
        elif choice == "all":
            policy = VersionPolicy("all")
        elif choice == "specific":
            policy = VersionPolicy("specific", versions=tuple(sorted(c.model_version_policy.specific.versions)))
        configs.append(
            ModelConfig(
                name=c.name,
                base_path=c.base_path,
                policy=policy,
                labels=dict(c.version_labels),
                platform=c.model_platform or "tensorflow",
            )
        )
    return configs


def configs_to_proto(configs: list[ModelConfig]):
    """ModelConfigs -> ModelServerConfig (what a client sends in HandleReloadConfigRequest)."""
    pb = _proto_module()
    proto = pb.ModelServerConfig()
    for c in configs:
        entry = proto.model_config_list.config.add(name=c.name, base_path=c.base_path, model_platform=c.platform)
        if c.policy.kind == "latest":
            entry.model_version_policy.latest.num_versions = c.policy.num_versions
        elif c.policy.kind == "all":
            entry.model_version_policy.all.SetInParent()
        else:
            entry.model_version_policy.specific.versions.extend(c.policy.versions)
        for label, version in c.labels.items():
            entry.version_labels[label] = version
    return proto


def parse_model_config_text(text: str, relative_to: Optional[Path] = None) -> list[ModelConfig]:
    from google.protobuf import text_format

    pb = _proto_module()
    try:
        proto = text_format.Parse(text, pb.ModelServerConfig())
    except text_format.ParseError as err:
        raise invalid(f"Invalid protobuf file: model config: {err}") from None
    configs = configs_from_proto(proto)
    for c in configs:  # TF Serving wants absolute paths; relative ones are taken from the config file's folder
        if c.base_path and not os.path.isabs(c.base_path) and "://" not in c.base_path:
            c.base_path = str(((relative_to or Path.cwd()) / c.base_path).resolve())
    return configs


def read_model_config_file(path: str | Path) -> list[ModelConfig]:
    path = Path(path)
    return parse_model_config_text(path.read_text(), relative_to=path.resolve().parent)


def validate_configs(configs: list[ModelConfig]) -> None:
    """TF Serving's ValidateModelConfigList rules (names unique, a base path, the tensorflow platform)."""
    seen: set[str] = set()
    for c in configs:
        if not c.name:
            raise invalid("Model config is missing a name")
        if "/" in c.name or ".." in c.name or c.name.startswith("."):
            raise invalid(f"Model name {c.name!r} is not one path segment (no '/', no '..', not starting with '.')")
        if c.name in seen:
            raise invalid(f"Illegal to list model {c.name} multiple times in config list")
        seen.add(c.name)
        if not c.base_path:
            raise invalid(f"Model {c.name} has no base_path")
        if c.platform not in ("tensorflow", ""):
            raise ServingError(Code.INVALID_ARGUMENT, f"Model {c.name} requests unsupported platform {c.platform}")
        if c.policy.kind == "specific" and not c.policy.versions:
            raise invalid(f"Model {c.name}: specific version policy lists no versions")


# ------------------------------------------------------------------------------------------ batching
@dataclass
class BatchingParameters:
    """TF Serving's BatchingParameters (session_bundle_config.proto); defaults as its batch scheduler's."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    allowed_batch_sizes: list[int] = field(default_factory=list)
    pad_variable_length_inputs: bool = False
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: Optional[int] = None
    thread_pool_name: str = "model_server_batch_threads"

    def validate(self) -> None:
        if self.max_batch_size < 1:
            raise invalid("max_batch_size must be positive")
        if self.batch_timeout_micros < 0:
            raise invalid("batch_timeout_micros must be non-negative")
        if self.num_batch_threads < 1:
            raise invalid("num_batch_threads must be positive")
        if self.max_enqueued_batches < 1:
            raise invalid("max_enqueued_batches must be positive")
        sizes = self.allowed_batch_sizes
        if sizes:
            if any(b <= a for a, b in zip(sizes, sizes[1:])) or sizes[0] < 1:
                raise invalid("allowed_batch_sizes entries must be monotonically increasing")
            if sizes[-1] != self.max_batch_size:
                raise invalid(
                    "Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                    f"{sizes[-1]}; expected {self.max_batch_size}"
                )

    def to_text(self) -> str:
        """The text format TF Serving's --batching_parameters_file reads."""
        lines = [
            f"max_batch_size {{ value: {self.max_batch_size} }}",
            f"batch_timeout_micros {{ value: {self.batch_timeout_micros} }}",
            f"max_enqueued_batches {{ value: {self.max_enqueued_batches} }}",
            f"num_batch_threads {{ value: {self.num_batch_threads} }}",
        ]
        lines += [f"allowed_batch_sizes: {b}" for b in self.allowed_batch_sizes]
        if self.pad_variable_length_inputs:
            lines.append("pad_variable_length_inputs: true")
        if self.enable_large_batch_splitting:
            lines.append("enable_large_batch_splitting { value: true }")
        if self.max_execution_batch_size is not None:
            lines.append(f"max_execution_batch_size {{ value: {self.max_execution_batch_size} }}")
        return "\n".join(lines) + "\n"


_WRAPPED = re.compile(r"(\w+)\s*\{\s*value\s*:\s*(\"[^\"]*\"|[^\s}]+)\s*\}")
_PLAIN = re.compile(r"(\w+)\s*:\s*(\"[^\"]*\"|[^\s{}]+)")
_INT_FIELDS = {
    "max_batch_size",
    "batch_timeout_micros",
    "max_enqueued_batches",
    "num_batch_threads",
    "max_execution_batch_size",
}
_BOOL_FIELDS = {"pad_variable_length_inputs", "enable_large_batch_splitting"}


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    raise ValueError(text)


def parse_batching_parameters(text: str) -> BatchingParameters:
    """Parse the text format of BatchingParameters (wrapper fields `name { value: N }`)."""
    params = BatchingParameters()
    rest = _WRAPPED.sub(" ", re.sub(r"#[^\n]*", "", text))
    items = [(m.group(1), m.group(2)) for m in _WRAPPED.finditer(re.sub(r"#[^\n]*", "", text))]
    items += [(m.group(1), m.group(2)) for m in _PLAIN.finditer(rest)]
    leftover = _PLAIN.sub(" ", rest).strip()
    if leftover:
        raise invalid(f"Invalid batching parameters: cannot parse {leftover[:80]!r}")
    try:
        for name, raw in items:
            value = raw.strip('"')
            if name in _INT_FIELDS:
                setattr(params, name, int(value))
            elif name in _BOOL_FIELDS:
                setattr(params, name, _bool(value))
            elif name == "allowed_batch_sizes":
                params.allowed_batch_sizes.append(int(value))
            elif name == "thread_pool_name":
                params.thread_pool_name = value
            else:
                raise invalid(f"Invalid batching parameters: unknown field {name!r}")
    except ValueError as err:
        raise invalid(f"Invalid batching parameters: {err}") from None
    params.validate()
    return params


def read_batching_parameters(path: str | Path) -> BatchingParameters:
    return parse_batching_parameters(Path(path).read_text())
