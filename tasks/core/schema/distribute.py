"""Structured configs for distribution: the `strategy` and `cluster` groups.

Their cross-group rules (strategy x hardware x cluster x batch size) are
here too, so everything about distributing a run is checked in one place
before any process starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, Iterator, List, Optional

from omegaconf import MISSING

from tfrun.tasks.core.plans import plan
from tfrun.tasks.core.problems import Problem, at_least
from tfrun.tasks.core.tf_config import TASK_TYPES
from tfrun.tasks.core.tf_config import problems as tf_config_problems


# ----------------------------------------------------------------- strategy
@dataclass
class StrategyConfig:
    _target_: str = MISSING
    name: str = MISSING

    def problems(self) -> Iterator[Problem]:
        return iter(())

    needs_cluster = False  # runs over several processes (TF_CONFIG)
    chief_dispatches = False  # only the chief runs the plan; worker and ps tasks run a server (parameter servers)
    validates = True  # training reports val_* metrics (Keras' fit with validation data)


@dataclass
class DefaultStrategy(StrategyConfig):
    """One device: TensorFlow's default strategy, or OneDeviceStrategy on `device`."""

    _target_: str = "tfrun.tasks.strategy.one_device"
    name: str = "default"
    device: Optional[str] = None  # e.g. "/cpu:0", "/gpu:1"; null = TensorFlow's default placement

    def problems(self) -> Iterator[Problem]:
        if self.device is not None and not self.device.startswith("/"):
            yield Problem("strategy.device", self.device, 'a TensorFlow device name such as "/cpu:0" or "/gpu:0"')


class CrossDeviceOps(Enum):
    auto = "auto"  # NCCL on GPUs, reduction to one device on CPUs
    nccl = "nccl"
    hierarchical_copy = "hierarchical_copy"
    reduction_to_one_device = "reduction_to_one_device"


def _device_names(key: str, devices: Optional[List[str]]) -> Iterator[Problem]:
    if devices is not None and (not devices or any(not d.startswith("/") for d in devices)):
        yield Problem(key, devices, 'null (all local devices) or a list of device names such as ["/cpu:0", "/cpu:1"]')


@dataclass
class MirroredStrategy(StrategyConfig):
    """Synchronous data parallelism over this machine's devices."""

    _target_: str = "tfrun.tasks.strategy.mirrored"
    name: str = "mirrored"
    devices: Optional[List[str]] = None  # null = every GPU, else every logical CPU
    cross_device_ops: CrossDeviceOps = CrossDeviceOps.auto

    def problems(self) -> Iterator[Problem]:
        yield from _device_names("strategy.devices", self.devices)


@dataclass
class CentralStorageStrategy(StrategyConfig):
    """Variables on one device (the CPU), computation mirrored over the others."""

    _target_: str = "tfrun.tasks.strategy.central_storage"
    name: str = "central_storage"
    compute_devices: Optional[List[str]] = None
    parameter_device: Optional[str] = None

    def problems(self) -> Iterator[Problem]:
        yield from _device_names("strategy.compute_devices", self.compute_devices)
        if self.parameter_device is not None and not self.parameter_device.startswith("/"):
            yield Problem("strategy.parameter_device", self.parameter_device, 'a device name such as "/cpu:0"')


class Communication(Enum):
    auto = "auto"
    ring = "ring"
    nccl = "nccl"


@dataclass
class MultiWorkerStrategy(StrategyConfig):
    """MultiWorkerMirroredStrategy: synchronous all-reduce over the processes of a cluster."""

    _target_: str = "tfrun.tasks.strategy.multi_worker"
    name: str = "multi_worker"
    communication: Communication = Communication.auto
    needs_cluster = True


@dataclass
class ParameterServerStrategy(StrategyConfig):
    """Asynchronous training: variables on ps tasks, steps dispatched to workers by the chief."""

    _target_: str = "tfrun.tasks.strategy.parameter_server"
    name: str = "parameter_server"
    min_shard_bytes: int = 256 << 10  # variable partitioning (MinSizePartitioner)
    max_shards: int = 1  # 1 = no partitioning; at most the number of ps tasks is useful
    steps_per_epoch: Optional[int] = None  # null = one pass over the training split
    needs_cluster = True
    chief_dispatches = True
    validates = False  # the coordinator's fit takes no validation data (tfrun.tasks.train.fit_inputs)

    def problems(self) -> Iterator[Problem]:
        yield from at_least("strategy.min_shard_bytes", self.min_shard_bytes, 1)
        yield from at_least("strategy.max_shards", self.max_shards, 1)
        if self.steps_per_epoch is not None:
            yield from at_least("strategy.steps_per_epoch", self.steps_per_epoch, 1)


@dataclass
class TpuStrategy(StrategyConfig):
    """TPUStrategy on a Cloud TPU (VM: tpu=local; node: its name or grpc://host:8470)."""

    _target_: str = "tfrun.tasks.strategy.tpu"
    name: str = "tpu"
    tpu: Optional[str] = None
    connect_timeout_s: float = 60.0  # an unreachable address hangs in TensorFlow: give up after this

    def problems(self) -> Iterator[Problem]:
        if not (self.tpu or os.environ.get("TPU_NAME")):
            yield Problem(
                "strategy.tpu",
                self.tpu,
                "the TPU to use: `local` on a TPU VM, the TPU node's name, or grpc://HOST:8470 "
                "(or set TPU_NAME in the environment)",
            )
        if not self.connect_timeout_s > 0:
            yield Problem("strategy.connect_timeout_s", self.connect_timeout_s, "a number of seconds > 0")


# ------------------------------------------------------------------ cluster
@dataclass
class ClusterConfig:
    name: str = MISSING
    form_timeout_s: float = 60.0  # every task must have joined within this time

    # What each option is (class attributes, not config keys; a child's DictConfig asks
    # tfrun.tasks.core.schema.option_class):
    local_processes = False  # the runner starts every task of the cluster on this machine
    on_vertex = False  # the run is a Vertex AI CustomJob: this machine submits it, its replicas train

    def problems(self) -> Iterator[Problem]:
        if not self.form_timeout_s > 0:
            yield Problem("cluster.form_timeout_s", self.form_timeout_s, "a number of seconds > 0")

    def machine_steps(self, job: str, target_steps: list[str], preflight: list[str]) -> list[str]:
        """This cluster choice's rule for the steps this machine runs: checks, the job's steps, the target's."""
        return plan(job, target_steps, preflight)


@dataclass
class NoCluster(ClusterConfig):
    name: str = "none"


@dataclass
class LocalCluster(ClusterConfig):
    """The runner starts every task on 127.0.0.1 and supervises them."""

    name: str = "local"
    local_processes = True
    workers: int = 2
    ps: Optional[int] = None  # null = 1 with strategy=parameter_server, else 0
    chief: bool = False  # multi_worker: an extra chief task (else worker 0 is the chief)
    task_env: Dict[str, Dict[str, str]] = field(default_factory=dict)  # e.g. {worker_1: {CUDA_VISIBLE_DEVICES: "1"}}

    def problems(self) -> Iterator[Problem]:
        yield from super().problems()
        yield from at_least("cluster.workers", self.workers, 1)
        if self.ps is not None:
            yield from at_least("cluster.ps", self.ps, 0)
        for key in self.task_env:
            kind, _, index = key.rpartition("_")
            if kind not in TASK_TYPES or not index.isdigit():
                yield Problem(f"cluster.task_env.{key}", key, "keys like worker_0, worker_1, ps_0, chief_0")


@dataclass
class TfConfigCluster(ClusterConfig):
    """TF_CONFIG comes from the environment: the same command runs on every machine."""

    name: str = "tf_config"

    def problems(self) -> Iterator[Problem]:
        yield from super().problems()
        yield from tf_config_problems(os.environ.get("TF_CONFIG"))


# ------------------------------------------------------------ cross-group
def round_batch(global_batch: int, replicas: int) -> int:
    """The multiple of `replicas` nearest to `global_batch` (at least one example per replica)."""
    return max(replicas, round(global_batch / replicas) * replicas)


def _local_devices(hardware: Any) -> Optional[int]:
    """Replicas one process contributes, when knowable before TensorFlow starts."""
    kind = hardware.kind.value
    if kind == "cpu":
        return hardware.logical_devices
    if kind == "split_gpu":
        return len(hardware.logical_gpu_memory_mb or [])
    if kind == "gpu":
        return 1
    if hardware.visible_devices is not None:
        return len(hardware.visible_devices)
    return None  # multi_gpu with every GPU: counted by TensorFlow at run time


def expected_replicas(config: Any) -> Optional[int]:
    strategy, cluster = config.strategy, config.cluster
    local = _local_devices(config.hardware)
    if strategy.name == "mirrored" and strategy.devices:
        return len(strategy.devices)
    if strategy.name == "central_storage" and strategy.compute_devices:
        return len(strategy.compute_devices)
    if strategy.name in ("default", "tpu"):
        return 1 if strategy.name == "default" else None
    if strategy.name == "multi_worker" and local is not None:
        if cluster.local_processes:
            return local * (cluster.workers + int(cluster.chief))
        if cluster.on_vertex:
            return local * cluster.workers
        return None  # tf_config: known once TensorFlow reads the cluster
    if strategy.name == "parameter_server":
        return local
    return local


def cross_problems(config: Any) -> Iterator[Problem]:
    """Rules spanning strategy, hardware, cluster and the batch size."""
    strategy, hardware, cluster, train = config.strategy, config.hardware, config.cluster, config.train
    kind = hardware.kind.value
    if strategy.name == "tpu" and kind != "tpu":
        yield Problem("hardware", kind, "tpu when strategy=tpu (hardware=tpu)")
    if kind == "tpu" and strategy.name != "tpu":
        yield Problem("strategy", strategy.name, "tpu when hardware=tpu")
    if strategy.needs_cluster and cluster.name == "none":
        yield Problem(
            "cluster",
            cluster.name,
            f"local (processes on this machine), tf_config (TF_CONFIG from the environment) or vertex "
            f"(a Vertex AI job) when strategy={strategy.name}",
        )
    if not strategy.needs_cluster and cluster.name != "none" and not cluster.on_vertex:
        yield Problem(
            "cluster",
            cluster.name,
            f"none with strategy={strategy.name} (one process); "
            "use strategy=multi_worker or parameter_server for a cluster",
        )
    if strategy.chief_dispatches and cluster.local_processes and cluster.ps == 0:
        yield Problem("cluster.ps", cluster.ps, "at least 1 parameter server with strategy=parameter_server")
    if strategy.chief_dispatches and cluster.local_processes and cluster.chief:
        yield Problem(
            "cluster.chief",
            cluster.chief,
            "false with strategy=parameter_server (the tfrun process is the chief/coordinator)",
        )
    nccl = (
        getattr(strategy, "cross_device_ops", None) is CrossDeviceOps.nccl
        or getattr(strategy, "communication", None) is Communication.nccl
    )
    if nccl and kind in ("cpu", "tpu"):
        option = "cross_device_ops" if strategy.name == "mirrored" else "communication"
        yield Problem(
            f"strategy.{option}",
            "nccl",
            "auto, hierarchical_copy or reduction_to_one_device on CPUs (NCCL needs GPUs)"
            if option == "cross_device_ops"
            else "auto or ring on CPUs (NCCL needs GPUs)",
        )
    replicas = expected_replicas(config)
    if replicas and train.batch_size % replicas:
        if train.batch_policy.value == "error":
            rounded = round_batch(train.batch_size, replicas)
            yield Problem(
                "train.batch_size",
                train.batch_size,
                f"a multiple of the {replicas} replicas (e.g. {rounded}), "
                "or train.batch_policy=round to adjust it and record the change",
            )


STRATEGIES: dict[str, type] = {
    "default": DefaultStrategy,
    "mirrored": MirroredStrategy,
    "central_storage": CentralStorageStrategy,
    "multi_worker": MultiWorkerStrategy,
    "parameter_server": ParameterServerStrategy,
    "tpu": TpuStrategy,
}
CLUSTERS: dict[str, type] = {"none": NoCluster, "local": LocalCluster, "tf_config": TfConfigCluster}
