"""Training throughput per strategy, as a ratio to one device, and how fast a missing worker is detected.

Each strategy runs the real `tfrun` on fashion_mnist with the cnn (large
enough that per-step overheads do not dominate, unlike digits) for 2 epochs;
throughput is training examples / seconds of the last epoch (steady state,
tracing excluded). Needs Fashion-MNIST (apt-get install dataset-fashion-mnist).
Writes bench/results/strategies.json and prints a markdown table.

Usage: python bench/bench_strategies.py [LIMIT]   (LIMIT: training examples used, default 12000)
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_io import RESULTS, write_result  # bench/, the script's own folder

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
STRATEGIES = {
    "default": [],
    "mirrored (2 logical CPUs)": ["strategy=mirrored", "hardware.logical_devices=2"],
    "central_storage (2 logical CPUs)": ["strategy=central_storage", "hardware.logical_devices=2"],
    "multi_worker (2 local workers)": ["strategy=multi_worker", "cluster=local", "cluster.workers=2"],
    "parameter_server (1 ps + 2 workers)": [
        "strategy=parameter_server",
        "cluster=local",
        "cluster.workers=2",
        "cluster.ps=1",
    ],
}


def tfrun(args: list[str], cwd: str) -> tuple[float, dict]:
    run_dir = f"runs/{len(os.listdir(cwd)) if os.path.isdir(cwd) else 0}-{time.time_ns()}"
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "tfrun"), *args, f"hydra.run.dir={run_dir}"],
        cwd=cwd,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    return wall, json.loads((Path(cwd) / run_dir / "record.json").read_text())


def main() -> None:
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 12000
    common = [
        "data=fashion_mnist",
        "model=cnn",
        f"data.limit={limit}",
        "train.epochs=2",
        "train.batch_size=128",
        "train.verbose=0",
        "train.callbacks.tensorboard=false",
    ]
    rows = {}
    with tempfile.TemporaryDirectory() as work:
        for name, overrides in STRATEGIES.items():
            wall, record = tfrun(common + overrides, work)
            train = next(s["result"] for s in record["steps"] if s["name"] == "data")["train"]
            last_epoch = record["metrics"]["history"]["epoch_seconds"][-1]
            rows[name] = {
                "status": record["status"],
                "wall_s": round(wall, 2),
                "train_examples": train,
                "last_epoch_s": last_epoch,
                "examples_per_s": round(train / last_epoch, 1),
                "holdout_accuracy": record["metrics"]["final"].get("holdout_accuracy"),
            }
        started = time.perf_counter()
        _, broken = tfrun(
            [
                "strategy=multi_worker",
                "cluster=local",
                "train.epochs=50",
                "+cluster.task_env={worker_1:{PYTHONHOME:/nonexistent}}",
            ],
            work,
        )
        detect_s = time.perf_counter() - started
    base = rows["default"]["examples_per_s"]
    for row in rows.values():
        row["ratio_to_default"] = round(row["examples_per_s"] / base, 3)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "workload": f"fashion_mnist cnn [32, 64], {limit} training examples, batch 128, 2 epochs",
        "strategies": rows,
        "missing_worker": {
            "wall_s": round(detect_s, 2),
            "status": broken["status"],
            "error": broken["error"]["message"],
        },
    }
    write_result(result, RESULTS / "strategies.json")
    print("| strategy | examples/s (last epoch) | ratio to default | holdout accuracy | wall s |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        print(
            f"| {name} | {row['examples_per_s']:.0f} | {row['ratio_to_default']:.2f} | "
            f"{row['holdout_accuracy']:.3f} | {row['wall_s']:.1f} |"
        )
    print(
        f"\nMissing worker (exits at start) detected and the job stopped in {detect_s:.1f} s "
        f"(status {broken['status']})."
    )


if __name__ == "__main__":
    main()
