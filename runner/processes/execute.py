"""A validated job: plan -> record -> execute in a child (or a local cluster) -> finish the record.

tfrun.runner.job imports this only once the config is valid: the record, supervisor and cloud clean-up
modules are no cost to a rejected config.
"""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from tfrun.runner.config import user_nodes
from tfrun.runner.processes import tf_log_filter, zygote
from tfrun.runner.processes import warm_child as prestart
from tfrun.runner.processes.child_env import PYTHON_HASH_SEED, child_environment
from tfrun.runner.processes.cluster_layout import local_cluster_tasks
from tfrun.runner.processes.commands import job_child_command, job_input, job_server_command
from tfrun.runner.processes.supervisor import Supervisor, TaskSpec
from tfrun.runner.records import cloud_cleanup, provenance, resume
from tfrun.runner.records.record import Record, config_hash, redact, relative
from tfrun.tasks.core import vertex_env
from tfrun.tasks.core.plans import DESCRIBING_JOBS, replica_plan
from tfrun.tasks.core.problems import ConfigError
from tfrun.tasks.core.schema import Config

EXIT_CODES = {"succeeded": 0, "pruned": 0, "failed": 1, "interrupted": 130}
# A file to which each record this command starts appends its absolute path, one line each (a sweep's jobs in
# launch order): how tfrun.run and tfrun.sweep (tfrun.runner.api) find their records without guessing.
RECORD_LOG_ENV = "TFRUN_RECORD_LOG"


def run(
    cfg: DictConfig,
    config: Config,
    run_dir: Path,
    run_id: str,
    overrides: list[str],
    multirun: bool,
    config_dirs: list[str] | None = None,
) -> float | None:
    """Record and run the job; the optimized metric, or None when the job recorded none."""
    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # type: ignore[assignment]
    replica = _in_vertex_replica(config)
    plan = replica_plan() if replica else plan_of(config)
    environment = provenance.machine()
    environment["devices"] = None  # filled in by the child once TensorFlow sees them
    record = Record.start(
        run_dir,
        run_id=run_id,
        job=config.job.value,
        run_dir=relative(run_dir),
        command=_command(overrides),
        config=redact(resolved),
        config_sha256=config_hash(resolved),
        code=_code_state(config),
        environment=environment,
        reproducibility={
            "seed": config.train.seed,
            "deterministic": config.train.deterministic,
            "python_hash_seed": PYTHON_HASH_SEED,
        },
        plan=plan,
        pids={"runner": os.getpid(), "child": None},
        resume_key=resume.resume_key(resolved),
        resumed_from_run=_resume_source(config, resolved, run_dir),
    )
    announce(record)
    print(f"[tfrun] run {record.data['run_id']} in {relative(run_dir)} (plan: {' → '.join(plan)})", flush=True)
    with zygote.for_local_cluster(config.hardware) if _local_cluster(config, replica) else nullcontext():
        supervisor = Supervisor(
            record,
            _tasks(
                config,
                record,
                job_input(run_dir, resolved, plan, run_id, overrides, config_dirs, sweep_job=multirun),
                warm_allowed=not multirun and not replica,
                trial=_optuna_trial() if multirun else {},
            ),
            timeout_s=config.run.timeout_s,
            stop_grace_s=config.run.stop_grace_s,
            log_tail_lines=config.run.log_tail_lines,
            form_timeout_s=config.cluster.form_timeout_s if _forms_a_cluster(config, replica) else None,
            tf_log_level=tf_log_filter.configured_level(config.run),
        )
        outcome = supervisor.run()
    if outcome.status != "succeeded":  # while the record still says running: `tfrun-records cleanup` waits
        cloud_cleanup.after_failure(record, resolved.get("cloud") or {}, outcome.status)
    record.finish(outcome.status, outcome.error)
    if replica:
        _publish_replica_record(record)
    if (
        not multirun and not replica
    ):  # a multirun's jobs go to the tracker with their sweep (tfrun.runner.sweeps.callback)
        from tfrun.runner import tracking

        registered = tracking.after_run(config.track, run_dir, record.data)
        if registered:  # track.register=true: the version its export became
            record.data["registry"] = registered
            record.save()
    metric = _report(record, config)
    if multirun and (outcome.status == "interrupted" or record.data.get("stopped_by")):
        raise KeyboardInterrupt  # Ctrl-C stops the whole sweep, not just this job (even one that had just finished)
    if not multirun and outcome.status != "succeeded":
        raise SystemExit(EXIT_CODES[outcome.status])
    return metric


def record_config_error(run_dir: Path, run_id: str, err: ConfigError, overrides: list[str]) -> None:
    """A sweep job's record that says why it did not run."""
    record = Record.start(
        run_dir,
        run_id=run_id,
        job=None,
        run_dir=relative(run_dir),
        command=_command(overrides),
        config=None,
        plan=[],
        code=provenance.code_state(),
        environment=provenance.machine(),
    )
    announce(record)
    record.finish(
        "failed",
        {
            "type": "ConfigError",
            "message": str(err),
            "problems": [{"key": p.key, "value": repr(p.value), "allowed": p.allowed} for p in err.problems],
        },
    )


def announce(record: Record) -> None:
    """Append the record's path to the file RECORD_LOG_ENV names, if set (appends of one short line are atomic,
    so a sweep's parallel jobs can share the file)."""
    log = os.environ.get(RECORD_LOG_ENV)
    if log:
        with open(log, "a") as f:
            f.write(f"{record.path.resolve()}\n")


def plan_of(config: Config) -> list[str]:
    """This machine's plan. Jobs without a model to deploy (serve, rollback) do not run the target's steps."""
    training = config.job.value in ("train", "deploy")
    return config.cluster.machine_steps(
        config.job.value,
        config.target.planned_steps() if training else [],
        config.target.preflight_steps() if training else [],
    )


def _command(overrides: list[str]) -> dict[str, list[str]]:
    """How the run was asked for, secrets redacted; `overrides` is what a rerun replays."""
    return {"argv": redact(["tfrun", *sys.argv[1:]]), "overrides": redact(overrides)}


def _forms_a_cluster(config: Config, replica: bool) -> bool:
    """Whether this machine's tasks must join a cluster in time (a Vertex job's submitter joins none)."""
    if config.job.value in DESCRIBING_JOBS:  # job=k8s renders the cluster it describes
        return False
    return config.strategy.needs_cluster and (not config.cluster.on_vertex or replica)


def _in_vertex_replica(config: Config) -> bool:
    """cluster=vertex inside one of the job's replicas (Vertex's environment says so): train, do not submit."""
    return config.cluster.on_vertex and vertex_env.inside_vertex()


def _publish_replica_record(record: Record) -> None:
    """The chief's record goes beside its model in Cloud Storage, where the submitting machine reads it."""
    model_dir = vertex_env.output_dirs()["model"]
    from tfrun.tasks.cluster import is_chief  # pure Python: Vertex's chief is the task of type chief

    if not model_dir or not is_chief():
        return
    from tfrun.tasks.vertex.replica import publish_record

    publish_record(record.path, vertex_env.record_uri(model_dir), record.data.get("config", {}).get("cloud") or {})


def _code_state(config: Config) -> dict[str, Any]:
    """tfrun's source state, and the user's `_target_`s with their files' sha256 and git state (if any)."""
    user = user_nodes.provenance(config)
    return {**provenance.code_state(), **({"user": user} if user else {})}


def _resume_source(config: Config, resolved: dict[str, Any], run_dir: Path) -> str | None:
    """With train.resume=true and no backup here yet, take the latest unfinished run's backup."""
    if not config.train.resume or (run_dir / "backup").is_dir():
        return None
    source = resume.latest_unfinished(resume.resume_key(resolved), exclude=run_dir)
    if source is None:
        print(
            "[tfrun] train.resume=true: no unfinished run of this config with a backup; starting at epoch 0", flush=True
        )
        return None
    resume.adopt_backup(source, run_dir)
    print(f"[tfrun] train.resume=true: continuing {relative(source)} from its backup", flush=True)
    return relative(source)


def _optuna_trial() -> dict[str, str]:
    """A job of tfrun's Optuna sweeper that prunes: the environment variable linking its process to its trial."""
    from hydra.core.hydra_config import HydraConfig

    from tfrun.runner.sweeps import trial_link

    return trial_link.job_env(HydraConfig.get())


def _local_cluster(config: Config, replica: bool) -> bool:
    """This run starts every process of a cluster here (cluster=local with a strategy that has several)."""
    return not replica and config.cluster.local_processes and config.job.value not in DESCRIBING_JOBS


def _tasks(
    config: Config, record: Record, job: bytes, warm_allowed: bool, trial: dict[str, str] | None = None
) -> list[TaskSpec]:
    """One child (the warm one when it fits), or every process of a local cluster (recorded with its spec)."""
    env = {**child_environment(config.hardware), **(trial or {})}
    if _in_vertex_replica(config):  # Vertex started this replica with its TF_CONFIG: one process of the cluster
        role = vertex_env.task().get("type", "chief")
        serves = config.strategy.chief_dispatches and role in ("worker", "ps")
        record.data["cluster"] = {"kind": "vertex", "task": vertex_env.task(), "job": os.environ.get("CLOUD_ML_JOB_ID")}
        return [
            TaskSpec(
                name="main",  # forked when a zygote is set (TF_CONFIG is read at run time), as a local cluster's tasks
                cmd=job_server_command() if serves else job_child_command(),
                env=env,
                stdin=b"" if serves else job,
                reports=not serves,
                runs_plan=not serves,
            )
        ]
    if not _local_cluster(config, replica=False):
        warm = prestart.take(env) if warm_allowed else None
        return [TaskSpec(name="main", cmd=job_child_command(), env=env, stdin=job, reports=True, warm=warm)]
    prestart.discard()
    tasks, spec = local_cluster_tasks(config, job, env)
    record.data["cluster"] = {"kind": "local", "spec": spec, "tasks": []}
    return tasks


def _report(record: Record, config: Config) -> float | None:
    data = record.data
    metric = data["metrics"]["final"].get(config.optimized_metric)
    print(f"[tfrun] {data['status']} in {data['seconds']:.1f} s", flush=True)
    if data["error"]:
        print(f"[tfrun] error: {data['error']['type']}: {data['error']['message']}", flush=True)
    if metric is not None:
        print(f"[tfrun] {config.optimized_metric} = {metric:.4f}", flush=True)
    for artifact in data["artifacts"]:
        moved = f" (moved to {artifact['moved_to']})" if artifact.get("moved_to") else ""
        print(f"[tfrun] {artifact['kind']}: {artifact['path']}{moved}", flush=True)
    print(f"[tfrun] record: {relative(record.path)}", flush=True)
    return metric
