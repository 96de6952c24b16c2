"""target=vertex_batch: the holdout through a Vertex batch prediction job, accuracy checked.

    vertex_batch_input  holdout instances as JSON Lines shards (uploaded under the run's batch prefix)
    vertex_batch_job    BatchPredictionJob.submit with machine, accelerators and replicas, then
                        followed with a deadline (target.timeout_s; cancelled when it passes);
                        target.mode=local runs the same shards through the SavedModel here instead
    vertex_batch_read   prediction.results-* read back (iter_outputs), each prediction matched to its
                        instance by content (files come in any order), errors counted with their first
                        lines; accuracy against the labels must equal the local model's
Results are the same files in both modes, so the read step is one code path.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from tfrun.tasks import gcs
from tfrun.tasks.core.vertex_catalog import TERMINAL_JOB_STATES
from tfrun.tasks.vertex import client
from tfrun.tasks.vertex.endpoint import probabilities
from tfrun.tasks.vertex.steps import vertex_run

KEPT_ERROR_LINES = 5


def _line(instance: Any) -> str:
    return json.dumps(instance, separators=(",", ":"))


def _key(instance: Any) -> bytes:
    """An instance by its numbers (Vertex may write `0.0` back as `0`, `1e-05` as `0.00001`): to match a
    prediction line to the instance it answers, whatever text the service echoes."""
    arr = np.asarray(instance, dtype=np.float64)
    return repr(arr.shape).encode() + arr.tobytes()


def write_shards(x: np.ndarray, folder: Path, shards: int) -> list[Path]:
    """instances-0000K-of-0000N.jsonl, one JSON instance per line, split evenly."""
    folder.mkdir(parents=True, exist_ok=True)
    n = min(shards, len(x))
    paths = []
    for k, part in enumerate(np.array_split(np.arange(len(x)), n)):
        path = folder / f"instances-{k:05d}-of-{n:05d}.jsonl"
        path.write_text("".join(_line(x[i].tolist()) + "\n" for i in part))
        paths.append(path)
    return paths


def _batch_prefix(cfg: Any, ctx: Any) -> str:
    version = int(ctx.need("export")["version"])
    return f"gs://{cfg.cloud.bucket}/{cfg.cloud.prefix}/{cfg.model_name}/batch/{version:04d}-{ctx.run_id}/"


def input_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    target, data = cfg.target, ctx.need("data")
    n = min(int(target.examples or len(data.x_holdout)), len(data.x_holdout))
    folder = Path(ctx.run_dir) / "vertex_batch"
    paths = write_shards(data.x_holdout[:n], folder / "input", int(target.shards))
    state: dict[str, Any] = {"n": n, "folder": folder, "paths": paths, "timings_s": {}}
    ctx.state["vertex_batch"] = state
    where = f"{folder / 'input'}"
    if target.mode == "cloud":
        run = vertex_run(cfg, ctx)
        prefix = _batch_prefix(cfg, ctx)
        run.ledger.add("gcs_objects", prefix, created=True, details={"holds": "batch instances and results"})
        report = gcs.upload_tree(
            run.storage, folder / "input", prefix + "input/", workers=int(cfg.cloud.upload_workers), progress=False
        )
        state.update(prefix=prefix, input_uris=[f"{prefix}input/{p.name}" for p in paths])
        state["timings_s"]["upload_instances"] = report.seconds
        run.timings_s["upload_instances"] = report.seconds
        where = prefix + "input/"
    from tfrun.tasks.core.record_io import relative

    return {
        "summary": f"{n} holdout instance(s) in {len(paths)} JSON Lines shard(s) at "
        f"{where if where.startswith('gs://') else relative(where)}",
        "examples": n,
        "shards": len(paths),
    }


# ------------------------------------------------------------------------------------------ job
def _follow(job: Any, target: Any) -> str:
    """Wait for a terminal state, printing changes; cancel the job when the deadline passes."""
    deadline = time.monotonic() + float(target.timeout_s)
    last = ""
    while True:
        state = job.state.name
        stats = job.completion_stats
        done = f"{stats.successful_count} done, {stats.failed_count} failed" if stats else ""
        line = f"{state.removeprefix('JOB_STATE_')}" + (f" ({done})" if done else "")
        if line != last:
            print(f"[vertex] batch job {job.resource_name.rsplit('/', 1)[-1]}: {line}", flush=True)
            last = line
        if state in TERMINAL_JOB_STATES:
            return state
        if time.monotonic() > deadline:
            job.cancel()
            raise TimeoutError(
                f"batch job {job.resource_name} not finished within target.timeout_s={target.timeout_s:g} s: cancelled"
            )
        time.sleep(float(target.poll_interval_s))


def _cloud_job(cfg: Any, ctx: Any, state: dict[str, Any]) -> dict[str, Any]:
    run, target = vertex_run(cfg, ctx), cfg.target
    aiplatform = run.sdk()
    name = f"{target.model_display_name}-{ctx.run_id}"[:128]
    job = aiplatform.BatchPredictionJob.submit(
        job_display_name=name,
        model_name=run.model,
        instances_format="jsonl",
        predictions_format="jsonl",
        gcs_source=state["input_uris"],
        gcs_destination_prefix=state["prefix"] + "output/",
        machine_type=target.machine_type,
        accelerator_type=target.accelerator_type,
        accelerator_count=int(target.accelerator_count) or None,
        starting_replica_count=int(target.starting_replicas),
        max_replica_count=int(target.max_replicas),
        labels=run.labels,
    )
    run.ledger.add(
        "batch_job",
        job.resource_name,
        created=True,
        display_name=name,
        details={
            "machine_type": target.machine_type,
            "accelerator_type": target.accelerator_type,
            "accelerator_count": int(target.accelerator_count),
            "starting_replicas": int(target.starting_replicas),
            "max_replicas": int(target.max_replicas),
        },
    )
    state["job"] = job
    final = _follow(job, target)
    if final != "JOB_STATE_SUCCEEDED":
        error = job.error
        raise RuntimeError(
            f"batch job {job.resource_name} ended {final}: {getattr(error, 'message', '') or 'no error message'}"
        )
    stats = job.completion_stats
    run.entry.update(batch_job=job.resource_name, output_directory=job.output_info.gcs_output_directory)
    return {
        "job": job.resource_name,
        "state": final,
        "output": job.output_info.gcs_output_directory,
        "successful": int(stats.successful_count),
        "failed": int(stats.failed_count),
    }


def _local_job(cfg: Any, ctx: Any, state: dict[str, Any]) -> dict[str, Any]:
    """The same shards through the exported SavedModel on this machine, written as Vertex writes them."""
    import tensorflow as tf

    from tfrun.tasks.export import load_once

    export = ctx.need("export")
    signature = load_once(ctx, export["path"]).signatures["serving_default"]
    input_name = next(iter(signature.structured_input_signature[1]))
    out_dir = state["folder"] / "output" / f"prediction-{cfg.model_name}-{time.strftime('%Y_%m_%dT%H_%M_%S')}"
    out_dir.mkdir(parents=True, exist_ok=True)
    total = len(state["paths"])
    for k, path in enumerate(state["paths"]):
        instances = [json.loads(line) for line in path.read_text().splitlines() if line]
        dtype = signature.structured_input_signature[1][input_name].dtype
        outputs = {name: t.numpy() for name, t in signature(**{input_name: tf.constant(instances, dtype)}).items()}
        rows = [{name: value[i].tolist() for name, value in outputs.items()} for i in range(len(instances))]
        predictions = [next(iter(r.values())) if len(r) == 1 else r for r in rows]
        (out_dir / f"prediction.results-{k:05d}-of-{total:05d}").write_text(
            "".join(
                json.dumps({"instance": inst, "prediction": pred}) + "\n" for inst, pred in zip(instances, predictions)
            )
        )
    state["local_output"] = out_dir
    return {"output": str(out_dir), "state": "local", "successful": state["n"], "failed": 0}


def job_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    state = ctx.need("vertex_batch")
    started = time.monotonic()
    cloud = cfg.target.mode == "cloud"
    result = _cloud_job(cfg, ctx, state) if cloud else _local_job(cfg, ctx, state)
    seconds = round(time.monotonic() - started, 3)
    state["timings_s"]["job"] = seconds
    if cloud:
        vertex_run(cfg, ctx).timings_s["batch_job"] = seconds
    where = result["job"] if cloud else "the SavedModel on this machine (target.mode=local)"
    return {
        "summary": f"{where}: {result['state'].removeprefix('JOB_STATE_')}, {result['successful']} "
        f"prediction(s), {result['failed']} failed ({seconds:.1f} s)",
        **result,
    }


# ----------------------------------------------------------------------------------------- read
def _output_files(cfg: Any, ctx: Any, state: dict[str, Any]) -> Iterable[tuple[str, str]]:
    """(file name, text) of every output file, from GCS (iter_outputs) or the local folder."""
    if "job" in state:
        for blob in state["job"].iter_outputs():
            yield blob.name.rsplit("/", 1)[-1], blob.download_as_bytes().decode()
    else:
        for path in sorted(state["local_output"].iterdir()):
            yield path.name, path.read_text()


def match(x: np.ndarray, lines: Iterable[dict[str, Any]]) -> tuple[list[Optional[Any]], list[dict[str, Any]]]:
    """Each result line's prediction at its instance's index (identical instances share predictions)."""
    slots: dict[bytes, list[int]] = {}
    for i, row in enumerate(x):
        slots.setdefault(_key(row.tolist()), []).append(i)
    predictions: list[Optional[Any]] = [None] * len(x)
    unmatched: list[dict[str, Any]] = []
    for line in lines:
        try:
            free = slots.get(_key(line.get("instance")))
        except (TypeError, ValueError):  # not numbers of the instances' shape: an error line, say
            free = None
        if not free or "prediction" not in line:
            unmatched.append(line)
            continue
        predictions[free.pop(0)] = line["prediction"]
    return predictions, unmatched


def read_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    state, data, target = ctx.need("vertex_batch"), ctx.need("data"), cfg.target
    started = time.monotonic()
    n = state["n"]
    x, y = data.x_holdout[:n], data.y_holdout[:n]
    results: list[dict[str, Any]] = []
    error_lines: list[str] = []
    files = {"results": 0, "errors": 0}
    for name, text in _output_files(cfg, ctx, state):
        lines = [line for line in text.splitlines() if line.strip()]
        if name.startswith("prediction.results-"):
            files["results"] += 1
            results += [json.loads(line) for line in lines]
        elif name.startswith("prediction.errors_stats-"):
            files["errors"] += 1
            error_lines += lines
    predictions, unmatched = match(x, results)
    missing = [i for i, p in enumerate(predictions) if p is None]
    state["timings_s"]["read_back"] = round(time.monotonic() - started, 3)
    if "job" in state:
        vertex_run(cfg, ctx).timings_s["read_back"] = state["timings_s"]["read_back"]
    report: dict[str, Any] = {
        "examples": n,
        "result_files": files["results"],
        "error_files": files["errors"],
        "predictions": n - len(missing),
        "missing": len(missing),
        "unmatched_lines": len(unmatched),
        "error_lines": len(error_lines),
        "first_errors": [
            client.short_error(Exception(e))
            for e in (error_lines + [json.dumps(u)[:300] for u in unmatched])[:KEPT_ERROR_LINES]
        ],
        "timings_s": state["timings_s"],
    }
    if missing:
        _set_entry(cfg, ctx, report)
        raise RuntimeError(
            f"{len(missing)} of {n} instance(s) have no prediction in the job's output "
            f"({report['error_lines']} error line(s); first: {report['first_errors'][:1]})"
        )
    served = probabilities(predictions)
    local = np.asarray(ctx.need("holdout_probabilities"), dtype=np.float32)[:n]
    accuracy = float((served.argmax(axis=1) == y).mean())
    local_accuracy = float((local.argmax(axis=1) == y).mean())
    report.update(
        accuracy=accuracy,
        local_accuracy=local_accuracy,
        accuracy_delta=accuracy - local_accuracy,
        class_disagreements=int((served.argmax(axis=1) != local.argmax(axis=1)).sum()),
        max_abs_diff_vs_local=float(np.abs(served - local).max()),
    )
    _set_entry(cfg, ctx, report)
    if abs(accuracy - local_accuracy) > float(target.max_accuracy_delta):
        raise RuntimeError(
            f"batch accuracy {accuracy:.4f} differs from the local model's {local_accuracy:.4f} "
            f"on the same {n} examples (allowed: {target.max_accuracy_delta:g})"
        )
    return {
        "summary": f"{n} prediction(s) matched to their instances; accuracy {accuracy:.4f} = local "
        f"{local_accuracy:.4f}; {report['error_lines']} error line(s)",
        "batch": report,
        "metrics": {"batch_accuracy": accuracy},
    }


def _set_entry(cfg: Any, ctx: Any, report: dict[str, Any]) -> None:
    if cfg.target.mode == "cloud":
        vertex_run(cfg, ctx).entry["batch"] = report
    else:
        ctx.state.setdefault("vertex_local", {}).update(mode="local", batch=report)
