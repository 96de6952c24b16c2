"""The CustomJob a `cluster=vertex` run submits, as plain data (pure Python, no SDK).

Shared by the dry run (tfrun.runner.dry_run prints it) and the submit step (which hands the same dicts to
aiplatform.CustomJob), so the plan and the job never differ. Worker pools follow Vertex's order: pool 0
the chief (one replica), 1 the workers, 2 the parameter servers; each replica runs the same `tfrun`
command with the same overrides, and finds its place from Vertex's TF_CONFIG.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from tfrun.tasks.core import project_files
from tfrun.tasks.core import vertex_catalog as catalog
from tfrun.tasks.core.vertex_env import PROJECT_ENV

PYTHON_MODULE = "tfrun.runner.cli"  # `python -m tfrun.runner.cli ARGS` is `tfrun ARGS`
PARENT_RUN_ENV = "TFRUN_PARENT_RUN"  # the submitting run's id, in every replica's record
# Overrides that only mean something on the submitting machine, or that a replica must not inherit.
LOCAL_ONLY = ("cloud.dry_run=", "cloud.api_endpoint=", "+cloud.api_endpoint=")
TUNING_ONLY = ("sweep=", "job=", "tuning.", "+tuning.", "++tuning.", "~tuning.")


def base_output_dir(cloud: Any, model_name: str, run_id: str) -> str:
    """The job's baseOutputDirectory: Vertex derives AIP_MODEL_DIR (model/), checkpoints/ and logs/ from it."""
    return f"gs://{cloud.bucket}/{cloud.prefix}/{model_name}/vertex-jobs/{run_id}/"


def staging_dir(cloud: Any, run_id: str) -> str:
    return f"gs://{cloud.bucket}/{cloud.prefix}/staging/{run_id}/"


def replica_args(overrides: list[str], *, trial_keys: Optional[tuple[str, ...]] = None) -> list[str]:
    """The command line every replica runs: this run's overrides, less what only this machine uses.

    A key file named by cloud.credentials stays here (replicas use the job's service account). For a
    tuning trial (`trial_keys`: the tuned config keys) sweep=vertex becomes cluster=vertex and the tuned
    keys are left out: Vertex appends each trial's values as `--id=value`.
    """
    out = []
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if item.startswith(LOCAL_ONLY):
            continue
        if trial_keys is not None and (item.startswith(TUNING_ONLY) or key in trial_keys):
            continue
        if key == "cloud.credentials" and item.split("=", 1)[-1] not in ("adc", "anonymous"):
            item = "cloud.credentials=adc"
        out.append(item)
    if trial_keys is not None and not any(o.startswith("cluster=") for o in out):
        out.insert(0, "cluster=vertex")
    return out


def project_args(args: list[str], project: Any) -> list[str]:
    """A replica's arguments for the staged project (tfrun.tasks.core.project_files): the --config-dir folders
    by their place in the archive, and the data keys whose files moved there."""
    if project is None:
        return args
    moved = set(project.data)
    kept = [a for a in args if a.split("=", 1)[0].lstrip("+~") not in moved]
    return (
        [f"--config-dir={name}" for name in project.config_dirs.values()]
        + kept
        + [f"++{key}={value}" for key, value in sorted(project.data.items())]
    )


@dataclass
class Pool:
    role: str  # chief | worker | ps
    replicas: int
    machine_type: str
    accelerator_type: Optional[str] = None
    accelerator_count: int = 0

    def machine_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"machine_type": self.machine_type}
        if self.accelerator_type:
            spec.update(accelerator_type=self.accelerator_type, accelerator_count=self.accelerator_count)
        return spec


@dataclass
class JobSpec:
    display_name: str
    pools: list[Pool]
    image: str
    uses_package: bool  # prebuilt image: python_package_spec installing the staged wheel
    package_uri: str
    args: list[str]
    env: dict[str, str]
    base_output_dir: str
    staging_dir: str
    labels: dict[str, str]
    restart_job_on_worker_restart: bool
    timeout_s: Optional[float]
    service_account: Optional[str] = None
    notes: list[str] = field(default_factory=list)

    def worker_pool_specs(self) -> list[dict[str, Any]]:
        """aiplatform.CustomJob(worker_pool_specs=...) in Vertex's pool order; {} holds an empty pool's place."""
        env = [{"name": k, "value": v} for k, v in self.env.items()]
        if self.uses_package:
            code = {
                "python_package_spec": {
                    "executor_image_uri": self.image,
                    "package_uris": [self.package_uri],
                    "python_module": PYTHON_MODULE,
                    "args": list(self.args),
                    "env": env,
                }
            }
        else:  # an image whose entrypoint is tfrun (containers/training/Dockerfile)
            code = {"container_spec": {"image_uri": self.image, "args": list(self.args), "env": env}}
        by_role = {p.role: p for p in self.pools if p.replicas}
        specs: list[dict[str, Any]] = []
        for role in ("chief", "worker", "ps"):
            pool = by_role.get(role)
            specs.append(
                {} if pool is None else {"machine_spec": pool.machine_spec(), "replica_count": pool.replicas, **code}
            )
        while specs and not specs[-1]:
            specs.pop()
        return specs


def training_image(cluster: Any, region: str, gpu: bool) -> str:
    if cluster.container == "prebuilt":
        return catalog.prebuilt_training_image(region, gpu)
    if cluster.container == "tfrun":
        return cluster.tfrun_image
    return cluster.container


def job_spec(
    config: Any,
    overrides: list[str],
    run_id: str,
    labels: dict[str, str],
    *,
    display_name: Optional[str] = None,
    trial_keys: Optional[tuple[str, ...]] = None,
    project: Any = None,
) -> JobSpec:
    """The CustomJob (or a tuning job's trial job) of this config; `project`: the staged ProjectPlan, if any."""
    cluster, cloud = config.cluster, config.cloud
    tpu = cluster.machine_type in catalog.TPU_MACHINES
    gpu = cluster.accelerator_type is not None and not tpu
    layout = cluster.layout(config.strategy.name)
    pools = [
        Pool("chief", 1, cluster.machine_type, cluster.accelerator_type, cluster.accelerator_count),
        Pool("worker", layout["worker"], cluster.machine_type, cluster.accelerator_type, cluster.accelerator_count),
    ]
    if layout["ps"]:  # parameter servers hold variables: CPU machines
        pools.append(
            Pool(
                "ps",
                layout["ps"],
                cluster.ps_machine_type or (cluster.machine_type if not (gpu or tpu) else "n1-standard-4"),
            )
        )
    staging = staging_dir(cloud, run_id)
    image = training_image(cluster, cloud.region, gpu)
    notes = []
    if cluster.container == "prebuilt":
        notes.append(
            f"prebuilt TF {catalog.PREBUILT_TF_TRAINING_VERSION} image: pip installs the staged tfrun "
            f"wheel and with it TensorFlow {catalog.TRAINED_WITH_TF} (pinned), at every replica's start"
        )
    from tfrun.tasks.vertex.package import wheel_name

    return JobSpec(
        display_name=display_name or f"{config.model_name}-{run_id}",
        pools=pools,
        image=image,
        uses_package=cluster.container == "prebuilt",
        package_uri=f"{staging}{wheel_name()}",
        args=project_args(replica_args(overrides, trial_keys=trial_keys), project),
        env={
            PARENT_RUN_ENV: run_id,
            **({PROJECT_ENV: staging + project_files.ARCHIVE} if project and project.files else {}),
        },
        base_output_dir=base_output_dir(cloud, config.model_name, run_id),
        staging_dir=staging,
        labels=labels,
        restart_job_on_worker_restart=cluster.restarts_together(config.strategy.name),
        timeout_s=config.run.timeout_s,
        service_account=cluster.service_account,
        notes=notes,
    )


def describe(spec: JobSpec) -> list[str]:
    """The job as lines of text (the dry run, and the submit step's log)."""
    lines = []
    for number, pool in enumerate(spec.pools):
        if not pool.replicas:
            continue
        gpu = f" + {pool.accelerator_count} x {pool.accelerator_type}" if pool.accelerator_type else ""
        lines.append(f"pool {number} {pool.role:<6} {pool.replicas} x {pool.machine_type}{gpu}")
    how = (
        f"python -m {PYTHON_MODULE} (= tfrun) after installing {spec.package_uri}"
        if spec.uses_package
        else "the image's entrypoint (tfrun)"
    )
    lines += [
        f"image       {spec.image}",
        f"command     {how}",
        f"args        {' '.join(spec.args) or '(none)'}",
        f"output      {spec.base_output_dir} (AIP_MODEL_DIR model/, AIP_CHECKPOINT_DIR checkpoints/, "
        "AIP_TENSORBOARD_LOG_DIR logs/)",
        f"staging     {spec.staging_dir} (the wheel, its requirements and the composed config"
        + (
            f"; the project, unpacked by every replica before tfrun starts: {spec.env[PROJECT_ENV]})"
            if PROJECT_ENV in spec.env
            else ")"
        ),
        f"scheduling  restart_job_on_worker_restart={spec.restart_job_on_worker_restart}, timeout "
        + (
            f"{spec.timeout_s:g} s (run.timeout_s)"
            if spec.timeout_s
            else "Vertex's default of 7 days (set run.timeout_s to bound the cost)"
        ),
        f"labels      {spec.labels}",
    ]
    return lines + spec.notes
