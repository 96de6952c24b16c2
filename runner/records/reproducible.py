"""Which recorded results a rerun must reproduce, and which it only shows.

A deterministic config run again gives the same weights, the same metrics and the same bytes for
artifacts whose conversion is deterministic. Timings (latency, throughput, seconds) follow the
machine's load, so `tfrun-records rerun --verify` and `diff` show them side by side, labelled "not
compared", instead of failing on them.

Timings are known two ways: a step lists its timing metrics in its result under ``timing_metrics``
(the declaration; tfrun.tasks.tflite does), and, for steps that do not (older records, steps not written
yet), by name: a unit as the last word (``_ms``, ``_us``, ``_s``, ``_seconds``, ``per_s`` ...) or a
timing word anywhere (``latency``, ``throughput``, ``duration``, ``elapsed``, ``time`` ...).
An artifact is compared by hash only when the step that made it marks it ``reproducible``
(same weights and config, same bytes): a TFLite file is, a SavedModel is not (its bytes vary
between exports of the same weights).
"""

from __future__ import annotations

import re
from typing import Any

TIMING_KEY = "timing_metrics"  # in a step's result: the names of its metrics that are timings
REPRODUCIBLE_KEY = "reproducible"  # on an artifact: its bytes are a function of the weights and config

TIMING_UNITS = frozenset({"ns", "us", "µs", "ms", "s", "sec", "secs", "second", "seconds", "minutes", "hours"})
TIMING_WORDS = frozenset(
    {"latency", "latencies", "throughput", "duration", "elapsed", "time", "walltime", "qps", "rps", "fps"}
)


def named_like_a_timing(name: str) -> bool:
    """The naming rule: `tflite_latency_p50_us`, `examples_per_s`, `convert_seconds`, `epoch_time`."""
    words = [w for w in re.split(r"[^0-9a-zµ]+", name.lower()) if w]
    return bool(words) and (words[-1] in TIMING_UNITS or any(w in TIMING_WORDS for w in words))


def declared_timings(*records: dict[str, Any]) -> set[str]:
    """Metric names the records' steps declare as timings."""
    names: set[str] = set()
    for data in records:
        for step in data.get("steps") or []:
            result = step.get("result") if isinstance(step, dict) else None
            declared = result.get(TIMING_KEY) if isinstance(result, dict) else None
            if isinstance(declared, list):
                names.update(str(n) for n in declared)
    return names


def final_metrics(data: dict[str, Any]) -> dict[str, Any]:
    metrics = data.get("metrics")
    final = metrics.get("final") if isinstance(metrics, dict) else None
    return final if isinstance(final, dict) else {}


def timing_names(a: dict[str, Any], b: dict[str, Any]) -> set[str]:
    """The final metrics of two records that are timings (declared by a step, or named like one)."""
    declared = declared_timings(a, b)
    return {name for name in {*final_metrics(a), *final_metrics(b)} if name in declared or named_like_a_timing(name)}


def compared_metrics(data: dict[str, Any], timings: set[str]) -> dict[str, Any]:
    """The final metrics a rerun must reproduce exactly."""
    return {k: v for k, v in final_metrics(data).items() if k not in timings}


def timing_pairs(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Every timing metric of either record with both values (None where absent), in the first's order."""
    timings = timing_names(a, b)
    final_a, final_b = final_metrics(a), final_metrics(b)
    names = [k for k in final_a if k in timings] + sorted(k for k in final_b if k in timings and k not in final_a)
    return [(f"metrics.final.{k}", final_a.get(k), final_b.get(k)) for k in names]


def source_hashes(data: dict[str, Any]) -> dict[str, Any]:
    """job=deploy: the sha256 of the source SavedModel it deployed (a rerun deploys the same bytes)."""
    source = data.get("source")
    return {"source.sha256": source.get("sha256")} if isinstance(source, dict) else {}


def artifact_hashes(data: dict[str, Any]) -> dict[str, Any]:
    """sha256 of the artifacts marked reproducible, keyed by kind and label (paths and versions differ per run)."""
    hashes: dict[str, Any] = {}
    for artifact in data.get("artifacts") or []:
        if isinstance(artifact, dict) and artifact.get(REPRODUCIBLE_KEY) is True:
            base = f"{artifact.get('kind', '?')}[{artifact.get('label') or artifact.get('quantization') or ''}]"
            key, n = base, 2
            while f"{key}.sha256" in hashes:  # two artifacts of one kind and label: keep both, in order
                key, n = f"{base}#{n}", n + 1
            hashes[f"{key}.sha256"] = artifact.get("sha256")
    return hashes
