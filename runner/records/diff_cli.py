"""`tfrun-records diff RUN_A RUN_B`: the config, metric, weights, code and package differences of two runs.

Exits as `diff` does: 0 when the runs do not differ, 1 when they do, 2 when a record is missing or damaged.
Timings are shown side by side and never count as a difference (tfrun.runner.records.reproducible). The
comparisons here are also what `rerun --verify` checks.
"""

from __future__ import annotations

import argparse
import math
from typing import Any, Callable

from tfrun.runner.records import record as records
from tfrun.runner.records import reproducible
from tfrun.runner.records.cli_common import EXIT_FAILED, EXIT_OK, MISSING, fmt, load_run, section, short_hash

Difference = tuple[str, Any, Any]  # key, value in A, value in B


def _same(a: Any, b: Any) -> bool:
    """Exact equality, with NaN equal to NaN (a run that diverged the same way twice reproduced)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b if isinstance(a, (bool, float, int)) else a == b


def compare(prefix: str, a: dict[str, Any], b: dict[str, Any]) -> list[Difference]:
    """Keys whose values differ between two flat dicts, absent keys included."""
    keys = list(a) + [k for k in b if k not in a]
    return [
        (f"{prefix}.{k}" if prefix else k, a.get(k, MISSING), b.get(k, MISSING))
        for k in keys
        if not _same(a.get(k, MISSING), b.get(k, MISSING))
    ]


def config_differences(a: dict[str, Any], b: dict[str, Any]) -> list[Difference]:
    """Differing config keys; if only redacted values differ, the differing hashes say so."""
    found = compare("config", records.flatten(section(a, "config")), records.flatten(section(b, "config")))
    if not found and a.get("config_sha256") != b.get("config_sha256"):
        found = [
            ("config_sha256 (the configs differ in redacted values)", a.get("config_sha256"), b.get("config_sha256"))
        ]
    return found


def metric_differences(a: dict[str, Any], b: dict[str, Any]) -> list[Difference]:
    """What a rerun must reproduce: final metrics except timings, the weights, reproducible artifacts' bytes."""
    timings = reproducible.timing_names(a, b)
    found = compare(
        "metrics.final", reproducible.compared_metrics(a, timings), reproducible.compared_metrics(b, timings)
    )
    if not _same(a.get("weights_sha256"), b.get("weights_sha256")):
        found.append(("weights_sha256", a.get("weights_sha256"), b.get("weights_sha256")))
    found += compare("source", reproducible.source_hashes(a), reproducible.source_hashes(b))
    return found + compare("artifacts", reproducible.artifact_hashes(a), reproducible.artifact_hashes(b))


def user_code_differences(a: dict[str, Any], b: dict[str, Any]) -> list[Difference]:
    """The user's `_target_`s and their source files' sha256 (a rerun of other code verifies nothing)."""

    def compared(data: dict[str, Any]) -> dict[str, Any]:
        user = section(data, "code", "user")
        return {
            f"{key}.{field}": entry.get(field)
            for key, entry in user.items()
            if isinstance(entry, dict)
            for field in ("target", "sha256")
        }

    return compare("code.user", compared(a), compared(b))


def timing_lines(a: dict[str, Any], b: dict[str, Any], names: str) -> list[str]:
    """Timing metrics side by side: they follow the machine's load, so they are shown, never compared."""
    pairs = reproducible.timing_pairs(a, b)
    header = f"not compared (timings vary with machine load; {names}):"
    return [header, *(f"  {key}: {fmt(x)} | {fmt(y)}" for key, x, y in pairs)] if pairs else []


def record_differences(a: dict[str, Any], b: dict[str, Any]) -> list[Difference]:
    """What `diff` reports: config, final metrics and weights, code, package versions."""
    return (
        config_differences(a, b)
        + metric_differences(a, b)
        + compare("code", records.flatten(section(a, "code")), records.flatten(section(b, "code")))
        + compare("environment.packages", section(a, "environment", "packages"), section(b, "environment", "packages"))
    )


def difference_line(diff: Difference) -> str:
    key, a, b = diff
    show: Callable[[Any], str] = short_hash if "sha256" in key else fmt
    return f"{key}: {show(a)} != {show(b)}"


def cmd_diff(args: argparse.Namespace) -> int:
    path_a, a = load_run(args.run_a)
    path_b, b = load_run(args.run_b)
    found = record_differences(a, b)
    if not found:
        print("no differences")
    else:
        print(f"A = {path_a}\nB = {path_b}\n(A != B)")
        for diff in found:
            print(difference_line(diff))
    for line in timing_lines(a, b, "A | B"):
        print(line)
    return EXIT_FAILED if found else EXIT_OK


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "diff",
        help="config, metric, weights, code and package differences of two runs "
        "(exit 0 equal, 1 different, 2 a record missing or damaged)",
        description="Config, final metric, weights, code and package differences of two runs (timings are shown, "
        "not compared). Exit status as diff's: 0 the runs do not differ, 1 they differ, 2 a record is missing "
        "or damaged.",
    )
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.set_defaults(func=cmd_diff)
