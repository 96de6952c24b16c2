"""Structured configs: the typed shape of every config group.

Hydra checks types and enum values while composing; the ``problems()``
methods add the value rules a type cannot express (ranges, files that must
exist). Each group option's ``_target_`` names the function in ``tasks/``
that implements it, so the config, not string switches, selects the code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterator, List, Optional

from omegaconf import MISSING

from tfrun.tasks.core import datafiles
from tfrun.tasks.core.problems import Problem, at_least, between, one_of
from tfrun.tasks.core.schema.cloud import (  # noqa: F401 (re-exported)
    GcpCloud,
    NoCloud,
    VertexBatchTarget,
    VertexEndpointTarget,
    cloud_problems,
)
from tfrun.tasks.core.schema.distribute import (  # noqa: F401 (re-exported)
    CLUSTERS,
    STRATEGIES,
    ClusterConfig,
    StrategyConfig,
    cross_problems,
)
from tfrun.tasks.core.schema.k8s import K8sConfig  # noqa: F401 (re-exported)
from tfrun.tasks.core.schema.sweep import NoSweep, OptunaSweep, SweepConfig, VertexSweep  # noqa: F401 (re-exported)
from tfrun.tasks.core.schema.targets import (  # noqa: F401 (re-exported)
    MIN_REPRESENTATIVE_SAMPLES,
    TFLITE_STEPS,
    TFSERVING_STEPS,
    Int8Io,
    NoTarget,
    Quantization,
    RollbackConfig,
    ServeConfig,
    ServeWebConfig,
    ServingBatching,
    ServingOptions,
    ServingServer,
    TargetConfig,
    TfliteSource,
    TfliteTarget,
    TfservingTarget,
    WebTarget,
)
from tfrun.tasks.core.schema.track import MlflowTrack, NoTrack, TrackConfig  # noqa: F401 (re-exported)
from tfrun.tasks.core.schema.vertex import TuningConfig, VertexCluster, vertex_training_problems  # noqa: F401 (re-exported)


# --------------------------------------------------------------------- data
@dataclass
class DataConfig:
    """Where examples come from and how they are split."""

    _target_: str = MISSING
    name: str = MISSING
    input_name: str = "pixels"
    holdout_fraction: float = 0.2
    validation_fraction: float = 0.1
    limit: Optional[int] = None  # use only the first N examples (fast trials)
    shuffle_buffer: int = 10_000
    image_shape: Optional[List[int]] = None  # for flat data that is really images

    def problems(self) -> Iterator[Problem]:
        yield from between("data.holdout_fraction", self.holdout_fraction, 0.0, 1.0)
        yield from between("data.validation_fraction", self.validation_fraction, 0.0, 1.0)
        if self.limit is not None:
            yield from at_least("data.limit", self.limit, 20)
        yield from at_least("data.shuffle_buffer", self.shuffle_buffer, 1)
        if not self.input_name.isidentifier():
            yield Problem("data.input_name", self.input_name, "a Python-identifier-like name, e.g. pixels")
        if self.image_shape is not None and (len(self.image_shape) not in (2, 3) or min(self.image_shape) < 1):
            yield Problem(
                "data.image_shape", self.image_shape, "[height, width] or [height, width, channels], all >= 1"
            )


@dataclass
class DigitsData(DataConfig):
    _target_: str = "tfrun.tasks.data.load_digits"
    name: str = "digits"


@dataclass
class FashionMnistData(DataConfig):
    _target_: str = "tfrun.tasks.data.load_fashion_mnist"
    name: str = "fashion_mnist"
    path: Optional[str] = None  # folder holding the four *-ubyte.gz files

    def problems(self) -> Iterator[Problem]:
        yield from super().problems()
        found = datafiles.find_fashion_mnist(self.path)
        if found is None:
            yield Problem("data.path", self.path, datafiles.FASHION_MNIST_HOWTO)


@dataclass
class MnistData(DataConfig):
    _target_: str = "tfrun.tasks.data.load_mnist"
    name: str = "mnist"
    path: Optional[str] = None  # an mnist.npz as written by keras.datasets.mnist
    download: bool = False  # let keras' loader fetch mnist.npz (needs network)

    def problems(self) -> Iterator[Problem]:
        yield from super().problems()
        if not self.download and datafiles.find_mnist(self.path) is None:
            yield Problem("data.path", self.path, datafiles.MNIST_HOWTO)


class DataFormat(Enum):
    auto = "auto"
    npz = "npz"
    csv = "csv"


@dataclass
class FilesData(DataConfig):
    _target_: str = "tfrun.tasks.data.load_files"
    name: str = "files"
    path: str = MISSING
    format: DataFormat = DataFormat.auto
    x_key: str = "x"  # npz array names
    y_key: str = "y"
    label_column: str = "label"  # csv column holding the class
    input_name: str = "features"

    def problems(self) -> Iterator[Problem]:
        yield from super().problems()
        fmt = datafiles.files_format(self.path, self.format.value)
        if fmt is None:
            yield Problem(
                "data.format", self.format.value, f"npz or csv (could not infer it from data.path={self.path!r})"
            )
        if not datafiles.is_readable_file(self.path):
            yield Problem("data.path", self.path, "an existing, readable .npz or .csv file")


# -------------------------------------------------------------------- model
@dataclass
class ModelConfig:
    _target_: str = MISSING
    name: str = MISSING
    dropout: float = 0.0

    def problems(self) -> Iterator[Problem]:
        yield from between("model.dropout", self.dropout, 0.0, 1.0, high_inclusive=False, low_inclusive=True)

    @property
    def needs_images(self) -> bool:
        return False


@dataclass
class MlpModel(ModelConfig):
    """The book's MLP: Flatten -> n_hidden x Dense(n_neurons, relu) -> softmax."""

    _target_: str = "tfrun.tasks.model.build_mlp"
    name: str = "mlp"
    n_hidden: int = 2
    n_neurons: int = 64

    def problems(self) -> Iterator[Problem]:
        yield from super().problems()
        yield from at_least("model.n_hidden", self.n_hidden, 0)
        yield from at_least("model.n_neurons", self.n_neurons, 1)


@dataclass
class CnnModel(ModelConfig):
    _target_: str = "tfrun.tasks.model.build_cnn"
    name: str = "cnn"
    filters: List[int] = field(default_factory=lambda: [32, 64])
    kernel_size: int = 3
    dense_units: int = 64
    dropout: float = 0.25

    def problems(self) -> Iterator[Problem]:
        yield from super().problems()
        if not self.filters or min(self.filters) < 1:
            yield Problem("model.filters", self.filters, "a non-empty list of positive integers")
        yield from at_least("model.kernel_size", self.kernel_size, 1)
        yield from at_least("model.dense_units", self.dense_units, 1)

    @property
    def needs_images(self) -> bool:
        return True


# -------------------------------------------------------------------- train
class BatchPolicy(Enum):
    """What to do when the global batch does not split evenly over the replicas."""

    error = "error"
    round = "round"  # round to the nearest multiple (recorded)


class Optimizer(Enum):
    sgd = "sgd"
    adam = "adam"
    adamw = "adamw"
    nadam = "nadam"
    rmsprop = "rmsprop"


@dataclass
class EarlyStoppingConfig:
    enabled: bool = False
    monitor: str = "val_loss"
    patience: int = 5
    restore_best_weights: bool = True


@dataclass
class CallbacksConfig:
    tensorboard: bool = True
    checkpoint: bool = False  # best weights to <run_dir>/checkpoints
    backup_and_restore: bool = True  # resume an interrupted fit from <run_dir>/backup
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 32
    optimizer: Optimizer = Optimizer.adam
    learning_rate: float = 1e-3
    momentum: float = 0.0  # sgd only
    seed: int = 42
    deterministic: bool = True
    verbose: int = 2  # Keras progress: 0 silent, 1 progress bar, 2 one line per epoch
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    batch_policy: BatchPolicy = BatchPolicy.error
    resume: bool = False  # continue the latest unfinished run of this config from its backup
    quantization_aware: bool = False  # wrap the model with tensorflow-model-optimization before compile
    extra_callbacks: List[Any] = field(default_factory=list)  # `_target_` nodes (tf-keras callbacks), after tfrun's

    def problems(self) -> Iterator[Problem]:
        yield from at_least("train.epochs", self.epochs, 1)
        yield from at_least("train.batch_size", self.batch_size, 1)
        if not self.learning_rate > 0:
            yield Problem("train.learning_rate", self.learning_rate, "a number > 0, e.g. 1e-3")
        yield from between("train.momentum", self.momentum, 0.0, 1.0, high_inclusive=False, low_inclusive=True)
        yield from at_least("train.seed", self.seed, 0)
        yield from one_of("train.verbose", self.verbose, (0, 1, 2))
        yield from at_least("train.callbacks.early_stopping.patience", self.callbacks.early_stopping.patience, 0)
        monitors = ("loss", "accuracy", "val_loss", "val_accuracy")
        yield from one_of("train.callbacks.early_stopping.monitor", self.callbacks.early_stopping.monitor, monitors)


# ----------------------------------------------------------------- hardware
class DeviceKind(Enum):
    cpu = "cpu"
    gpu = "gpu"
    multi_gpu = "multi_gpu"
    split_gpu = "split_gpu"
    tpu = "tpu"


MAX_LOGICAL_CPUS = 64


@dataclass
class HardwareConfig:
    """Device settings, applied in the child before TensorFlow initialises."""

    _target_: str = "tfrun.tasks.hardware.configure"
    kind: DeviceKind = DeviceKind.cpu
    intra_op_threads: int = 0  # 0 = let TensorFlow choose
    inter_op_threads: int = 0
    logical_devices: int = 1  # cpu: split the CPU into N logical devices
    visible_devices: Optional[List[int]] = None  # GPU indices (CUDA_VISIBLE_DEVICES, PCI bus order)
    memory_growth: bool = False
    memory_limit_mb: Optional[int] = None  # per visible GPU
    logical_gpu_memory_mb: Optional[List[int]] = None  # split_gpu: one logical GPU per entry
    mixed_precision: bool = False
    soft_placement: bool = True
    log_device_placement: bool = False

    def problems(self) -> Iterator[Problem]:
        yield from at_least("hardware.intra_op_threads", self.intra_op_threads, 0)
        yield from at_least("hardware.inter_op_threads", self.inter_op_threads, 0)
        yield from between(
            "hardware.logical_devices",
            self.logical_devices,
            1,
            MAX_LOGICAL_CPUS,
            low_inclusive=True,
            high_inclusive=True,
        )
        if self.kind is not DeviceKind.cpu and self.logical_devices != 1:
            yield Problem(
                "hardware.logical_devices",
                self.logical_devices,
                "1 unless hardware=cpu (split GPUs with hardware=split_gpu)",
            )
        if self.visible_devices is not None and (not self.visible_devices or min(self.visible_devices) < 0):
            yield Problem(
                "hardware.visible_devices",
                self.visible_devices,
                "null (all GPUs) or a non-empty list of GPU indices >= 0",
            )
        if self.memory_growth and self.memory_limit_mb is not None:
            yield Problem(
                "hardware.memory_limit_mb",
                self.memory_limit_mb,
                "null when hardware.memory_growth=true (choose growth or a fixed limit)",
            )
        if self.memory_limit_mb is not None:
            yield from at_least("hardware.memory_limit_mb", self.memory_limit_mb, 1)
        if self.kind is DeviceKind.split_gpu:
            if not self.logical_gpu_memory_mb or min(self.logical_gpu_memory_mb) < 1:
                yield Problem(
                    "hardware.logical_gpu_memory_mb",
                    self.logical_gpu_memory_mb,
                    "a list of memory limits in MB, one per logical GPU, e.g. [2048, 2048]",
                )
            if self.memory_growth or self.memory_limit_mb is not None:
                yield Problem(
                    "hardware.memory_growth",
                    self.memory_growth,
                    "false with split_gpu (the split sets each logical GPU's memory)",
                )
        elif self.logical_gpu_memory_mb is not None:
            yield Problem(
                "hardware.logical_gpu_memory_mb", self.logical_gpu_memory_mb, "null unless hardware=split_gpu"
            )
        if self.kind is DeviceKind.cpu and (
            self.memory_growth or self.memory_limit_mb is not None or self.visible_devices is not None
        ):
            yield Problem(
                "hardware.kind",
                self.kind.value,
                "gpu, multi_gpu or split_gpu when GPU settings (memory_growth, "
                "memory_limit_mb, visible_devices) are set",
            )


# ---------------------------------------------------------------------- run
class Job(Enum):
    train = "train"  # train -> evaluate -> export -> target steps
    serve = "serve"  # a TF Serving server in the foreground on an existing repository
    rollback = "rollback"  # serve an older version again (TF Serving repository)
    tune = "tune"  # a Vertex AI hyperparameter tuning job over tuning.params (sweep=vertex)
    serve_web = "serve_web"  # a static server in the foreground on an existing target=web bundle
    deploy = "deploy"  # no training: the SavedModel `source` names, deployed to the target and checked against it
    promote = "promote"  # no training: `alias` moves to the version `source` names (MLflow, Vertex AI, TF Serving)
    k8s = "k8s"  # no training: Kubernetes manifests for `source` (serving) or the training cluster, validated offline


@dataclass
class RunConfig:
    """How the runner supervises the child process."""

    timeout_s: Optional[float] = None  # kill the job after this many seconds
    log_tail_lines: int = 40  # lines of child output kept in a failed record
    stop_grace_s: float = 10.0  # time a child gets to stop after SIGINT before SIGKILL
    tf_log_level: int = (
        3  # TensorFlow C++ log lines on the console: 0 all, 1 WARNING+, 2 ERROR+, 3 FATAL only; run.log keeps all
    )

    def problems(self) -> Iterator[Problem]:
        if self.timeout_s is not None and not self.timeout_s > 0:
            yield Problem("run.timeout_s", self.timeout_s, "null (no limit) or a number of seconds > 0")
        yield from at_least("run.log_tail_lines", self.log_tail_lines, 0)
        if not self.stop_grace_s > 0:
            yield Problem("run.stop_grace_s", self.stop_grace_s, "a number of seconds > 0")
        yield from one_of("run.tf_log_level", self.tf_log_level, (0, 1, 2, 3))


@dataclass
class ExportConfig:
    """The SavedModel's `serving_default` signature.

    By default it answers the class probabilities alone, the form the book's clients read
    (`np.array(response["predictions"])`, Vertex's `response.predictions`, a batch line's
    `"prediction"`: a matrix, one row per instance). A second output makes every REST and
    Vertex answer a dict per instance, so the class id is opt-in.
    """

    class_id_output: bool = False  # true: also `class_id` (int64 argmax of the probabilities)


@dataclass
class Config:
    data: Any = MISSING
    model: Any = MISSING
    train: TrainConfig = field(default_factory=TrainConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    strategy: Any = MISSING
    cluster: Any = MISSING
    target: Any = MISSING
    cloud: Any = MISSING
    track: Any = MISSING
    # the search of a `tfrun -m` (sweep=optuna: its pruner); a sweep option of the user's that sets no sweep node: none
    sweep: Any = field(default_factory=lambda: SweepConfig(name="none"))
    run: RunConfig = field(default_factory=RunConfig)
    export: ExportConfig = field(default_factory=ExportConfig)  # the serving signature's outputs
    serve: ServeConfig = field(default_factory=ServeConfig)  # job=serve
    rollback: RollbackConfig = field(default_factory=RollbackConfig)  # job=rollback
    serve_web: ServeWebConfig = field(default_factory=ServeWebConfig)  # job=serve_web
    k8s: K8sConfig = field(default_factory=K8sConfig)  # job=k8s
    tuning: TuningConfig = field(default_factory=TuningConfig)  # sweep=vertex
    job: Job = Job.train
    source: Optional[str] = None  # job=deploy|promote: a run dir, record.json, SavedModel, MULTIRUN/best, models:/…
    alias: Optional[str] = None  # job=promote: the alias (label) to move, e.g. champion
    models_dir: str = "models"
    model_name: str = "${data.name}_${model.name}"
    optimized_metric: str = "holdout_accuracy"

    def groups(self) -> list[Any]:
        return [
            self.data,
            self.model,
            self.train,
            self.hardware,
            self.strategy,
            self.cluster,
            self.target,
            self.cloud,
            self.track,
            self.sweep,
            self.run,
            self.serve,
            self.rollback,
            self.serve_web,
            self.tuning,
            self.k8s,
        ]


SCHEMAS: dict[str, dict[str, type]] = {
    "data": {"digits": DigitsData, "fashion_mnist": FashionMnistData, "mnist": MnistData, "files": FilesData},
    "model": {"mlp": MlpModel, "cnn": CnnModel},
    "strategy": STRATEGIES,
    "cluster": {**CLUSTERS, "vertex": VertexCluster},
    "target": {
        "none": NoTarget,
        "tflite": TfliteTarget,
        "vertex_endpoint": VertexEndpointTarget,
        "vertex_batch": VertexBatchTarget,
    },
    "cloud": {"none": NoCloud, "gcp": GcpCloud},
    "track": {"none": NoTrack, "mlflow": MlflowTrack},
    "sweep": {"none": NoSweep, "optuna": OptunaSweep, "vertex": VertexSweep},
}

SCHEMAS["target"]["tfserving"] = TfservingTarget
SCHEMAS["target"]["web"] = WebTarget
GROUP_BASES: dict[str, type] = {
    "strategy": StrategyConfig,
    "cluster": ClusterConfig,
    "target": TargetConfig,
    "track": TrackConfig,
    "sweep": SweepConfig,
}


def option_class(group: str, node: Any) -> type:
    """The dataclass of a group's choice where the config is no dataclass: `node` is its DictConfig (a child's
    cfg, a multirun's config) or its name. Its class attributes (`deploys`, `on_vertex`, ...) say what the
    option is, as they do on the validated config. A name the schemas do not know has its group's defaults."""
    name = node if isinstance(node, str) else getattr(node, "name", None)
    return SCHEMAS[group].get(str(name), GROUP_BASES[group])


def field_default(field_: dataclasses.Field, missing: Any = MISSING) -> Any:
    """What a dataclass field holds when it is not given (its default, or a new one from its factory); `missing` for
    a field that has neither. The config reference and the reading of older records fill keys by the same rule."""
    if field_.default is not dataclasses.MISSING:
        return field_.default
    if field_.default_factory is not dataclasses.MISSING:
        return field_.default_factory()
    return missing


def register() -> None:
    """Put the schemas where the YAML options' defaults lists find them (made when first loaded)."""
    from tfrun.tasks.core import hydra_adapter  # a child that only reads the schemas imports no Hydra

    hydra_adapter.store_lazily(name="tfrun_schema", schema=Config)
    for group, options in SCHEMAS.items():
        for name, node in options.items():
            hydra_adapter.store_lazily(group=f"schema/{group}", name=name, schema=node)
