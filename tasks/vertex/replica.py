"""Inside a replica of a cluster=vertex job: Vertex's AIP_* folders, through google-cloud-storage.

    vertex_replica_restore  AIP_CHECKPOINT_DIR -> <run_dir>/backup before training, so a replica that
                            Vertex restarted (or a whole job restarted with restart_job_on_worker_restart)
                            resumes from the last epoch the chief backed up
    (during fit)            after every epoch the chief mirrors its backup to AIP_CHECKPOINT_DIR (the
                            `checkpoint` index last) and its TensorBoard logs to AIP_TENSORBOARD_LOG_DIR
    vertex_replica_publish  the chief's export to AIP_MODEL_DIR (saved_model.pb last, crc32c-checked) and,
                            in a tuning trial, optimized_metric reported with cloudml-hypertune
The chief's record goes to <base>/record.json when its run ends (tfrun.runner.processes.execute, publish_record).
tf.io.gfile is not used: its gs:// endpoint is fixed, so it cannot reach an emulator.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tfrun.tasks import cluster, gcs
from tfrun.tasks.core import vertex_env

CHECKPOINT_MARKERS = ("checkpoint",)  # tf.train.CheckpointManager's index: names the latest checkpoint
WORKER_DIRS = ("workertemp_",)  # tf-keras' non-chief backup dirs: never the one to resume from


def _storage(cfg: Any) -> Any:
    return gcs.storage_client(cfg.cloud)


def restore_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    uri = vertex_env.output_dirs()["checkpoints"]
    if not uri or not cfg.train.callbacks.backup_and_restore:
        return {"summary": "no AIP_CHECKPOINT_DIR or backups off: training starts at epoch 0"}
    storage = _storage(cfg)
    if not gcs.list_uris(storage, uri):
        return {"summary": f"{uri} is empty: training starts at epoch 0", "checkpoints": uri}
    files = gcs.download_tree(storage, uri, ctx.run_dir / "backup")
    return {
        "summary": f"{files} backup file(s) from {uri}: training resumes where the chief left off",
        "checkpoints": uri,
        "files": files,
    }


def epoch_sync_callback(keras: Any, cfg: Any, run_dir: Path) -> Any:
    """A callback (after the backup callback) mirroring the chief's backup and TensorBoard logs each epoch."""
    dirs = vertex_env.output_dirs()
    storage = _storage(cfg)
    chief = cluster.is_chief()

    class VertexSync(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if not chief:
                return
            backup = run_dir / "backup"
            if dirs["checkpoints"] and backup.is_dir() and any(backup.rglob("*")):
                local = [p.name for p in backup.iterdir()]
                gcs.mirror_tree(
                    storage,
                    backup,
                    dirs["checkpoints"],
                    markers=CHECKPOINT_MARKERS,
                    exclude=tuple(n for n in local if n.startswith(WORKER_DIRS)),
                )
            sync_tensorboard(storage, run_dir, dirs["tensorboard"])

    return VertexSync()


def sync_tensorboard(storage: Any, run_dir: Path, uri: str | None) -> int:
    logs = run_dir / "tensorboard"
    if not uri or not logs.is_dir() or not any(p.is_file() for p in logs.rglob("*")):
        return 0
    return gcs.upload_tree(storage, logs, uri, progress=False).uploaded


def _report_metric(cfg: Any, ctx: Any) -> dict[str, Any]:
    """optimized_metric for the tuning service, as cloudml-hypertune writes it (CLOUD_ML_HP_METRIC_FILE)."""
    from tfrun.tasks.evaluate import metrics
    from tfrun.tasks.vertex.trial_reports import metric_tag, reporter

    data = ctx.need("data")
    values = {**ctx.state.get("train_metrics", {}), **metrics(ctx.need("holdout_probabilities"), data.y_holdout)}
    name = cfg.optimized_metric
    tag = metric_tag(cfg)
    reporter().report_hyperparameter_tuning_metric(  # the reporter of the epochs' reports: it keeps them in the file
        hyperparameter_metric_tag=tag, metric_value=values[name], global_step=int(cfg.train.epochs)
    )
    return {"tag": tag, "value": values[name], "trial": os.environ.get("CLOUD_ML_TRIAL_ID")}


def publish_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    if not cluster.is_chief():
        return {"summary": f"task {cluster.task_name()}: the chief publishes the model"}
    dirs = vertex_env.output_dirs()
    storage = _storage(cfg)
    result: dict[str, Any] = {}
    parts = []
    if dirs["model"]:
        report = gcs.upload_tree(storage, ctx.need("export")["path"], dirs["model"], progress=False)
        result["model_dir"] = dirs["model"]
        parts.append(f"model -> {dirs['model']} ({report.files} file(s), crc32c verified)")
    if sync_tensorboard(storage, ctx.run_dir, dirs["tensorboard"]):
        parts.append(f"TensorBoard logs -> {dirs['tensorboard']}")
    if vertex_env.in_trial():
        result["hypertune"] = _report_metric(cfg, ctx)
        parts.append(
            f"reported {result['hypertune']['tag']}={result['hypertune']['value']:.4f} for trial "
            f"{result['hypertune']['trial']}"
        )
    return {"summary": "; ".join(parts) or "no AIP_MODEL_DIR: nothing to publish", **result}


def publish_record(path: Path, uri: str, cloud: dict[str, Any]) -> None:
    """The finished record beside the model (called by the chief's runner; prints, never raises)."""
    try:
        gcs.write_bytes(gcs.storage_client(SimpleNamespace(**cloud)), uri, path.read_bytes())
        print(f"[tfrun] record -> {uri}", flush=True)
    except Exception as err:  # noqa: BLE001 - the job's outcome stands; the submitting run says the record is missing
        print(f"[tfrun] could not write the record to {uri}: {type(err).__name__}: {err}", flush=True)
