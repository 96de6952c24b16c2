"""target=vertex_endpoint: deploy the uploaded Model to an endpoint, check its answers, time them.

vertex_deploy   endpoint reused by display name (never deleted then) or created with the run's
                labels; Model.deploy with machine, accelerators, replicas and traffic share
                (the SDK's traffic rules apply), under target.timeout_s
vertex_parity   the holdout through Endpoint.predict, in requests under target.max_payload_bytes,
                equal to the trained model's predictions (answers from other models on the
                endpoint, when this one is a canary, are retried and counted)
vertex_latency  p50/p99 of single-instance Endpoint.predict calls
"""

from __future__ import annotations

import json
import time
from typing import Any, NamedTuple

import numpy as np

from tfrun.tasks.vertex import client
from tfrun.tasks.vertex.steps import vertex_run

MAX_CANARY_TRIES = 200  # requests per chunk before a canary's answers are given up on


def _find_endpoint(aiplatform: Any, display_name: str) -> Any:
    found = aiplatform.Endpoint.list(filter=f'display_name="{display_name}"', order_by="create_time")
    return found[0] if found else None


def traffic(endpoint: Any) -> dict[str, int]:
    """The endpoint's traffic split: deployed model id -> percent."""
    return {k: int(v) for k, v in dict(endpoint.traffic_split or {}).items()}


class Deployed(NamedTuple):
    endpoint: Any  # the endpoint as Vertex answers after the deploy (its traffic split is the new one)
    id: str  # the deployed model's id on it
    seconds: float  # how long Model.deploy took


def deploy_model(
    run: Any,
    model: Any,
    endpoint: Any,
    target: Any,
    display_name: str,
    traffic_percentage: int,
    before: dict[str, int],
    **details: Any,
) -> Deployed:
    """Model.deploy with the target's machine, accelerators and replicas, under target.timeout_s, then the deployed
    model found by its display name and put in the ledger as created (with the traffic it found, so clean-up gives
    it back). One way for every step that deploys a version: target=vertex_endpoint and job=promote."""
    started = time.monotonic()
    client.with_deadline(
        lambda: model.deploy(
            endpoint=endpoint,
            deployed_model_display_name=display_name,
            machine_type=target.machine_type,
            accelerator_type=target.accelerator_type,
            accelerator_count=int(target.accelerator_count) or None,
            min_replica_count=int(target.min_replicas),
            max_replica_count=int(target.max_replicas),
            traffic_percentage=traffic_percentage,
            sync=True,
        ),
        float(target.timeout_s),
        "the deploy",
    )
    seconds = round(time.monotonic() - started, 3)
    endpoint = type(endpoint)(endpoint.resource_name)
    ours = [m for m in endpoint.list_models() if m.display_name == display_name]
    if not ours:
        raise RuntimeError(
            f"the deploy finished but {model.versioned_resource_name} is not deployed on {endpoint.resource_name}"
        )
    deployed_id = str(ours[0].id)
    run.ledger.add(
        "deployed_model",
        f"{endpoint.resource_name}/deployedModels/{deployed_id}",
        created=True,
        display_name=display_name,
        details={
            "endpoint": endpoint.resource_name,
            "traffic_before": before,
            "machine_type": target.machine_type,
            "min_replicas": int(target.min_replicas),
            "max_replicas": int(target.max_replicas),
            **details,
        },
    )
    return Deployed(endpoint, deployed_id, seconds)


def deploy_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    run = vertex_run(cfg, ctx)
    aiplatform, target = run.sdk(), cfg.target
    endpoint = _find_endpoint(aiplatform, target.endpoint)
    if endpoint is None:
        endpoint = aiplatform.Endpoint.create(display_name=target.endpoint, labels=run.labels, sync=True)
        run.ledger.add("endpoint", endpoint.resource_name, created=True, display_name=target.endpoint)
        reused = False
    else:
        run.ledger.add(
            "endpoint",
            endpoint.resource_name,
            created=False,
            display_name=target.endpoint,
            why="an endpoint with this display name existed: reused, never deleted by this run",
        )
        reused = True
    before = traffic(endpoint)
    deployed_name = f"{target.model_display_name}-{run.run_id}"[:128]
    deployed = deploy_model(
        run,
        run.model,
        endpoint,
        target,
        deployed_name,
        int(target.traffic_percentage),
        before,
        accelerator_type=target.accelerator_type,
        accelerator_count=int(target.accelerator_count),
    )
    endpoint, deployed_id, seconds = deployed.endpoint, deployed.id, deployed.seconds
    run.timings_s["deploy"] = seconds
    split = traffic(endpoint)
    ctx.state["vertex_endpoint"] = {"endpoint": endpoint, "deployed_model_id": deployed_id}
    run.entry.update(
        endpoint=endpoint.resource_name,
        endpoint_reused=reused,
        deployed_model_id=deployed_id,
        model=run.model.resource_name,
        traffic_split=split,
        traffic_before=before,
        machine_type=target.machine_type,
        accelerator_type=target.accelerator_type,
        accelerator_count=int(target.accelerator_count),
        min_replicas=int(target.min_replicas),
        max_replicas=int(target.max_replicas),
    )
    how = "reused" if reused else "created"
    return {
        "summary": f"deployed model {deployed_id} on endpoint {endpoint.resource_name} ({how}) with "
        f"{target.machine_type}, {target.min_replicas}-{target.max_replicas} replica(s), "
        f"traffic {split.get(deployed_id, 0)} % ({seconds:.1f} s)",
        "endpoint": endpoint.resource_name,
        "deployed_model_id": deployed_id,
        "traffic_split": split,
        "seconds_to_deploy": seconds,
    }


# --------------------------------------------------------------------------------------- parity
def _wire_ratio(x: np.ndarray) -> float:
    """How much bigger than our JSON an instance is on the wire (the SDK's protobuf or its REST JSON)."""
    from google.protobuf import json_format, struct_pb2

    ratios = []
    for row in x[:16]:
        text = json.dumps(row.tolist())
        value = json_format.ParseDict(row.tolist(), struct_pb2.Value())
        ratios.append(max(value.ByteSize(), len(json_format.MessageToJson(value))) / len(text))
    return max(ratios, default=1.0) * 1.1


def chunks(x: np.ndarray, max_bytes: int) -> list[tuple[int, int]]:
    """[start, stop) ranges whose requests stay under max_bytes in the form the SDK sends them."""
    ratio = _wire_ratio(x)
    sizes = [int((len(json.dumps(row.tolist())) + 1) * ratio) for row in x]
    ranges, start, total = [], 0, len('{"instances": []}')
    for i, size in enumerate(sizes):
        if i > start and total + size > max_bytes:
            ranges.append((start, i))
            start, total = i, len('{"instances": []}')
        total += size
    if start < len(x):
        ranges.append((start, len(x)))
    return ranges


def probabilities(predictions: list[Any]) -> np.ndarray:
    """An answer's predictions as a probability matrix: a list per instance, or a dict with `probabilities`."""
    rows = [p["probabilities"] if isinstance(p, dict) else p for p in predictions]
    return np.asarray(rows, dtype=np.float32)


def _predict_ours(endpoint: Any, instances: list[Any], deployed_id: str, others: dict[str, int]) -> list[Any]:
    """Predictions from our deployed model (a canary shares the endpoint's traffic with others)."""
    for _ in range(MAX_CANARY_TRIES):
        answer = endpoint.predict(instances=instances)
        if answer.deployed_model_id in ("", deployed_id):
            return list(answer.predictions)
        others[answer.deployed_model_id] = others.get(answer.deployed_model_id, 0) + 1
    raise RuntimeError(
        f"{MAX_CANARY_TRIES} requests in a row were answered by other deployed models "
        f"{sorted(others)}: does this model get any traffic?"
    )


def parity_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    from tfrun.tasks.parity import compare, reference_name, trained_predictions

    run, target = vertex_run(cfg, ctx), cfg.target
    state = ctx.need("vertex_endpoint")
    data, holdout = ctx.need("data"), np.asarray(ctx.need("holdout_probabilities"), dtype=np.float32)
    n = min(int(target.parity_examples or len(data.x_holdout)), len(data.x_holdout))
    x, holdout = data.x_holdout[:n], holdout[:n]
    model = ctx.state.get("model")
    ranges = chunks(x, int(target.max_payload_bytes))
    # The reference runs the requests' own batches: a served request is one batch, and float32 results can
    # depend on the batch size in the last bit (CPU kernels block matrices by it), so bit-exact means same batches.
    reference = (
        None if model is None else np.concatenate([trained_predictions(model, x[a:b], b - a) for a, b in ranges])
    )
    others: dict[str, int] = {}
    served = np.concatenate(
        [
            probabilities(_predict_ours(state["endpoint"], x[a:b].tolist(), state["deployed_model_id"], others))
            for a, b in ranges
        ]
    )
    report = compare(
        served, served.argmax(axis=1), reference, holdout, float(target.parity_atol), float(target.parity_holdout_atol)
    )
    report.update(
        examples=n,
        requests=len(ranges),
        largest_request_instances=max(b - a for a, b in ranges),
        answers_from_other_models=others,
        max_payload_bytes=int(target.max_payload_bytes),
    )
    run.entry["parity"] = report
    if not report["passed"]:
        raise RuntimeError(
            f"Endpoint.predict answers differ from {reference_name(ctx)}: max |diff| "
            f"{report.get('max_abs_diff', float('nan')):.3g} (tolerance {target.parity_atol:g}), "
            f"{report['max_abs_diff_vs_evaluate']:.3g} vs the evaluate step"
        )
    kind = "bit-exactly" if report.get("exact") else f"within {target.parity_atol:g}"
    extra = f"; {sum(others.values())} answer(s) from other deployed models retried" if others else ""
    return {
        "summary": f"Endpoint.predict equals {reference_name(ctx)} {kind} on {n} holdout examples "
        f"({len(ranges)} request(s) under {target.max_payload_bytes:,} bytes){extra}",
        "parity": report,
    }


def latency_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    """Single-instance Endpoint.predict times, counting only answers from this deployment (a canary's
    requests answered by the other models on the endpoint are left out)."""
    from tfrun.tasks.tfserving.clients import percentiles

    run, target = vertex_run(cfg, ctx), cfg.target
    state, data = ctx.need("vertex_endpoint"), ctx.need("data")
    one, ours = data.x_holdout[:1].tolist(), state["deployed_model_id"]
    for _ in range(2):  # warm-up
        state["endpoint"].predict(instances=one)
    samples: list[float] = []
    for _ in range(int(target.latency_requests) * MAX_CANARY_TRIES):
        started = time.perf_counter()
        answer = state["endpoint"].predict(instances=one)
        if answer.deployed_model_id in ("", ours):
            samples.append(time.perf_counter() - started)
            if len(samples) == int(target.latency_requests):
                break
    latency = percentiles(samples)
    run.entry["latency_ms"] = {"batch_1": latency}
    return {
        "summary": f"Endpoint.predict p50/p99 {latency['p50_ms']:.2f}/{latency['p99_ms']:.2f} ms "
        f"(batch 1, {latency['n']} requests answered by this deployment)",
        "latency_ms": {"batch_1": latency},
    }
