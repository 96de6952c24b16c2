"""A 6-job sweep (3 learning rates x 2 depths on digits): joblib with 2 jobs vs sequential, and per-job overhead,
each with jobs forked from a warm TensorFlow (tfrun.runner.processes.zygote, the default) and with fresh processes
(TFRUN_NO_FORK=1), in the same run so that the machine's speed cancels out.

Per-job overhead = the job's recorded seconds minus its train step: process
start, TensorFlow import (the hardware step), data, model, evaluation, export
and record writes. Writes bench/results/sweeps.json and prints a markdown table.

Usage: python bench/bench_sweeps.py [EPOCHS]
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_io import RESULTS, write_result  # bench/, the script's own folder

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
ENV.pop("TFRUN_ZYGOTE", None)
ENV.pop("TFRUN_NO_FORK", None)
MODES = {"fresh": {"TFRUN_NO_FORK": "1"}, "forked": {}}


def sweep(launcher: list[str], epochs: int, work: str, name: str, env: dict[str, str]) -> tuple[float, list[dict]]:
    args = [
        str(BIN / "tfrun"),
        "-m",
        "train.learning_rate=0.001,0.003,0.01",
        "model.n_hidden=1,2",
        f"train.epochs={epochs}",
        "train.verbose=0",
        f"hydra.sweep.dir=multiruns/{name}",
        *launcher,
    ]
    started = time.perf_counter()
    subprocess.run(args, cwd=work, env={**ENV, **env}, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    records = [json.loads(p.read_text()) for p in sorted(Path(work, "multiruns", name).glob("*/record.json"))]
    return wall, records


def step_seconds(record: dict, name: str) -> float:
    return next(s["seconds"] for s in record["steps"] if s["name"] == name)


def measure(epochs: int, work: str, mode: str) -> dict:
    env = MODES[mode]
    sequential, seq_records = sweep([], epochs, work, f"sequential-{mode}", env)
    parallel, par_records = sweep(
        ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], epochs, work, f"joblib-{mode}", env
    )
    job_s = [r["seconds"] for r in seq_records]
    train_s = [step_seconds(r, "train") for r in seq_records]
    import_s = [step_seconds(r, "hardware") for r in seq_records]
    overhead_s = [j - t for j, t in zip(job_s, train_s)]
    return {
        "sequential_s": round(sequential, 2),
        "joblib_2_s": round(parallel, 2),
        "wall_ratio": round(parallel / sequential, 3),
        "child_start": sorted({(r.get("child") or {}).get("start", "?") for r in seq_records}),
        "joblib_child_start": sorted({(r.get("child") or {}).get("start", "?") for r in par_records}),
        "job_s": job_s,
        "train_s": train_s,
        "tf_import_s": import_s,
        "overhead_median_s": round(statistics.median(overhead_s), 2),
        "tf_import_median_s": round(statistics.median(import_s), 2),
        "train_median_s": round(statistics.median(train_s), 2),
        "metrics": [r["metrics"]["final"] for r in seq_records],
        "weights_sha256": [r["weights_sha256"] for r in seq_records],
    }


def main() -> None:
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with tempfile.TemporaryDirectory() as work:
        modes = {mode: measure(epochs, work, mode) for mode in MODES}
    fresh, forked = modes["fresh"], modes["forked"]
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "workload": f"6 jobs: digits mlp, {epochs} epochs each",
        **fresh,  # the keys earlier runs wrote (fresh processes)
        "fresh": fresh,
        "forked": forked,
        "forked_vs_fresh": {
            "sequential_ratio": round(forked["sequential_s"] / fresh["sequential_s"], 3),
            "overhead_ratio": round(forked["overhead_median_s"] / fresh["overhead_median_s"], 3),
            "same_results": forked["metrics"] == fresh["metrics"]
            and forked["weights_sha256"] == fresh["weights_sha256"],
        },
    }
    write_result(result, RESULTS / "sweeps.json")
    print("| measure | fresh (TFRUN_NO_FORK=1) | forked | forked / fresh |\n|---|---|---|---|")
    for label, key in (
        ("6 jobs sequential (basic launcher)", "sequential_s"),
        ("6 jobs joblib, 2 at a time", "joblib_2_s"),
        ("per-job overhead (median; job - train step)", "overhead_median_s"),
        ("TensorFlow start (hardware step, median)", "tf_import_median_s"),
        ("train step (median)", "train_median_s"),
    ):
        print(f"| {label} | {fresh[key]:.2f} s | {forked[key]:.2f} s | {forked[key] / fresh[key]:.2f} |")
    print(f"| how the children started | {fresh['child_start']} | {forked['child_start']} | |")
    print(f"| how joblib's children started | {fresh['joblib_child_start']} | {forked['joblib_child_start']} | |")
    print(f"| same metrics and weights sha256 | | | {result['forked_vs_fresh']['same_results']} |")


if __name__ == "__main__":
    main()
