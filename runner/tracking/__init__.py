"""Where runs are shown besides their records (track=mlflow: tfrun.runner.tracking.mlflow_log)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from tfrun.tasks.core.schema import option_class
from tfrun.tasks.core.schema.track import LOCAL_STORE


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


def after_run(track: Any, run_dir: Path, data: dict[str, Any]) -> None:
    """track=mlflow: the finished run's record as an MLflow run; a failure to log is one warning line."""
    if not logs_to_mlflow(track):
        return
    from tfrun.runner.records.record import RECORD_NAME
    from tfrun.runner.tracking import mlflow_log

    try:
        client, experiment, uri = _open(track)  # type: ignore[misc]
        run_id, _ = mlflow_log.log_record(client, experiment, run_dir / RECORD_NAME, data)
        print(f"[tfrun] MLflow: run {run_id} in experiment {track.experiment!r} at {uri}", flush=True)
    except Exception as err:  # noqa: BLE001 - the record is the truth; tracking must not fail the run
        mlflow_log.warn("logging", err)


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
