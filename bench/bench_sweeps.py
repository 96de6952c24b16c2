"""A 6-job sweep (3 learning rates x 2 depths on digits): joblib with 2 jobs vs sequential, and per-job overhead.

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


def sweep(launcher: list[str], epochs: int, work: str, name: str) -> tuple[float, list[dict]]:
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
    subprocess.run(args, cwd=work, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    records = [json.loads(p.read_text()) for p in sorted(Path(work, "multiruns", name).glob("*/record.json"))]
    return wall, records


def step_seconds(record: dict, name: str) -> float:
    return next(s["seconds"] for s in record["steps"] if s["name"] == name)


def main() -> None:
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with tempfile.TemporaryDirectory() as work:
        sequential, seq_records = sweep([], epochs, work, "sequential")
        parallel, _ = sweep(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], epochs, work, "joblib")
    job_s = [r["seconds"] for r in seq_records]
    train_s = [step_seconds(r, "train") for r in seq_records]
    import_s = [step_seconds(r, "hardware") for r in seq_records]
    overhead_s = [j - t for j, t in zip(job_s, train_s)]
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "workload": f"6 jobs: digits mlp, {epochs} epochs each",
        "sequential_s": round(sequential, 2),
        "joblib_2_s": round(parallel, 2),
        "wall_ratio": round(parallel / sequential, 3),
        "job_s": job_s,
        "train_s": train_s,
        "tf_import_s": import_s,
        "overhead_median_s": round(statistics.median(overhead_s), 2),
        "train_median_s": round(statistics.median(train_s), 2),
    }
    write_result(result, RESULTS / "sweeps.json")
    print("| measure | value |\n|---|---|")
    print(f"| 6 jobs sequential (basic launcher) | {sequential:.1f} s |")
    print(f"| 6 jobs joblib, 2 at a time | {parallel:.1f} s |")
    print(f"| wall ratio joblib / sequential | {parallel / sequential:.2f} (target ≤ 0.65) |")
    print(
        f"| per-job overhead (median; job - train step) | {statistics.median(overhead_s):.1f} s "
        f"(TensorFlow import {statistics.median(import_s):.1f} s) |"
    )
    print(f"| train step (median) | {statistics.median(train_s):.1f} s |")


if __name__ == "__main__":
    main()
