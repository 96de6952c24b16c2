"""target=tfserving steps, and the `serve` and `rollback` jobs.

After `export`:
    tfserving_push     the export into the repository as a version (+ warm-up requests file)
    tfserving_start    start the server (auto | binary | docker | embedded) or attach to one; wait until
                       ModelService reports the version AVAILABLE
    tfserving_parity   REST and gRPC predictions on the holdout == the trained model's (exact)
    tfserving_latency  p50/p99 for batch 1 and a large batch, both protocols
    tfserving_report   the deployment in the record; stop the server unless target.keep_running
If the health check or parity fails, the new version is set aside at once (automatic rollback),
the deployment is recorded as rolled_back, later steps are skipped and tfserving_report fails
the run. Module level imports no TensorFlow: the rollback job never loads it.
"""

from __future__ import annotations

import atexit
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tfrun.tasks.parity import compare as _compare
from tfrun.tasks.parity import reference_name, trained_predictions
from tfrun.tasks.tfserving import backends, metrics, repository
from tfrun.tasks.tfserving.clients import GrpcClient, NotAvailable, RestClient, ServingRequestError, timed

STATE = "tfserving"


class DeploymentFailed(RuntimeError):
    """The new version failed its health check or parity and was rolled back."""

    user_facing = True  # the message says what failed and where the version went: no traceback


@dataclass
class Deployment:
    model_name: str
    version: int
    version_path: Path
    model_dir: Path
    copied: bool
    input_name: str
    warmup_records: int = 0
    backend: str = ""
    spec: Optional[backends.ServerSpec] = None
    server: Optional[backends.ServerProcess] = None
    attached: bool = False
    available_after_s: Optional[float] = None
    failed: Optional[str] = None
    rolled_back: Optional[dict[str, Any]] = None
    parity: dict[str, Any] = field(default_factory=dict)
    latency_ms: dict[str, Any] = field(default_factory=dict)
    handed_over: bool = False
    split: Optional[dict[str, Any]] = None


def _rel(path: Any) -> str:
    from tfrun.tasks.core.record_io import relative

    return relative(path)


def sanitize(text: str) -> str:
    """Machine paths out of text kept in the record (the working dir becomes '.')."""
    from tfrun.tasks.core.record_io import sanitize as hide

    return hide(text)


def _deployment(ctx: Any) -> Deployment:
    return ctx.need(STATE)


def _base_path(cfg: Any) -> Path:
    return Path(cfg.target.base_path or cfg.models_dir)


# ----------------------------------------------------------------------------------------- push
def push_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    from tfrun.tasks.export import tree_files, tree_sha256

    export, data = ctx.need("export"), ctx.need("data")
    target = cfg.target
    model = repository.model_dir(_base_path(cfg), cfg.model_name)
    version, path, copied = repository.push(Path(export["path"]), model, int(export["version"]))
    deployment = Deployment(
        model_name=cfg.model_name,
        version=version,
        version_path=path,
        model_dir=model,
        copied=copied,
        input_name=data.input_name,
    )
    ctx.state[STATE] = deployment
    artifacts = []
    if copied:
        files = tree_files(path)
        artifacts.append(
            {
                "kind": "tfserving_version",
                "path": _rel(path),
                "model_name": cfg.model_name,
                "version": version,
                "sha256": tree_sha256(files),
                "bytes": sum(f["bytes"] for f in files),
            }
        )
    note = ""
    if target.warmup and target.warmup_records > 0:
        warm = repository.write_warmup(
            path, cfg.model_name, data.input_name, data.x_holdout, records=target.warmup_records
        )
        deployment.warmup_records = min(target.warmup_records, len(data.x_holdout))
        files = tree_files(warm.parent)
        artifacts.append(
            {
                "kind": "tfserving_warmup",
                "path": _rel(warm),
                "version": version,
                "records": deployment.warmup_records,
                "sha256": files[0]["sha256"],
                "bytes": files[0]["bytes"],
            }
        )
        note = f", warm-up file with {deployment.warmup_records} request(s)"
    where = "copied into the repository" if copied else "in place"
    return {
        "summary": f"{_rel(path)} (version {version}, {where}{note})",
        "version": version,
        "path": _rel(path),
        "repository": _rel(model.parent),
        "copied": copied,
        "artifacts": artifacts,
    }


# ---------------------------------------------------------------------------------------- start
def _batching_file(options: Any, ctx: Any) -> Optional[Path]:
    """The batching parameters file TF Serving reads, written into the run dir (None when batching is off)."""
    if not options.enable_batching:
        return None
    from tfrun.tasks.tfserving.config import BatchingParameters

    b = options.batching
    params = BatchingParameters(
        max_batch_size=b.max_batch_size,
        batch_timeout_micros=b.batch_timeout_micros,
        max_enqueued_batches=b.max_enqueued_batches,
        num_batch_threads=b.num_batch_threads,
        allowed_batch_sizes=list(b.allowed_batch_sizes or []),
        enable_large_batch_splitting=b.enable_large_batch_splitting,
    )
    params.validate()
    path = Path(ctx.run_dir) / "tfserving_batching.config"
    path.write_text(params.to_text())
    return path


def _cleanup(ctx: Any) -> None:
    """At interpreter exit: stop a server this run started unless it was handed over (keep_running)."""
    deployment = ctx.state.get(STATE)
    if deployment is not None and deployment.server is not None and not deployment.handed_over:
        if deployment.server.alive():
            deployment.server.stop()


def _balanced(target: Any) -> bool:
    """Replicas behind nginx (target.replicas > 1 or a split) rather than one server."""
    return int(target.get("replicas", 1)) > 1 or bool(target.get("split"))


def _labels(target: Any, version: int) -> dict[str, int]:
    """target.version_labels with "new" as this run's version."""
    from tfrun.tasks.core.schema.targets import NEW_VERSION

    return {str(k): version if str(v) == NEW_VERSION else int(v) for k, v in (target.version_labels or {}).items()}


def _start_group(target: Any, ctx: Any, deployment: Deployment, backend: str, spec: backends.ServerSpec) -> Any:
    """target.replicas servers behind nginx on the ports asked for (spec's), serving this version and the labelled."""
    from tfrun.tasks.tfserving.replicas import ReplicaGroup

    labels = _labels(target, deployment.version)
    return ReplicaGroup.start(
        backend=backend,
        template=spec,
        replicas=int(target.replicas),
        folder=Path(ctx.run_dir) / "tfserving-group",
        versions=sorted({deployment.version, *labels.values()}),
        labels=labels,
        split={str(k): int(v) for k, v in (target.split or {}).items()},
        config_poll_seconds=int(target.config_poll_seconds),
        balancer_ports=(spec.rest_port, spec.grpc_port),
        detached=bool(target.keep_running),
        timeout=float(target.start_timeout_s),
    )


def start_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    deployment = _deployment(ctx)
    target = cfg.target
    found: dict[str, str] = {}
    started = time.monotonic()
    try:
        if target.attach:
            spec = backends.ServerSpec(
                model_name=cfg.model_name,
                base_path=deployment.model_dir,
                host=target.host,
                grpc_port=target.grpc_port,
                rest_port=target.rest_port,
            )
            deployment.backend, deployment.attached, deployment.spec = "attached", True, spec
            if not backends.port_open(spec.client_host, spec.grpc_port):
                raise RuntimeError(f"target.attach=true but nothing listens on {spec.grpc_target}")
        else:
            backend, found = backends.choose(target.server)
            spec = backends.ServerSpec(
                model_name=cfg.model_name,
                base_path=deployment.model_dir,
                host=target.host,
                grpc_port=target.grpc_port,
                rest_port=target.rest_port,
                poll_wait_seconds=max(1, int(round(target.poll_wait_seconds))),
                batching_parameters_file=_batching_file(target, ctx),
                monitoring_config_file=metrics.monitoring_file(target, ctx.run_dir),
                enable_warmup=target.warmup,
                max_load_retries=target.load_retries,
                max_request_bytes=target.max_request_bytes,
                docker_image=target.docker_image,
            ).with_free_ports()
            deployment.backend, deployment.spec = backend, spec
            atexit.register(_cleanup, ctx)
            if _balanced(target):
                deployment.server = _start_group(target, ctx, deployment, backend, spec)
                spec = deployment.spec = deployment.server.spec
            else:
                deployment.server = backends.start(
                    backend, spec, log_path=Path(ctx.run_dir) / "tfserving.log", detached=bool(target.keep_running)
                )
                backends.wait_serving(deployment.server, target.start_timeout_s)
        client = GrpcClient(spec.grpc_target, timeout=target.request_timeout_s)
        try:
            states = client.wait_available(
                cfg.model_name,
                deployment.version,
                timeout=target.start_timeout_s,
                alive=deployment.server.alive if deployment.server else None,
            )
        finally:
            client.close()
    except (NotAvailable, RuntimeError, ServingRequestError, OSError) as err:
        return _fail(cfg, ctx, "health check", str(err))
    deployment.available_after_s = round(time.monotonic() - started, 3)
    pid = deployment.server.pid if deployment.server else None
    who = "attached to the server" if deployment.attached else f"{deployment.backend} server (pid {pid})"
    if deployment.server is not None and hasattr(deployment.server, "replicas"):
        pids = ", ".join(str(r.pid) for r in deployment.server.replicas)
        who = f"nginx (pid {pid}) in front of {len(deployment.server.replicas)} {deployment.backend} replicas (pids {pids})"
    return {
        "summary": f"{who} at {spec.grpc_target} (gRPC) and {spec.rest_url} (REST): version "
        f"{deployment.version} AVAILABLE after {deployment.available_after_s:.1f} s",
        "backend": deployment.backend,
        "backends": found,
        "pid": pid,
        "grpc_target": spec.grpc_target,
        "rest_url": spec.rest_url,
        "available_after_s": deployment.available_after_s,
        "model_status": states,
        "argv": [sanitize(a) for a in (deployment.server.argv if deployment.server else [])],
    }


# --------------------------------------------------------------------------------------- parity
def served_outputs(outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """(probabilities, class ids or None) from one answer, whichever signature the export has.

    The default export has one output, which REST's row format leaves unnamed (RestClient calls it
    `output`) and gRPC names `probabilities`; with export.class_id_output=true both are named.
    """
    probabilities = outputs.get("probabilities", outputs.get("output"))
    if probabilities is None:
        raise KeyError(f"outputs {sorted(outputs)}")
    classes = outputs.get("class_id")
    return (
        np.asarray(probabilities, dtype=np.float32),
        None if classes is None else np.asarray(classes, dtype=np.int64),
    )


def parity_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    deployment = _deployment(ctx)
    if deployment.failed:
        return {"summary": f"skipped ({deployment.failed})", "skipped": True}
    data, holdout = ctx.need("data"), np.asarray(ctx.need("holdout_probabilities"), dtype=np.float32)
    target = cfg.target
    n = min(int(target.parity_examples or len(data.x_holdout)), len(data.x_holdout))
    x, holdout = data.x_holdout[:n], holdout[:n]
    batch = int(cfg.train.batch_size)  # the batches the trained model's predictions were computed in
    model = ctx.state.get("model")
    reference = trained_predictions(model, x, batch) if model is not None else None
    spec = deployment.spec
    assert spec is not None
    rest, grpc_client = (
        RestClient(spec.rest_url, timeout=target.request_timeout_s),
        GrpcClient(spec.grpc_target, timeout=target.request_timeout_s),
    )
    try:
        answers: dict[str, list[dict[str, np.ndarray]]] = {"rest": [], "grpc": []}
        versions = set()
        for i in range(0, n, batch):
            chunk = x[i : i + batch]
            answers["rest"].append(
                rest.predict(cfg.model_name, instances=chunk, version=deployment.version, signature="serving_default")
            )
            g, answered = grpc_client.predict(
                cfg.model_name, {deployment.input_name: chunk}, version=deployment.version
            )
            answers["grpc"].append(g)
            versions.add(answered)
        served = {k: [served_outputs(a) for a in v] for k, v in answers.items()}
    except (ServingRequestError, OSError) as err:
        return _fail(cfg, ctx, "parity", f"a request failed: {err}")
    except KeyError as err:
        return _fail(cfg, ctx, "parity", f"an answer has no probabilities: {err}")
    finally:
        rest.close()
        grpc_client.close()
    report: dict[str, Any] = {
        "examples": n,
        "batch_size": batch,
        "answered_by_versions": sorted(versions),
        "reference": f"{reference_name(ctx)}, as exported (tf.function over [None, ...] inputs)"
        if reference is not None
        else "the evaluate step's predictions",
        "tolerance": float(target.parity_atol),
        "holdout_tolerance": float(target.parity_holdout_atol),
    }
    for name, parts in served.items():
        probs = np.concatenate([p for p, _ in parts])
        classes = None if any(c is None for _, c in parts) else np.concatenate([c for _, c in parts])
        report[name] = _compare(
            probs, classes, reference, holdout, float(target.parity_atol), float(target.parity_holdout_atol)
        )
    report["outputs"] = sorted(answers["grpc"][0]) if answers["grpc"] else []  # gRPC names every output
    if reference is not None:
        report["trained_vs_evaluate_max_abs_diff"] = float(np.abs(reference - holdout).max())
    report["passed"] = versions == {deployment.version} and report["rest"]["passed"] and report["grpc"]["passed"]
    deployment.parity = report
    if not report["passed"]:
        why = "; ".join(
            f"{k}: max |diff| {report[k].get('max_abs_diff', float('nan')):.3g} vs {reference_name(ctx)}, "
            f"{report[k]['max_abs_diff_vs_evaluate']:.3g} vs the evaluate step"
            for k in ("rest", "grpc")
        )
        if versions != {deployment.version}:
            why += f"; answered by version(s) {sorted(versions)}"
        result = _fail(cfg, ctx, "parity", f"served predictions differ from {reference_name(ctx)} ({why})")
        result["parity"] = report
        return result
    exact = all(report[k].get("exact") for k in ("rest", "grpc"))
    kind = "bit-exactly" if exact else f"within {target.parity_atol:g}"
    return {
        "summary": f"REST and gRPC equal {reference_name(ctx)} {kind} on {n} holdout examples (vs the evaluate "
        f"step's predictions: max |diff| "
        f"{max(report['rest']['max_abs_diff_vs_evaluate'], report['grpc']['max_abs_diff_vs_evaluate']):.2g})",
        "parity": report,
    }


# -------------------------------------------------------------------------------------- latency


def latency_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    deployment = _deployment(ctx)
    if deployment.failed:
        return {"summary": f"skipped ({deployment.failed})", "skipped": True}
    data, target, spec = ctx.need("data"), cfg.target, deployment.spec
    assert spec is not None
    one = data.x_holdout[:1]
    reps = -(-int(target.large_batch) // len(data.x_holdout))
    big = np.concatenate([data.x_holdout] * reps)[: int(target.large_batch)]
    rest, grpc_client = (
        RestClient(spec.rest_url, timeout=target.request_timeout_s),
        GrpcClient(spec.grpc_target, timeout=target.request_timeout_s),
    )
    name, v, input_name = cfg.model_name, deployment.version, deployment.input_name
    large = f"batch_{len(big)}"
    try:
        result = {
            "grpc": {
                "batch_1": timed(
                    lambda: grpc_client.predict(name, {input_name: one}, version=v), target.latency_requests
                ),
                large: timed(
                    lambda: grpc_client.predict(name, {input_name: big}, version=v), target.large_batch_requests
                ),
            },
            "rest": {
                "batch_1": timed(lambda: rest.predict(name, instances=one, version=v), target.latency_requests),
                large: timed(lambda: rest.predict(name, instances=big, version=v), target.large_batch_requests),
            },
        }
    except (ServingRequestError, OSError) as err:
        return _fail(cfg, ctx, "latency", f"a request failed: {err}")
    finally:
        rest.close()
        grpc_client.close()
    deployment.latency_ms = result
    g, r = result["grpc"], result["rest"]
    summary = (
        f"gRPC p50/p99 {g['batch_1']['p50_ms']:.2f}/{g['batch_1']['p99_ms']:.2f} ms (batch 1), "
        f"{g[large]['p50_ms']:.2f}/{g[large]['p99_ms']:.2f} ms ({large.replace('_', ' ')}); REST "
        f"{r['batch_1']['p50_ms']:.2f}/{r['batch_1']['p99_ms']:.2f} ms, "
        f"{r[large]['p50_ms']:.2f}/{r[large]['p99_ms']:.2f} ms"
    )
    if _balanced(target):
        summary += " through nginx"
    if target.get("split"):
        return _split_check(cfg, ctx, deployment, summary, result)
    return {"summary": summary, "latency_ms": result}


def _split_check(cfg: Any, ctx: Any, deployment: Deployment, summary: str, latency: dict) -> dict[str, Any]:
    """target.split measured through the balancer over target.split_requests calls naming no version."""
    from tfrun.tasks.tfserving import split

    target = cfg.target
    stated = {str(k): int(v) for k, v in target.split.items()}
    try:
        measured = split.measure(
            deployment.server,
            cfg.model_name,
            deployment.input_name,
            ctx.need("data").x_holdout[:1],
            requests=int(target.split_requests),
            stated=stated,
            labels=_labels(target, deployment.version),
            tolerance=float(target.split_tolerance),
            timeout=float(target.request_timeout_s),
        )
    except (ServingRequestError, OSError) as err:
        return _fail(cfg, ctx, "split", f"a request failed: {err}")
    deployment.split = measured
    if not measured["passed"]:
        result = _fail(
            cfg,
            ctx,
            "split",
            f"target.split={stated} measured REST {measured['rest']}, gRPC {measured['grpc']} over "
            f"{measured['requests']} requests: beyond ±{measured['tolerance_points']:g} points",
        )
        result["split"] = measured
        return result
    shares = ", ".join(f"{k} {v:g}%" for k, v in measured["rest"].items())
    return {
        "summary": f"{summary}; split over {measured['requests']} requests: REST {shares}"
        + (f", gRPC {', '.join(f'{k} {v:g}%' for k, v in measured['grpc'].items())}" if measured["grpc"] else ""),
        "latency_ms": latency,
        "split": measured,
    }


# --------------------------------------------------------------------------------------- report
def _entry(cfg: Any, deployment: Deployment, status: str) -> dict[str, Any]:
    spec = deployment.spec
    entry: dict[str, Any] = {
        "kind": "tfserving",
        "status": status,
        "backend": deployment.backend,
        "model_name": deployment.model_name,
        "version": deployment.version,
        "version_path": _rel(deployment.version_path),
        "repository": _rel(deployment.model_dir.parent),
    }
    if spec is not None:
        entry.update(
            host=spec.host,
            grpc_target=spec.grpc_target,
            rest_url=f"{spec.rest_url}/v1/models/{deployment.model_name}",
            predict_url=f"{spec.rest_url}/v1/models/{deployment.model_name}:predict",
        )
        if spec.monitoring_config_file is not None:
            entry["metrics_url"] = spec.rest_url + metrics.DEFAULT_PATH
    server = deployment.server
    if server is not None:
        entry["pid"] = server.pid if status == "serving" else None
        entry["server_pid"] = server.pid
        entry["log"] = _rel(server.log_path)
        if deployment.backend == "binary":
            entry["bind_note"] = "tensorflow_model_server has no bind-address flag: it listens on all interfaces"
    if status == "serving" and spec is not None:
        entry["query"] = f"curl {spec.rest_url}/v1/models/{deployment.model_name}"
        if server is not None:
            entry["stop"] = server.stop_command()
    if server is not None and hasattr(server, "describe"):  # a group of replicas behind nginx
        entry.update(_group_entry(server, status))
    if deployment.split is not None:
        entry["split"] = deployment.split
    entry["batching"] = bool(getattr(cfg.target, "enable_batching", False))
    entry["warmup_records"] = deployment.warmup_records
    entry["available_after_s"] = deployment.available_after_s
    entry["parity"] = deployment.parity
    entry["latency_ms"] = deployment.latency_ms
    if deployment.rolled_back:
        entry["rolled_back"] = deployment.rolled_back
        entry["failure"] = deployment.failed
    return entry


def _group_entry(group: Any, status: str) -> dict[str, Any]:
    """The balancer's URLs, every replica and the requests each answered (nginx's access log, by upstream)."""
    counts = group.counts()
    described = group.describe()
    replicas = []
    for r in described["replicas"]:
        answered = counts.replicas.get(r["index"], {})
        replicas.append(
            {
                **r,
                "config_file": _rel(group.folder / r["config_file"]),
                "log": _rel(group.folder / r["log"]),
                "answered": {"rest": answered.get("rest", 0), "grpc": answered.get("grpc", 0)},
                "pid": r["pid"] if status == "serving" else None,
                "server_pid": r["pid"],
            }
        )
    balancer = described["balancer"]
    return {
        "balancer": {
            "kind": "nginx",
            "rest_url": balancer["rest_url"],
            "grpc_target": balancer["grpc_target"],
            "pid": balancer["pid"] if status == "serving" else None,
            "server_pid": balancer["pid"],
            "config": _rel(group.balancer.conf),
            "access_log": _rel(group.balancer.access_log),
            "statuses": dict(counts.statuses),
            "counted_from": "nginx's access log ($upstream_addr of each request)",
        },
        "replicas": replicas,
        "group": _rel(group.folder),
        "version_labels": described["labels"],
        "served_versions": described["versions"],
        "pids": group.pids() if status == "serving" else [],
    }


def _fail(cfg: Any, ctx: Any, stage: str, reason: str) -> dict[str, Any]:
    """Automatic rollback: set the new version aside, stop a server we started, record it."""
    deployment = _deployment(ctx)
    deployment.failed = f"{stage} failed: {reason}"
    moved: Optional[str] = None
    moved_artifacts: list[dict[str, str]] = []
    try:
        if deployment.version_path.exists():
            moved = _rel(repository.set_aside(deployment.model_dir, deployment.version))
            moved_artifacts.append({"path": _rel(deployment.version_path), "moved_to": moved})
    except OSError as err:
        moved = f"could not move it: {err}"
    remaining = repository.versions(deployment.model_dir)
    deployment.rolled_back = {
        "version": deployment.version,
        "moved_to": moved,
        "now_newest": remaining[-1] if remaining else None,
    }
    log_tail: list[str] = []
    if deployment.server is not None:
        log_tail = deployment.server.log_tail()
        deployment.server.stop()
    entry = _entry(cfg, deployment, "rolled_back")
    entry["server_log_tail"] = log_tail
    return {
        "summary": f"FAILED ({stage}): {reason} -> automatic rollback: version {deployment.version} set aside "
        f"to {moved}",
        "failed": True,
        "rolled_back": deployment.rolled_back,
        "deployments": [entry],
        "moved": moved_artifacts,  # the record marks the artifacts in the moved folder (the export, its warm-up)
    }


def report_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    deployment = _deployment(ctx)
    if deployment.failed:
        raise DeploymentFailed(
            f"{deployment.failed}; version {deployment.version} was rolled back "
            f"(set aside to {deployment.rolled_back and deployment.rolled_back['moved_to']})"
        )
    keep = bool(cfg.target.keep_running) and deployment.server is not None
    if keep:
        deployment.handed_over = True
        status = "serving"
    elif deployment.attached:
        status = "serving"
    else:
        assert deployment.server is not None
        deployment.server.stop()
        status = "stopped"
    entry = _entry(cfg, deployment, status)
    if keep:
        tail = f"; left running: {entry['query']}; stop with `{entry['stop']}`"
    elif deployment.attached:
        tail = f"; served by the server at {entry['grpc_target']}"
    elif "replicas" in entry:
        tail = "; nginx and every replica stopped"
    else:
        tail = f"; server pid {deployment.server.pid if deployment.server else '?'} stopped"
    where = deployment.backend
    if "replicas" in entry:
        answered = ", ".join(str(sum(r["answered"].values())) for r in entry["replicas"])
        where = (
            f"{len(entry['replicas'])} {deployment.backend} replicas behind nginx at {entry['balancer']['rest_url']} "
            f"(REST) and {entry['balancer']['grpc_target']} (gRPC), requests answered per replica: {answered}"
        )
    return {
        "summary": f"{deployment.model_name} version {deployment.version} on {where}{tail}",
        "deployments": [entry],
        "status": status,
    }


# ------------------------------------------------------------------------------------- job=serve
def serve_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    """job=serve: run the server in the foreground on an existing repository until stopped."""
    s = cfg.serve
    backend, found = backends.choose(s.server)
    spec = backends.ServerSpec(
        model_name=s.model_name,
        base_path=repository.model_dir(s.base_path, s.model_name),
        host=s.host,
        grpc_port=s.grpc_port,
        rest_port=s.rest_port,
        poll_wait_seconds=max(1, int(round(s.poll_wait_seconds))),
        batching_parameters_file=_batching_file(s, ctx),
        monitoring_config_file=metrics.monitoring_file(s, ctx.run_dir),
        enable_warmup=s.warmup,
        max_load_retries=s.load_retries,
        max_request_bytes=s.max_request_bytes,
        docker_image=s.docker_image,
        model_config_file=Path(s.model_config_file) if s.model_config_file else None,
    ).with_free_ports()
    if not s.model_config_file and not repository.versions(spec.base_path):
        raise FileNotFoundError(
            f"no versions in {_rel(spec.base_path)}: train one first (`tfrun`) or set "
            "serve.base_path / serve.model_name"
        )
    log_path = Path(ctx.run_dir) / "tfserving.log"
    replicas = int(s.get("replicas", 1))
    if replicas > 1:  # the newest version on N replicas behind nginx (job=promote changes what they serve)
        from tfrun.tasks.tfserving.replicas import ReplicaGroup

        server: Any = ReplicaGroup.start(
            backend=backend,
            template=spec,
            replicas=replicas,
            folder=Path(ctx.run_dir) / "tfserving-group",
            versions=repository.versions(spec.base_path)[-1:],
            labels={},
            split={},
            config_poll_seconds=int(s.config_poll_seconds),
            balancer_ports=(spec.rest_port, spec.grpc_port),
            detached=False,
            timeout=float(s.start_timeout_s),
        )
        spec, log_path = server.spec, server.log_path
    else:
        server = backends.start(backend, spec, log_path=log_path, detached=False)
    started = time.monotonic()
    entry = {
        "kind": "tfserving",
        "status": "serving",
        "backend": backend,
        "model_name": s.model_name,
        "grpc_target": spec.grpc_target,
        "rest_url": f"{spec.rest_url}/v1/models/{s.model_name}",
        **({"metrics_url": spec.rest_url + metrics.DEFAULT_PATH} if s.metrics else {}),
        "pid": server.pid,
        "log": _rel(log_path),
    }
    reason, serving = "stopped", False
    try:
        backends.wait_serving(server, s.start_timeout_s)
        who = f"nginx pid {server.pid} in front of {replicas} {backend} replicas" if replicas > 1 else ""
        print(
            f"[tfserving] {who or f'{backend} server pid {server.pid}'} serving {s.model_name} from "
            f"{_rel(spec.base_path)}: gRPC {spec.grpc_target}, REST {spec.rest_url}/v1/models/{s.model_name} "
            f"(log: {_rel(log_path)}; Ctrl-C stops it)",
            flush=True,
        )
        serving = True
        deadline = None if s.duration_s is None else started + float(s.duration_s)
        while server.alive():
            if deadline is not None and time.monotonic() >= deadline:
                reason = f"serve.duration_s={s.duration_s:g} reached"
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("the server exited by itself:\n" + "\n".join(server.log_tail()))
    except KeyboardInterrupt:  # how job=serve is meant to end: the runner passes Ctrl-C and SIGTERM on as SIGINT
        if not serving:  # stopped before it served anything: the job was interrupted, not ended
            raise
        reason = "stopped by Ctrl-C or SIGTERM"
    finally:
        code = server.stop()
    entry.update(status="stopped", stopped=reason, exit_code=code, served_s=round(time.monotonic() - started, 1))
    if replicas > 1:
        entry.update(_group_entry(server, "stopped"))
    on = f"{replicas} {backend} replicas behind nginx" if replicas > 1 else backend
    return {
        "summary": f"served {s.model_name} for {entry['served_s']:.1f} s on {on} ({reason})",
        "backends": found,
        "deployments": [entry],
    }


# ---------------------------------------------------------------------------------- job=rollback
PROBE_S = 5.0  # how long job=rollback waits for rollback.url's first answer before touching anything


class RollbackFailed(RuntimeError):
    """job=rollback could not do what was asked; the message says what it did (the repository is as before)."""

    user_facing = True  # the message is the whole story: no traceback


def _server_status(client: RestClient, model_name: str) -> list[dict[str, Any]]:
    """The model's version states at the server, or RollbackFailed naming why the server gave none."""
    try:
        return client.status(model_name)
    except (ServingRequestError, OSError) as err:
        raise RollbackFailed(
            f"rollback.url={client.url} did not answer for model {model_name!r} within {client.timeout:g} s "
            f"({err}); nothing was moved: start the server, fix rollback.url, or leave rollback.url unset to "
            "roll the repository back without waiting for a server"
        ) from None


def _wait_switched(client: RestClient, model_name: str, target: int, moved: set[int], wait_s: float) -> Any:
    """(seconds, states) once the server serves `target` and none of `moved`; None when wait_s passes first."""
    started = time.monotonic()
    states: list[dict[str, Any]] = []
    while True:
        try:
            states = client.status(model_name)
            live = {s["version"] for s in states if s["state"] == "AVAILABLE"}
            if target in live and not live & moved:
                return round(time.monotonic() - started, 3), states
        except (ServingRequestError, OSError):
            pass
        if time.monotonic() - started > wait_s:
            return None
        time.sleep(0.1)


def _put_back(model: Path, moved: dict[int, Path]) -> list[str]:
    """Every version set aside returned to its place, newest first; what could not be, said."""
    notes = []
    for version, path in sorted(moved.items(), reverse=True):
        try:
            notes.append(f"{version} back to {_rel(repository.put_back(model, path))}")
        except OSError as err:
            notes.append(f"{version} left in {_rel(path)} ({err})")
    return notes


def rollback_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    """job=rollback: set newer versions aside; with rollback.url, only once that server answers, and wait until
    it serves the target (if it does not within rollback.wait_s, the versions are put back). The running replica
    groups of the model move to the target first, one replica at a time (tasks/tfserving/group_rollback.py)."""
    r = cfg.rollback
    model = repository.model_dir(r.base_path, r.model_name)
    before = repository.versions(model)
    try:
        target, newer = repository.rollback_versions(model, r.to_version)
    except (FileNotFoundError, ValueError) as err:
        raise RollbackFailed(f"{err}; nothing was moved") from None
    from tfrun.tasks.tfserving import group_rollback
    from tfrun.tasks.tfserving.replicas import ReplicaGroup

    groups = ReplicaGroup.running(model)
    client = RestClient(r.url, timeout=PROBE_S, retries=0) if r.url else None
    try:
        if client is not None:
            _server_status(client, r.model_name)  # it answers before anything is touched
        # a group serves versions by number: it leaves them, replica by replica, before their folders are set aside
        moved_groups = group_rollback.roll_back(groups, target, newer, timeout=float(r.wait_s), relative=_rel)
        done = repository.rollback(model, target)
        moved_paths = {int(v): Path(p) for v, p in done["set_aside"].items()}
        moved = {v: _rel(p) for v, p in moved_paths.items()}
        result: dict[str, Any] = {
            "to_version": target,
            "versions_before": before,
            "versions_after": repository.versions(model),
            "set_aside": moved,
        }
        summary = f"{_rel(model)}: newest {before[-1]} -> {target}; set aside " + ", ".join(
            f"{v} to {p}" for v, p in moved.items()
        )
        if client is not None:
            switched = _wait_switched(client, r.model_name, target, set(moved), float(r.wait_s))
            if switched is None:
                notes = _put_back(model, moved_paths)
                raise RollbackFailed(
                    f"the server at {r.url} did not switch {r.model_name} to version {target} within "
                    f"rollback.wait_s={r.wait_s:g} s, so the rollback was undone: version(s) {', '.join(notes)}; "
                    f"the repository holds {', '.join(map(str, repository.versions(model)))} as before"
                    + (
                        f" (the replica groups serve version {target})"
                        if any(g["replicas"] for g in moved_groups)
                        else ""
                    )
                )
            result.update(server=r.url, switched_after_s=switched[0], model_status=switched[1])
            summary += f"; {r.url} serves version {target} after {switched[0]:.1f} s"
    finally:
        if client is not None:
            client.close()
    if moved_groups:
        result["groups"] = moved_groups
        rolled = [g for g in moved_groups if not g.get("unchanged")]
        summary += (
            f"; {len(rolled)} of {len(moved_groups)} replica group(s) moved to version {target}, one replica at a time"
        )
        summary += "".join(
            f" ({g['balancer']}: replicas {', '.join(str(s['replica']) for s in g['replicas'])})" for g in rolled
        )
    result["summary"] = summary
    result["deployments"] = [
        {
            "kind": "tfserving_rollback",
            "model_name": r.model_name,
            "repository": _rel(model.parent),
            "to_version": target,
            "set_aside": moved,
            "server": r.url or None,
            "groups": moved_groups,
        }
    ]
    return result
