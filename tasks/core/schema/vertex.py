"""Structured configs for training on Vertex AI: `cluster=vertex` (a CustomJob) and `sweep=vertex` (a
HyperparameterTuningJob over `tuning.*`), with the rules that span them and the other groups.

Pure Python (tables in tfrun.tasks.core.vertex_catalog): a bad choice stops with exit 2 before anything is packaged,
uploaded or submitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, Iterator, List, Optional

from tfrun.tasks.core import vertex_catalog as catalog
from tfrun.tasks.core.problems import Problem, at_least, between
from tfrun.tasks.core.schema.distribute import ClusterConfig
from tfrun.tasks.core.vertex_env import PARAMETER_ID_RE, parameter_id

# The submitting machine's steps for a Vertex job (the replicas run the training plan themselves).
SUBMIT_STEPS = ["vertex_preflight", "vertex_stage", "vertex_job", "vertex_job_result"]
TUNE_STEPS = ["vertex_preflight", "vertex_stage", "vertex_tuning_job", "vertex_trials"]
REGISTER_STEP = "vertex_register"


class Restart(Enum):
    auto = "auto"  # true for multi_worker (every replica must resume together), false otherwise
    true = "true"
    false = "false"


@dataclass
class VertexCluster(ClusterConfig):
    """The run becomes a Vertex AI CustomJob: pool 0 the chief, 1 the workers, 2 the parameter servers."""

    name: str = "vertex"
    on_vertex = True
    machine_type: str = "n1-standard-4"
    accelerator_type: Optional[str] = None  # e.g. NVIDIA_TESLA_T4 (hardware=gpu|multi_gpu), TPU_V3 (strategy=tpu)
    accelerator_count: int = 0
    workers: int = 1  # multi_worker: training replicas with the chief; parameter_server: worker replicas
    ps: Optional[int] = None  # parameter servers; null = 1 with strategy=parameter_server, else 0
    ps_machine_type: Optional[str] = None  # null = machine_type (parameter servers need no accelerator)
    container: str = "prebuilt"  # prebuilt | tfrun | an image URI whose entrypoint is tfrun
    tfrun_image: Optional[str] = None  # container=tfrun: the image you built and pushed (containers/training/)
    restart_job_on_worker_restart: Restart = Restart.auto
    poll_interval_s: float = 10.0  # how often the job's state is read
    serving_container: str = "prebuilt"  # the Model registered from the job: prebuilt | an image URI
    service_account: Optional[str] = None  # the replicas' identity (null = Vertex's default)
    form_timeout_s: float = 600.0  # the replicas start on separate VMs (conf/cluster/vertex.yaml says the same)
    # The user's project (tfrun.tasks.core.project_files): code, --config-dir folders and data files go with the job.
    max_stage_mb: int = 256  # over this, the run stops before uploading (naming the largest files)
    stage_data: bool = True  # local files named by data keys travel with the job (false: they must be gs://)
    requirements: Any = None  # pip requirements for the replicas: a list of strings or a requirements file

    def problems(self) -> Iterator[Problem]:
        yield from super().problems()
        yield from at_least("cluster.workers", self.workers, 1)
        if self.ps is not None:
            yield from at_least("cluster.ps", self.ps, 0)
        for key, machine in (
            ("cluster.machine_type", self.machine_type),
            ("cluster.ps_machine_type", self.ps_machine_type),
        ):
            if machine is not None and key.endswith("ps_machine_type") and machine in catalog.TPU_MACHINES:
                yield Problem(key, machine, "a CPU machine type for parameter servers, e.g. n1-standard-4")
            elif machine is not None and machine not in catalog.TPU_MACHINES:
                why = catalog.machine_problem(machine)
                if why:
                    yield Problem(key, machine, why + " (or a TPU machine: " + ", ".join(catalog.TPU_MACHINES) + ")")
        why = catalog.training_accelerator_problem(self.machine_type, self.accelerator_type, self.accelerator_count)
        if why and (self.machine_type in catalog.TPU_MACHINES or not catalog.machine_problem(self.machine_type)):
            key = "cluster.accelerator_count" if self.accelerator_type else "cluster.accelerator_type"
            yield Problem(key, self.accelerator_count if self.accelerator_type else self.accelerator_type, why)
        choice = self.container
        if choice not in ("prebuilt", "tfrun") and ("/" not in choice or any(c.isspace() for c in choice)):
            yield Problem(
                "cluster.container",
                choice,
                "prebuilt (Google's newest TensorFlow training image with "
                "tfrun installed on top), tfrun (the image of containers/training/) or an image URI "
                "whose entrypoint is tfrun",
            )
        if choice == "tfrun" and not self.tfrun_image:
            yield Problem(
                "cluster.tfrun_image",
                self.tfrun_image,
                "the URI of the tfrun-training image you built "
                "and pushed (containers/training/README.md) when cluster.container=tfrun",
            )
        if self.serving_container != "prebuilt" and "/" not in self.serving_container:
            yield Problem(
                "cluster.serving_container",
                self.serving_container,
                "prebuilt or a serving image URI for the Model registered from the job",
            )
        yield from between("cluster.poll_interval_s", self.poll_interval_s, 0.0, 300.0, high_inclusive=True)

    # --- what the job looks like, shared by the dry run, the job spec and the validation ---
    def layout(self, strategy: str) -> dict[str, int]:
        """Replicas per pool role: chief (pool 0), worker (pool 1), ps (pool 2)."""
        if strategy == "parameter_server":
            return {"chief": 1, "worker": self.workers, "ps": 1 if self.ps is None else self.ps}
        if strategy == "multi_worker":
            return {"chief": 1, "worker": self.workers - 1, "ps": 0}
        return {"chief": 1, "worker": 0, "ps": 0}

    def restarts_together(self, strategy: str) -> bool:
        if self.restart_job_on_worker_restart is Restart.auto:
            return strategy == "multi_worker"
        return self.restart_job_on_worker_restart is Restart.true

    def machine_steps(self, job: str, target_steps: list[str], preflight: list[str]) -> list[str]:
        """On this machine: package, submit and follow the job, then register and deploy what it trained.

        vertex_job_result downloads the job's model as the next local version (hash-checked), so any target
        takes it as it takes a local export. A Vertex target registers it with its own serving image; for the
        others (none, tfserving, tflite, ...) it is registered as it is, then the target runs here.
        """
        if job == "tune":
            return list(TUNE_STEPS)
        if job != "train":
            return super().machine_steps(job, target_steps, preflight)
        rest = [s for s in target_steps if s != "vertex_upload"]  # the model is on Cloud Storage already
        return SUBMIT_STEPS + (rest if "vertex_model" in rest else [REGISTER_STEP, *rest])


# ------------------------------------------------------------------------------------ tuning
class ParamType(Enum):
    double = "double"
    integer = "integer"
    categorical = "categorical"
    discrete = "discrete"


class Scale(Enum):
    linear = "linear"
    log = "log"
    reverse_log = "reverse_log"


class Algorithm(Enum):
    bayesian = "bayesian"  # Vertex's default (ALGORITHM_UNSPECIFIED)
    random = "random"
    grid = "grid"


class Goal(Enum):
    auto = "auto"  # minimize a *loss metric, maximize the others
    maximize = "maximize"
    minimize = "minimize"


class Measurement(Enum):
    best = "best"  # the best of the reported measurements (the SDK's default)
    last = "last"


class EarlyStopping(Enum):
    none = "none"
    median = "median"  # a trial whose best is below the median of completed trials' running averages at its step
    decay_curve = "decay_curve"  # a curve fitted to the completed trials predicts it will not beat the best


# tuning.early_stopping as the study spec's automated stopping field: (REST v1 JSON name, proto field, its message)
STOPPING_SPECS = {
    EarlyStopping.median: (
        "medianAutomatedStoppingSpec",
        "median_automated_stopping_spec",
        "MedianAutomatedStoppingSpec",
    ),
    EarlyStopping.decay_curve: (
        "decayCurveStoppingSpec",
        "decay_curve_stopping_spec",
        "DecayCurveAutomatedStoppingSpec",
    ),
}


def stopping_spec(choice: Any) -> dict[str, dict[str, bool]]:
    """The StudySpec field tuning.early_stopping sets, as REST v1 JSON ({} for none): trials report each epoch's
    measurement with the epoch as its step, so the step (not elapsed time) is the rule's x-axis."""
    found = STOPPING_SPECS.get(EarlyStopping(str(getattr(choice, "value", choice))))
    return {found[0]: {"useElapsedDuration": False}} if found else {}


@dataclass
class SearchParam:
    type: ParamType = ParamType.double
    min: Optional[float] = None  # double, integer
    max: Optional[float] = None
    scale: Scale = Scale.linear
    values: Optional[List[Any]] = None  # categorical (strings), discrete (increasing numbers)


def _enum(cls: Any, key: str, value: Any) -> tuple[Any, list[Problem]]:
    try:
        return cls(value if not isinstance(value, Enum) else value.value), []
    except ValueError:
        return None, [Problem(key, value, "one of " + ", ".join(m.value for m in cls))]


def _number(key: str, value: Any) -> tuple[Optional[float], list[Problem]]:
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value, []
    return None, [Problem(key, value, "a number")]


def search_param(key: str, node: Any) -> tuple[Optional[SearchParam], list[Problem]]:
    """One leaf of tuning.params ({type, min, max, scale, values}) as a SearchParam, or what is wrong with it."""
    unknown = sorted(set(node) - {"type", "min", "max", "scale", "values"})
    problems = [Problem(f"{key}.{k}", node[k], "keys type, min, max, scale and values only") for k in unknown]
    kind, more = _enum(ParamType, f"{key}.type", node.get("type"))
    scale, more2 = _enum(Scale, f"{key}.scale", node.get("scale", "linear"))
    low, more3 = _number(f"{key}.min", node.get("min"))
    high, more4 = _number(f"{key}.max", node.get("max"))
    values = node.get("values")
    if values is not None and not isinstance(values, (list, tuple)):
        problems.append(Problem(f"{key}.values", values, "a list of values"))
        values = None
    problems += more + more2 + more3 + more4
    if problems:
        return None, problems
    return SearchParam(type=kind, min=low, max=high, scale=scale, values=None if values is None else list(values)), []


def search_space(params: Any, prefix: str = "") -> tuple[dict[str, SearchParam], list[Problem]]:
    """tuning.params, a tree of config keys whose leaves are search specs, as {dotted key: SearchParam}."""
    space: dict[str, SearchParam] = {}
    problems: list[Problem] = []
    for name, node in dict(params or {}).items():
        key = f"{prefix}{name}"
        if not isinstance(node, dict) or not node:
            problems.append(
                Problem(
                    f"tuning.params.{key}",
                    node,
                    "a search spec such as {type: double, min: 1e-4, max: 1e-1, scale: log}, under the config key",
                )
            )
        elif "type" in node:
            param, wrong = search_param(f"tuning.params.{key}", node)
            problems += wrong
            if param is not None:
                space[key] = param
        else:
            inner, wrong = search_space(node, f"{key}.")
            space.update(inner)
            problems += wrong
    return space, problems


@dataclass
class TuningConfig:
    """sweep=vertex: a HyperparameterTuningJob over `params`, each trial a tfrun run on Vertex."""

    enabled: bool = False
    display_name: str = "${model_name}-tuning"
    # The config keys to tune, as a tree (train: {learning_rate: {type: double, min: 1e-4, max: 0.1, scale: log}}),
    # so one is set or removed on the command line: tuning.params.train.learning_rate.max=0.5, ~tuning.params.model
    params: Dict[str, Any] = field(default_factory=dict)
    max_trial_count: int = 4
    parallel_trial_count: int = 2
    max_failed_trial_count: int = 0  # 0 = Vertex decides
    algorithm: Algorithm = Algorithm.bayesian
    goal: Goal = Goal.auto
    measurement: Measurement = Measurement.best
    # Vertex AI stops unpromising trials early: none | median | decay_curve (each trial reports every epoch)
    early_stopping: EarlyStopping = EarlyStopping.none

    def problems(self) -> Iterator[Problem]:
        if not self.enabled:
            return
        yield from at_least("tuning.max_trial_count", self.max_trial_count, 1)
        yield from at_least("tuning.parallel_trial_count", self.parallel_trial_count, 1)
        yield from at_least("tuning.max_failed_trial_count", self.max_failed_trial_count, 0)
        if self.parallel_trial_count > self.max_trial_count:
            yield Problem(
                "tuning.parallel_trial_count",
                self.parallel_trial_count,
                f"at most tuning.max_trial_count ({self.max_trial_count})",
            )
        if self.max_failed_trial_count > self.max_trial_count:
            yield Problem(
                "tuning.max_failed_trial_count",
                self.max_failed_trial_count,
                f"at most tuning.max_trial_count ({self.max_trial_count})",
            )
        space, problems = search_space(self.params)
        yield from problems
        if not space and not problems:
            yield Problem(
                "tuning.params",
                {},
                "at least one parameter, e.g. "
                "+tuning.params.train.learning_rate={type:double,min:1e-4,max:1e-1,scale:log}",
            )
        for key, spec in space.items():
            yield from _param_problems(f"tuning.params.{key}", spec, self.algorithm)

    def space(self) -> dict[str, SearchParam]:
        """{config key: SearchParam}, in the order the config lists them (valid configs only)."""
        return search_space(self.params)[0]

    def maximize(self, metric: str) -> bool:
        if self.goal is Goal.auto:
            return "loss" not in metric
        return self.goal is Goal.maximize


def _param_problems(key: str, spec: SearchParam, algorithm: Algorithm) -> Iterator[Problem]:
    kind = spec.type
    if not PARAMETER_ID_RE.match(parameter_id(key.removeprefix("tuning.params."))):
        yield Problem(key, key, "a config key of letters, digits, '_' and '.' (it becomes a Vertex parameter id)")
    if kind in (ParamType.double, ParamType.integer):
        if spec.min is None or spec.max is None or spec.min > spec.max:
            yield Problem(f"{key}.min", spec.min, f"min and max with min <= max for a {kind.value} parameter")
        elif spec.scale is not Scale.linear and spec.min <= 0:
            yield Problem(f"{key}.min", spec.min, f"a number > 0 with scale={spec.scale.value}")
        elif kind is ParamType.integer and (spec.min != int(spec.min) or spec.max != int(spec.max)):
            yield Problem(f"{key}.min", spec.min, "whole numbers for an integer parameter")
        if spec.values is not None:
            yield Problem(f"{key}.values", spec.values, f"null for a {kind.value} parameter (it takes min and max)")
        if kind is ParamType.double and algorithm is Algorithm.grid:
            yield Problem(f"{key}.type", kind.value, "integer, categorical or discrete with tuning.algorithm=grid")
        return
    values = list(spec.values or [])
    if not values or len({str(v) for v in values}) != len(values):
        yield Problem(f"{key}.values", spec.values, f"a non-empty list of distinct values for a {kind.value} parameter")
    elif kind is ParamType.discrete:
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            yield Problem(f"{key}.values", spec.values, "numbers for a discrete parameter (categorical for words)")
        elif any(b <= a for a, b in zip(values, values[1:])):
            yield Problem(f"{key}.values", spec.values, "numbers in increasing order")
    if spec.min is not None or spec.max is not None:
        yield Problem(f"{key}.min", spec.min, f"null for a {kind.value} parameter (it takes values)")


def _has_key(config: Any, dotted: str) -> bool:
    node = config
    for part in dotted.split("."):
        if isinstance(node, dict):
            if part not in node:
                return False
            node = node[part]
        elif hasattr(node, "__dataclass_fields__") and part in node.__dataclass_fields__:
            node = getattr(node, part)
        elif isinstance(getattr(node, "params", None), dict) and part in node.params:  # a user node's own keys
            node = node.params[part]
        else:
            return False
    return not isinstance(node, dict) and not hasattr(node, "__dataclass_fields__")


def vertex_training_problems(config: Any, multirun: bool = True) -> Iterator[Problem]:
    """Rules across cluster=vertex, sweep=vertex and the other groups."""
    cluster, strategy, tuning, cloud = config.cluster, config.strategy, config.tuning, config.cloud
    tune = config.job.value == "tune"
    if tune and not cluster.on_vertex:
        yield Problem("cluster", cluster.name, "vertex with sweep=vertex (each trial is a Vertex CustomJob)")
    if tune and not tuning.enabled:
        yield Problem("tuning.enabled", tuning.enabled, "true with job=tune (choose sweep=vertex)")
    if tuning.enabled and not tune:
        yield Problem("job", config.job.value, "tune with sweep=vertex (run it as `tfrun -m sweep=vertex ...`)")
    if tune and not multirun:
        yield Problem("sweep", "vertex", "a multirun: `tfrun -m sweep=vertex ...` (the summary is the sweep's)")
    if tuning.enabled:
        for key in tuning.space():
            if not _has_key(config, key):
                yield Problem(
                    f"tuning.params.{key}",
                    key,
                    "a key of the composed config (`tfrun --cfg job` lists them), e.g. train.learning_rate",
                )
            elif key.split(".", 1)[0] in ("cluster", "cloud", "tuning", "run", "job", "strategy", "hardware"):
                yield Problem(
                    f"tuning.params.{key}",
                    key,
                    "a training key (data, model, train, export...): "
                    "trials share the job's machines and cloud settings",
                )
    if not cluster.on_vertex:
        return
    if not cloud.enabled:
        yield Problem(
            "cloud",
            cloud.name,
            "gcp with cluster=vertex: set cloud=gcp cloud.project=... "
            "cloud.bucket=... (the job's code, checkpoints and model go there)",
        )
    if tune and config.target.deploys:
        yield Problem(
            "target",
            config.target.name,
            "none with sweep=vertex (trials are not deployed: deploy the "
            "best trial with its reproduce line and target=...)",
        )
    source = getattr(config.target, "source", None)
    if not tune and getattr(source, "value", source) == "keras":
        yield Problem(
            "target.source",
            "keras",
            "saved_model with cluster=vertex (the Keras model stays on the "
            "job's machines; its SavedModel is downloaded and hash-checked)",
        )
    layout = cluster.layout(strategy.name)
    if strategy.chief_dispatches and layout["ps"] < 1:
        yield Problem(
            "cluster.ps", cluster.ps, "at least 1 parameter server with strategy=parameter_server (worker pool 2)"
        )
    if not strategy.needs_cluster and cluster.workers != 1:
        yield Problem(
            "cluster.workers",
            cluster.workers,
            f"1 with strategy={strategy.name} (one machine); strategy=multi_worker or parameter_server for more",
        )
    if not strategy.chief_dispatches and cluster.ps not in (None, 0):
        yield Problem("cluster.ps", cluster.ps, "null or 0 unless strategy=parameter_server")
    tpu_machine = cluster.machine_type in catalog.TPU_MACHINES
    if strategy.name == "tpu" and not tpu_machine:
        yield Problem(
            "cluster.machine_type",
            cluster.machine_type,
            f"a TPU machine with strategy=tpu: {', '.join(catalog.TPU_MACHINES)}",
        )
    if tpu_machine and strategy.name != "tpu":
        yield Problem("strategy", strategy.name, f"tpu with cluster.machine_type={cluster.machine_type}")
    kind = config.hardware.kind.value
    gpu = cluster.accelerator_type is not None and not tpu_machine
    if kind in ("gpu", "multi_gpu", "split_gpu") and not gpu:
        yield Problem(
            "cluster.accelerator_type",
            cluster.accelerator_type,
            f"a GPU type (e.g. NVIDIA_TESLA_T4) with hardware={kind}: the replicas need GPUs",
        )
    if kind == "cpu" and gpu:
        yield Problem(
            "hardware",
            kind,
            f"gpu or multi_gpu with cluster.accelerator_type={cluster.accelerator_type} "
            "(hardware=cpu hides the GPUs you would pay for)",
        )
    if cloud.enabled and cluster.container == "prebuilt" and catalog.REGION_RE.match(cloud.region or ""):
        why = catalog.region_problem(cloud.region)
        if why:
            yield Problem("cloud.region", cloud.region, why.replace("target.serving_container", "cluster.container"))
