"""Where runs are shown besides their records (track=mlflow: tfrun.runner.tracking.mlflow_log), and their exports
registered (track.register=true: MLflow's model registry, through tfrun.tasks.registry)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator, Optional

from tfrun.tasks.core.problems import Problem
from tfrun.tasks.core.schema import option_class
from tfrun.tasks.core.schema.track import LOCAL_STORE

REGISTERING_JOB = "train"  # the job whose export track.register=true registers


def logs_to_mlflow(track: Any) -> bool:
    """track=mlflow: `track` typed, the multirun's DictConfig node, or None (a config without the group)."""
    return track is not None and option_class("track", track).logs_to_mlflow


def _open(track: Any) -> Optional[tuple[Any, str, str]]:
    """track=mlflow (typed, or the multirun's DictConfig node): (client, experiment id, uri); else None."""
    if not logs_to_mlflow(track):
        return None
    from tfrun.runner.tracking import mlflow_log

    uri = track.uri or LOCAL_STORE
    client = mlflow_log.client(uri, float(track.timeout_s))
    return client, mlflow_log.experiment_id(client, str(track.experiment)), uri


def problems(config: Any) -> Iterator[Problem]:
    """track.register=true registers a training run's export: other jobs export nothing (without track=mlflow,
    the track option's own rule says so)."""
    if config.track.logs_to_mlflow and config.track.register and config.job.value != REGISTERING_JOB:
        yield Problem(
            "track.register",
            True,
            f"false with job={config.job.value} (only job=train exports a model to register)",
        )


def after_run(track: Any, run_dir: Path, data: dict[str, Any]) -> Optional[dict[str, Any]]:
    """track=mlflow: the finished run's record as an MLflow run; a failure to log is one warning line. With
    track.register=true, a succeeded run's export also becomes a registered version: the record's `registry`
    section is returned (None when nothing was registered)."""
    if not logs_to_mlflow(track):
        return None
    from tfrun.runner.records.record import RECORD_NAME
    from tfrun.runner.tracking import mlflow_log

    try:
        client, experiment, uri = _open(track)  # type: ignore[misc]
        run_id, _ = mlflow_log.log_record(client, experiment, run_dir / RECORD_NAME, data)
        print(f"[tfrun] MLflow: run {run_id} in experiment {track.experiment!r} at {uri}", flush=True)
    except Exception as err:  # noqa: BLE001 - the record is the truth; tracking must not fail the run
        mlflow_log.warn("logging", err)
        return None
    if not track.register:
        return None
    return register(client, uri, run_id, run_dir / RECORD_NAME, data)


def register(client: Any, uri: str, mlflow_run_id: str, record_path: Path, data: dict[str, Any]) -> Optional[dict]:
    """A succeeded record's export as a new version of its registered model (tfrun.tasks.registry.client.register);
    the `registry` section for its record, or None (a warning line says why) when nothing was registered."""
    from tfrun.runner.tracking import mlflow_log
    from tfrun.tasks.core.sources import saved_model_artifact

    artifact = saved_model_artifact(data)
    if data.get("status") != "succeeded" or artifact is None or not artifact.get("path"):
        print(
            f"[tfrun] MLflow registry: nothing registered (the run's status is {data.get('status')}"
            + ("" if artifact else ", it exported no SavedModel")
            + ")",
            file=sys.stderr,
            flush=True,
        )
        return None
    from tfrun.tasks.registry import client as registry

    name = str(artifact.get("model_name") or ((data.get("config") or {}).get("model_name")))
    try:
        version = registry.register(client, mlflow_run_id, name, Path(str(artifact["path"])), record_path, data)
    except Exception as err:  # noqa: BLE001 - as for logging: the record is the truth
        mlflow_log.warn("registering the model", err)
        return None
    number = int(version.version)
    section = {
        "registry": "mlflow",
        "uri": uri,
        "model": name,
        "version": number,
        "reference": f"models:/{name}/{number}",
        "mlflow_run_id": mlflow_run_id,
    }
    print(f"[tfrun] MLflow registry: {name} version {number} (models:/{name}/{number}) at {uri}", flush=True)
    return section


def after_sweep(track: Any, sweep_dir: Path) -> None:
    """track=mlflow: a finished multirun as a parent MLflow run with one nested child per job."""
    if not logs_to_mlflow(track):
        return
    from tfrun.runner.tracking import mlflow_log

    try:
        client, experiment, uri = _open(track)  # type: ignore[misc]
        parent, sent = mlflow_log.log_sweep(client, experiment, sweep_dir)
        print(f"[tfrun] MLflow: sweep run {parent} with {sent} job run(s) at {uri}", flush=True)
    except Exception as err:  # noqa: BLE001 - as for a run
        mlflow_log.warn("logging the sweep", err)
        return
    if track.get("register"):
        register_best(client, experiment, uri, sweep_dir)


def register_best(client: Any, experiment: str, uri: str, sweep_dir: Path) -> Optional[dict[str, Any]]:
    """The sweep's best job's export registered, without training it again (its MLflow run made if the job was
    not logged yet); the `registry` section, also written into the job's record, or None (a line says why)."""
    import json

    from tfrun.runner.records import reading
    from tfrun.runner.tracking import mlflow_log
    from tfrun.tasks.core.record_io import write_json_atomic
    from tfrun.tasks.core.sources import SourceError, best_job

    try:
        path = best_job(sweep_dir)
    except SourceError as err:
        print(f"[tfrun] MLflow registry: nothing registered ({err})", file=sys.stderr, flush=True)
        return None
    data = reading.read(path)
    try:
        run_id, _ = mlflow_log.log_record(client, experiment, path, data)  # found, when the sweep logged it
    except Exception as err:  # noqa: BLE001 - as for a run
        mlflow_log.warn("logging the best job", err)
        return None
    section = register(client, uri, run_id, path, data)
    if section is not None:
        raw = json.loads(path.read_text())
        raw["registry"] = section
        write_json_atomic(path, raw)
    return section
