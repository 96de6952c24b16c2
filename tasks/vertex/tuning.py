"""sweep=vertex: one HyperparameterTuningJob whose trials are cluster=vertex runs, summarised like local sweeps.

vertex_tuning_job  the study (tuning.params as parameter specs, optimized_metric and its goal, counts,
                   algorithm) around the trial CustomJob of tfrun.tasks.vertex.training_spec; submitted and
                   followed like a CustomJob (Ctrl-C cancels it)
vertex_trials      every trial's record (written by its chief beside its model) into the sweep dir as
                   trial-<id>/record.json, with the local command line that reproduces it; trials that
                   failed get a failed record with Vertex's reason, trials Vertex's automated stopping
                   (tuning.early_stopping) ended a `pruned` one. tfrun.runner.sweeps.summary then writes the
                   table, the best trial and sweep.csv/json/png from them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tfrun.tasks import gcs
from tfrun.tasks.core.record_io import PRUNED, SCHEMA_VERSION
from tfrun.tasks.core.schema import option_class
from tfrun.tasks.core.vertex_env import parameter_id, record_uri
from tfrun.tasks.vertex import training_spec
from tfrun.tasks.vertex.steps import vertex_run
from tfrun.tasks.vertex.training import (
    STATE,
    VertexJobFailed,
    add_outputs,
    custom_job,
    follow,
    job_error,
    job_spec,
    submit_options,
)

TRIAL_STATES = {0: "unspecified", 1: "requested", 2: "active", 3: "stopping", 4: "succeeded", 5: "infeasible"}
# Keys a local rerun of a trial must not take from the sweep's command line.
SWEEP_ONLY = (*training_spec.TUNING_ONLY, *training_spec.LOCAL_ONLY, "cluster=", "cluster.", "+cluster.")


def space(cfg: Any) -> dict[str, Any]:
    """{config key: SearchParam} of cfg.tuning.params (validated by the runner before this child started)."""
    from omegaconf import OmegaConf

    from tfrun.tasks.core.schema.vertex import search_space

    return search_space(OmegaConf.to_container(cfg.tuning.params))[0]


def parameter_specs(params: dict[str, Any]) -> dict[str, Any]:
    """The search space as the SDK's parameter specs, keyed by Vertex parameter id."""
    from google.cloud.aiplatform import hyperparameter_tuning as hpt

    specs = {}
    for key, spec in params.items():
        kind, scale, values = spec.type.value, spec.scale.value, list(spec.values or [])
        if kind == "double":
            specs[parameter_id(key)] = hpt.DoubleParameterSpec(min=float(spec.min), max=float(spec.max), scale=scale)
        elif kind == "integer":
            specs[parameter_id(key)] = hpt.IntegerParameterSpec(min=int(spec.min), max=int(spec.max), scale=scale)
        elif kind == "categorical":
            specs[parameter_id(key)] = hpt.CategoricalParameterSpec(values=[str(v) for v in values])
        else:
            specs[parameter_id(key)] = hpt.DiscreteParameterSpec(values=[float(v) for v in values], scale=scale)
    return specs


def set_stopping(job: Any, choice: str) -> str | None:
    """tuning.early_stopping as the automated stopping spec of the job's study (the SDK's HyperparameterTuningJob
    takes no argument for it: it is a field of the StudySpec it builds, set before run() sends it); its REST name."""
    from tfrun.tasks.core.schema.vertex import STOPPING_SPECS, EarlyStopping

    found = STOPPING_SPECS.get(EarlyStopping(choice))
    if found is None:
        return None
    rest, field, message = found
    study = job._gca_resource.study_spec  # the request's StudySpec (of the API version the SDK speaks)
    setattr(study, field, getattr(type(study), message)(use_elapsed_duration=False))
    return rest


def goal(cfg: Any) -> str:
    from tfrun.tasks.core.schema.vertex import Goal, TuningConfig

    return "maximize" if TuningConfig(goal=Goal(str(cfg.tuning.goal))).maximize(cfg.optimized_metric) else "minimize"


def job_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    run = vertex_run(cfg, ctx)
    state = ctx.need(STATE)
    aiplatform = run.sdk()
    tuning = cfg.tuning
    params = space(cfg)
    keys = tuple(params)
    spec = job_spec(cfg, ctx, run, display_name=f"{tuning.display_name}-trial", trial_keys=keys)
    for line in training_spec.describe(spec):
        print(f"[vertex]   trial {line}", flush=True)
    trial_job = custom_job(aiplatform, spec)
    algorithm = {"bayesian": None, "random": "random", "grid": "grid"}[str(tuning.algorithm)]
    job = aiplatform.HyperparameterTuningJob(
        display_name=tuning.display_name,
        custom_job=trial_job,
        metric_spec={cfg.optimized_metric: goal(cfg)},
        parameter_spec=parameter_specs(params),
        max_trial_count=int(tuning.max_trial_count),
        parallel_trial_count=int(tuning.parallel_trial_count),
        max_failed_trial_count=int(tuning.max_failed_trial_count),
        search_algorithm=algorithm,
        measurement_selection=str(tuning.measurement),
        labels=spec.labels,
    )
    stopping = set_stopping(job, str(tuning.early_stopping))
    if stopping:
        print(f"[vertex] automated stopping: {stopping} (each trial reports every epoch's measurement)", flush=True)
    outputs = add_outputs(run, spec, "created by the trials: their models, checkpoints, logs and records")
    started = time.monotonic()
    # HyperparameterTuningJob has no submit(): run(sync=False) creates it from a thread; this step follows it
    job.run(**submit_options(spec), sync=False)
    job.wait_for_resource_creation()
    entry = run.ledger.add(
        "tuning_job",
        job.resource_name,
        created=True,
        display_name=tuning.display_name,
        details={
            "base_output_dir": spec.base_output_dir,
            "state": job.state.name,
            "max_trial_count": int(tuning.max_trial_count),
        },
    )
    print(f"[vertex] submitted {job.resource_name}\n[vertex] console: {entry.console}", flush=True)
    final = follow(job, run, entry, float(cfg.cluster.poll_interval_s), "tuning job")
    state.update(
        job=job,
        base_output_dir=spec.base_output_dir,
        outputs=outputs,
        entry=entry,
        final=final,
        seconds=round(time.monotonic() - started, 3),
    )
    if final not in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED"):  # a failed study still has trials to summarise
        raise VertexJobFailed(f"Vertex tuning job {job.resource_name} ended {final}: {job_error(job)}")
    return {
        "summary": f"{job.resource_name} {final} in {state['seconds']:.1f} s, {len(job.trials)} trial(s)",
        "job": job.resource_name,
        "state": final,
        "console": entry.console,
        "trial_worker_pools": spec.worker_pool_specs(),
        "image": spec.image,
        "args": spec.args,
        **({"error": job_error(job)} if final != "JOB_STATE_SUCCEEDED" else {}),
    }


def local_overrides(cfg: Any, sweep_overrides: list[str], trial_overrides: list[str]) -> list[str]:
    """The command line that reruns a trial on this machine: the sweep's overrides less what made it a Vertex
    sweep, then the trial's values (as the trial received them, so floats are the same floats)."""
    keys = {o.split("=", 1)[0] for o in trial_overrides}
    base = [o for o in sweep_overrides if not o.startswith(SWEEP_ONLY) and o.split("=", 1)[0].lstrip("+") not in keys]
    if option_class("strategy", cfg.strategy).needs_cluster:
        base.append("cluster=local")
    return base + trial_overrides


def _trial_values(trial: Any, keys: dict[str, str]) -> list[str]:
    from tfrun.tasks.core.vertex_env import config_key

    out = []
    for p in trial.parameters:
        value = p.value
        text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
        out.append(f"{keys.get(p.parameter_id, config_key(p.parameter_id))}={text}")
    return out


def _config_dir_args(ctx: Any) -> list[str]:
    """The sweep's --config-dir folders, as a local rerun of a trial needs them (relative to here)."""
    import os

    return [f"--config-dir={os.path.relpath(d)}" for d in ctx.config_dirs]


def _failed_record(cfg: Any, trial: Any, overrides: list[str], reason: str, job: str) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": f"trial-{trial.id}",
        "job": "train",
        "status": "failed",
        "command": {"argv": ["tfrun", *overrides], "overrides": overrides},
        "config": {"optimized_metric": cfg.optimized_metric},
        "metrics": {"final": {}, "history": {}},
        "seconds": None,
        "error": {"type": "TrialFailed", "message": reason},
        "steps": [],
        "artifacts": [],
        "vertex_trial": {"job": job, "trial": trial.id, "state": TRIAL_STATES.get(int(trial.state), "?")},
    }


def stopped_early(cfg: Any, trial: Any, record: dict[str, Any] | None) -> dict[str, Any] | None:
    """How Vertex's automated stopping ended a trial (as a pruned record's `pruned`), or None when it did not.

    Vertex marks no trial "stopped early" (REST v1): it stops the trial's job (state STOPPING) and completes the
    trial with the measurements it had (SUCCEEDED). So a trial of a study with tuning.early_stopping whose chief
    did not finish its run (no record, or one left interrupted or running) but which Vertex did not fail was
    stopped by the rule."""
    from tfrun.tasks.core.schema.vertex import EarlyStopping

    rule = EarlyStopping(str(cfg.tuning.early_stopping))
    ended = record.get("status") if record else None
    if rule is EarlyStopping.none or int(trial.state) not in (3, 4) or ended not in (None, "interrupted", "running"):
        return None
    reported = [
        (int(m.step_count), float(v.value))
        for m in trial.measurements
        for v in m.metrics
        if v.metric_id == str(cfg.optimized_metric)
    ]
    return {
        "epoch": reported[-1][0] if reported else 0,
        "of_epochs": int(cfg.train.epochs),
        "monitor": str(cfg.optimized_metric),
        "value": reported[-1][1] if reported else None,
        "reported": [value for _, value in reported],
        "pruner": f"vertex {rule.value}",
        "trial": trial.id,
    }


def trials_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    from tfrun.tasks.core.record_io import write_json_atomic

    run, state = vertex_run(cfg, ctx), ctx.need(STATE)
    job = state["job"]
    keys = {parameter_id(k): k for k in space(cfg)}
    sweep_dir = Path(ctx.run_dir).parent
    prefix = "" if Path(ctx.run_dir).name == "0" else f"{Path(ctx.run_dir).name}-"
    rows, best = [], None
    maximize = goal(cfg) == "maximize"
    for trial in job.trials:
        values = _trial_values(trial, keys)
        uri = record_uri(f"{state['base_output_dir']}{trial.id}/model/")
        try:
            record = json.loads(gcs.read_bytes(run.storage, uri))
        except FileNotFoundError:
            record = None
        written = record  # the chief's own record, as it finished its run (None: it wrote none)
        succeeded = int(trial.state) == 4 and record is not None and record.get("status") == "succeeded"
        if record is not None:
            given = [o for o in record["command"]["overrides"] if o.split("=", 1)[0] in keys.values()]
            overrides = local_overrides(cfg, ctx.overrides, given or values)
            record = {
                **record,
                "command": {"argv": ["tfrun", *_config_dir_args(ctx), *overrides], "overrides": overrides},
            }
            if not succeeded and record.get("status") == "succeeded":  # the chief ended well, Vertex says not
                record.update(status="failed", error={"type": "TrialFailed", "message": trial.infeasible_reason})
        else:
            overrides = local_overrides(cfg, ctx.overrides, values)
            record = _failed_record(
                cfg, trial, overrides, trial.infeasible_reason or "the trial wrote no record", job.resource_name
            )
            record["command"]["argv"][1:1] = _config_dir_args(ctx)
        record["vertex_trial"] = {
            "job": job.resource_name,
            "trial": trial.id,
            "record": uri,
            "state": TRIAL_STATES.get(int(trial.state), "?"),
            "final_measurement": [{"metric": m.metric_id, "value": m.value} for m in trial.final_measurement.metrics],
        }
        stopped = stopped_early(cfg, trial, written)
        if stopped:  # Vertex's automated stopping ended it: not a failure, the record says pruned
            record.update(status=PRUNED, error=None, pruned=stopped)
        target = sweep_dir / f"{prefix}trial-{trial.id}"
        target.mkdir(parents=True, exist_ok=True)
        write_json_atomic(target / "record.json", record)
        metric = record.get("metrics", {}).get("final", {}).get(cfg.optimized_metric)
        rows.append(
            {
                "trial": trial.id,
                "state": record["vertex_trial"]["state"],
                "status": record["status"],
                "metric": metric,
                "overrides": values,
                "record": str(target / "record.json"),
            }
        )
        if succeeded and metric is not None and (best is None or (metric > best[1] if maximize else metric < best[1])):
            best = (trial.id, metric)
    if state["final"] != "JOB_STATE_SUCCEEDED":
        raise VertexJobFailed(
            f"Vertex tuning job {job.resource_name} ended {state['final']}: {job_error(job)} "
            f"({len(rows)} trial record(s) written to {sweep_dir})"
        )
    for res in run.ledger.ours():
        run.ledger.set(res, "left", "kept: the trials' models and records; `tfrun-records cleanup RUN` removes them")
    done = sum(r["state"] == "succeeded" and r["status"] == "succeeded" for r in rows)
    pruned = sum(r["status"] == PRUNED for r in rows)
    return {
        "summary": f"{len(rows)} trial(s), {done} succeeded"
        + (f", {pruned} stopped early by Vertex ({cfg.tuning.early_stopping})" if pruned else "")
        + f"; best trial {best[0] if best else '-'}"
        + (f" {cfg.optimized_metric} {best[1]:.4f}" if best else ""),
        "trials": rows,
        "best_trial": best[0] if best else None,
        "metrics": {cfg.optimized_metric: best[1]} if best else {},
    }
