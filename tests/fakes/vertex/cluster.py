"""What Vertex gives each replica of a CustomJob (or of a tuning trial): its command and its environment.

Worker pools (`jobSpec.workerPoolSpecs`, validated here as Vertex's front end does before a job exists):
pool 0 = the chief (primary replica, replicaCount must be 1), 1 = workers, 2 = parameter servers,
3 = evaluators; an empty `{}` pool is a placeholder (pool 1 may be empty when pool 2 is used).

Command of a replica, started as a local process (no Docker here, so no image is pulled):
  * containerSpec: `command + args` with Vertex's `$(VAR)` expansion from the replica's environment;
    without a command, an image whose URI contains `tfrun-training` runs `tfrun <args>` (beside
    sys.executable or on PATH) as a stand-in for that image's ENTRYPOINT; any other image fails the job
    (the fake cannot know its entrypoint).
  * pythonPackageSpec: every packageUri must exist in the GCS emulator (else the replica fails as the
    executor's `gsutil cp` does), then `sys.executable -m <pythonModule> <args>` runs: the current
    interpreter, where the code is already importable, stands in for installing the package into
    executorImageUri. For the same reason the fake's own working directory is put on the PYTHONPATH of every
    replica that runs code not installed here (each replica runs in a working directory of its own, as on its
    own VM); a replica running tfrun or an installed module gets the tests' own PYTHONPATH.
  * tuning trials: `--<parameterId>=<value>` appended to every replica's args, as Vertex does.

Environment of a replica (exactly these, plus the spec's `env`, expanded, applied last):
  TF_CONFIG      {"cluster": {"chief": [a], "worker": [...], "ps": [...]}, "environment": "cloud",
                  "task": {"type": "chief"|"worker"|"ps"|"evaluator", "index": i, "trial": "<id>"|""},
                  "job": <the job spec>}; evaluators are not in "cluster" (TensorFlow's rule).
  CLUSTER_SPEC   {"cluster": {"workerpool0": [a], "workerpool1": [...], ...}, "environment": "cloud",
                  "task": {"type": "workerpool<N>", "index": i, "trial": "<id>"|""}, "job": <the job spec>}
  AIP_MODEL_DIR / AIP_CHECKPOINT_DIR / AIP_TENSORBOARD_LOG_DIR = <baseOutputDirectory>/[<trial id>/]
                  model/ | checkpoints/ | logs/  (only when baseOutputDirectory is set, as on Vertex)
  CLOUD_ML_JOB_ID (the CustomJob's or the tuning job's id); for trials CLOUD_ML_TRIAL_ID,
  CLOUD_ML_HP_METRIC_FILE (a file of this replica, where cloudml-hypertune writes) and
  CLOUD_ML_HP_METRIC_TAG (the study's first metric id); STORAGE_EMULATOR_HOST (the fake's GCS emulator).
Addresses are 127.0.0.1:<free port>, one per replica, the same in every replica's TF_CONFIG.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .containers import expand, free_port
from .machines import check_machine_spec
from .wire import ApiError

if TYPE_CHECKING:
    from .gcsio import Gcs

TASK_TYPES = ("chief", "worker", "ps", "evaluator")
# inherited variables that belong to the replica's own Vertex environment, never to the fake's
_VERTEX_VARS = ("TF_CONFIG", "CLUSTER_SPEC", "AIP_", "CLOUD_ML_")


def check_job_spec(spec: Any, where: str = "custom_job.job_spec") -> dict:
    """A validated copy of a CustomJobSpec; INVALID_ARGUMENT as Vertex answers before creating the job."""
    if not isinstance(spec, dict):
        raise ApiError("INVALID_ARGUMENT", f"{where} is required.")
    pools = spec.get("workerPoolSpecs") or []
    if not pools or not pools[0]:
        raise ApiError("INVALID_ARGUMENT", f"{where}.worker_pool_specs[0] (the primary replica) is required.")
    if len(pools) > 4:
        raise ApiError(
            "INVALID_ARGUMENT",
            f"{where}.worker_pool_specs: at most 4 worker pools are allowed "
            f"(chief, workers, parameter servers, evaluators); got {len(pools)}.",
        )
    checked = []
    for number, pool in enumerate(pools):
        at = f"{where}.worker_pool_specs[{number}]"
        if not pool:
            checked.append({})
            continue
        count = int(pool.get("replicaCount", 0) or 0)
        if count < 1:
            raise ApiError("INVALID_ARGUMENT", f"{at}.replica_count must be greater than 0.")
        if number == 0 and count != 1:
            raise ApiError(
                "INVALID_ARGUMENT",
                f"{at}.replica_count must be 1: the first worker pool holds the primary replica only (got {count}).",
            )
        container, package = pool.get("containerSpec"), pool.get("pythonPackageSpec")
        if bool(container) == bool(package):
            raise ApiError(
                "INVALID_ARGUMENT", f"{at}: exactly one of container_spec and python_package_spec is required."
            )
        if container and not container.get("imageUri"):
            raise ApiError("INVALID_ARGUMENT", f"{at}.container_spec.image_uri is required.")
        if package:
            for key, name in (
                ("executorImageUri", "executor_image_uri"),
                ("packageUris", "package_uris"),
                ("pythonModule", "python_module"),
            ):
                if not package.get(key):
                    raise ApiError("INVALID_ARGUMENT", f"{at}.python_package_spec.{name} is required.")
        machine = check_machine_spec(pool.get("machineSpec") or {}, at)
        checked.append(dict(pool, replicaCount=count, machineSpec=machine))
    base = (spec.get("baseOutputDirectory") or {}).get("outputUriPrefix", "")
    if base and not base.startswith("gs://"):
        raise ApiError(
            "INVALID_ARGUMENT", f"{where}.base_output_directory.output_uri_prefix must be a gs:// URI, got {base!r}."
        )
    return dict(spec, workerPoolSpecs=checked)


def arg_text(value: Any) -> str:
    """A parameter value as Vertex writes it on the command line (whole doubles without `.0`)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


@dataclass
class ReplicaPlan:
    """One replica to start: who it is, what it runs, with which environment (the Vertex-given part)."""

    pool: int
    index: int
    task_type: str
    address: str
    argv: list[str]
    env: dict[str, str]
    workdir: Path
    installed: bool = False  # it runs tfrun's entry or an installed module: no stand-in PYTHONPATH entry needed

    @property
    def name(self) -> str:
        return f"workerpool{self.pool}-{self.index}"


def _tfrun() -> str | None:
    beside = Path(sys.executable).parent / "tfrun"
    return str(beside) if beside.is_file() else shutil.which("tfrun")


def _argv(pool: dict, env: dict[str, str], extra_args: list[str], gcs: "Gcs", name: str) -> list[str]:
    """The replica's argv, or ApiError (the job fails with it) when the fake cannot run it."""
    container = pool.get("containerSpec")
    if container:
        command = [expand(part, env) for part in container.get("command", [])]
        args = [expand(part, env) for part in container.get("args", [])] + extra_args
        if command:
            return command + args
        image = container["imageUri"]
        if "tfrun-training" in image and (tfrun := _tfrun()) is not None:
            return [tfrun, *args]
        raise ApiError(
            "INVALID_ARGUMENT",
            f'The replica {name} could not be started: image "{image}" has no '
            "container_spec.command and fake-vertex cannot run an image's own entrypoint (it runs "
            "replicas as local processes, without Docker; images named *tfrun-training* run `tfrun`).",
        )
    package = pool["pythonPackageSpec"]
    for uri in package["packageUris"]:
        if not gcs.exists(uri):
            raise ApiError(
                "INVALID_ARGUMENT",
                f"The replica {name} exited with a non-zero status of 1. "
                f"Termination reason: Error.\nCommandException: No URLs matched: {uri}\n"
                f"(fake-vertex: the package is not in the GCS emulator)",
            )
    return [
        sys.executable,
        "-m",
        package["pythonModule"],
        *[expand(part, env) for part in package.get("args", [])],
        *extra_args,
    ]


@functools.lru_cache(maxsize=None)
def _installed_packages() -> frozenset[str]:
    return frozenset(importlib.metadata.packages_distributions())


def _runs_installed_code(pool: dict) -> bool:
    """Whether a replica runs tfrun (the tfrun-training image's stand-in) or a module installed here: only other
    code needs the fake's folder on its PYTHONPATH as the stand-in for a package installed in the image."""
    container = pool.get("containerSpec")
    if container:
        return not container.get("command")
    return pool["pythonPackageSpec"]["pythonModule"].partition(".")[0] in _installed_packages()


def plan_replicas(
    spec: dict,
    job_id: str,
    workdir: Path,
    gcs: "Gcs",
    storage_endpoint: str | None,
    *,
    trial: dict | None = None,
    metric_tag: str = "",
) -> list[ReplicaPlan]:
    """Every replica of a validated job spec with its argv and Vertex environment (ApiError: the job fails)."""
    pools = spec["workerPoolSpecs"]
    addresses = [[f"127.0.0.1:{free_port()}" for _ in range(pool.get("replicaCount", 0))] for pool in pools]
    cluster = {TASK_TYPES[n]: addrs for n, addrs in enumerate(addresses) if addrs and TASK_TYPES[n] != "evaluator"}
    pool_cluster = {f"workerpool{n}": addrs for n, addrs in enumerate(addresses) if addrs}
    trial_id = trial["id"] if trial else ""
    base = (spec.get("baseOutputDirectory") or {}).get("outputUriPrefix", "").rstrip("/")
    if base and trial_id:
        base = f"{base}/{trial_id}"
    extra_args = [f"--{p['parameterId']}={arg_text(p['value'])}" for p in trial["parameters"]] if trial else []
    job_view = {k: v for k, v in spec.items() if not k.startswith("_")}
    plans = []
    for number, pool in enumerate(pools):
        for index, address in enumerate(addresses[number]):
            task = {"index": index, "trial": trial_id}
            name = f"workerpool{number}-{index}"
            replica_dir = workdir / name
            replica_dir.mkdir(parents=True, exist_ok=True)
            env = {
                "TF_CONFIG": json.dumps(
                    {
                        "cluster": cluster,
                        "environment": "cloud",
                        "task": {"type": TASK_TYPES[number], **task},
                        "job": job_view,
                    }
                ),
                "CLUSTER_SPEC": json.dumps(
                    {
                        "cluster": pool_cluster,
                        "environment": "cloud",
                        "task": {"type": f"workerpool{number}", **task},
                        "job": job_view,
                    }
                ),
                "CLOUD_ML_JOB_ID": job_id,
            }
            if base:
                env.update(
                    AIP_MODEL_DIR=f"{base}/model/",
                    AIP_CHECKPOINT_DIR=f"{base}/checkpoints/",
                    AIP_TENSORBOARD_LOG_DIR=f"{base}/logs/",
                )
            if trial:
                env.update(
                    CLOUD_ML_TRIAL_ID=trial_id,
                    CLOUD_ML_HP_METRIC_TAG=metric_tag,
                    CLOUD_ML_HP_METRIC_FILE=str(replica_dir / "hypertune" / "output.metrics"),
                )
            if storage_endpoint:
                env["STORAGE_EMULATOR_HOST"] = storage_endpoint
            code = pool.get("containerSpec") or pool.get("pythonPackageSpec") or {}
            for item in code.get("env", []):  # later variables may refer to earlier ones, as in Kubernetes
                env[item["name"]] = expand(item.get("value", ""), env)
            argv = _argv(pool, env, extra_args, gcs, name)
            plans.append(
                ReplicaPlan(
                    number, index, TASK_TYPES[number], address, argv, env, replica_dir, _runs_installed_code(pool)
                )
            )
    return plans


def process_env(given: dict[str, str], installed: bool = False) -> dict[str, str]:
    """The full environment of a replica process: the fake's own, minus Vertex variables, plus `given`. The fake's
    folder is on its PYTHONPATH unless it runs installed code (then its environment is the tests' own, so a tfrun
    replica may fork from the suite's warm TensorFlow as the tests' tfrun commands do)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_VERTEX_VARS)}
    env.pop("PYTHONSTARTUP", None)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if installed:
        paths = [p for p in paths if p != os.getcwd()]
    elif os.getcwd() not in paths:  # the stand-in for a package installed in the image: importable anywhere
        paths = [os.getcwd(), *paths]
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    else:
        env.pop("PYTHONPATH", None)
    return {**env, **given}
