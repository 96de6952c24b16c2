"""Measuring a split through the balancer: which label answered how many requests that named no version.

REST calls are counted from nginx's access log (the label is in the path nginx rewrote them to);
gRPC calls by the version each answer names (ModelSpec), mapped back to the label of that version,
which needs the split's labels to name different versions (otherwise gRPC is reported, not checked).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from tfrun.tasks.tfserving.balancer import read_access_log


def shares(counts: Counter, total: int) -> dict[str, float]:
    return {k: round(100.0 * v / total, 2) for k, v in sorted(counts.items())} if total else {}


def within(measured: dict[str, float], stated: dict[str, int], tolerance: float) -> bool:
    return all(abs(measured.get(label, 0.0) - float(p)) <= tolerance for label, p in stated.items())


def measure(
    group: Any,
    model_name: str,
    input_name: str,
    example: np.ndarray,
    *,
    requests: int,
    stated: dict[str, int],
    labels: dict[str, int],
    tolerance: float,
    timeout: float,
) -> dict[str, Any]:
    """Send `requests` calls naming no version through the balancer, REST and gRPC alternating; the shares."""
    from tfrun.tasks.tfserving.clients import GrpcClient, RestClient

    log = group.balancer.access_log
    already = len(read_access_log(log))
    rest = RestClient(group.balancer.rest_url, timeout=timeout)
    grpc_client = GrpcClient(group.balancer.grpc_target, timeout=timeout)
    by_version: Counter = Counter()
    try:
        for i in range(requests):
            if i % 2:
                _, version = grpc_client.predict(model_name, {input_name: example})
                by_version[int(version)] += 1
            else:
                rest.predict(model_name, instances=example)
    finally:
        rest.close()
        grpc_client.close()
    rest_labels = Counter(row.rest_label for row in read_access_log(log)[already:] if row.rest_label is not None)
    rest_total = sum(rest_labels.values())
    result: dict[str, Any] = {
        "requests": requests,
        "stated": dict(stated),
        "tolerance_points": tolerance,
        "rest": shares(rest_labels, rest_total),
        "grpc_versions": {str(v): n for v, n in sorted(by_version.items())},
    }
    checked = [within(result["rest"], stated, tolerance) and rest_total == (requests + 1) // 2]
    version_of = {label: labels[label] for label in stated}
    if len(set(version_of.values())) == len(version_of):  # each label its own version: gRPC answers say which
        label_of = {v: k for k, v in version_of.items()}
        grpc_labels = Counter({label_of.get(v, f"version {v}"): n for v, n in by_version.items()})
        result["grpc"] = shares(grpc_labels, sum(by_version.values()))
        checked.append(within(result["grpc"], stated, tolerance))
    else:
        result["grpc"] = None
        result["grpc_note"] = "the split's labels name the same version: gRPC answers cannot tell them apart"
    result["passed"] = all(checked)
    return result
