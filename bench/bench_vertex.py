"""Where a Vertex run's time goes: batch prediction split into upload / job / read-back, and a deploy.

Runs the real `tfrun target=vertex_batch` (and once `target=vertex_endpoint`) against the GCS
emulator and the Vertex test server (tests/fakes), ROUNDS times, and reads each step's timings
from the run records: export upload to GCS, Model.upload, instance upload, the batch job
(submit -> SUCCEEDED, the serving container's start included), reading the results back; for
the endpoint: deploy (container start to healthy) and Endpoint.predict latency. Offline figures:
they measure tfrun's side and the local stand-in container, not Google's queueing or machines.

Writes bench/results/vertex.json and prints a markdown table.

Usage: python bench/bench_vertex.py [--rounds 3] [--examples 360]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from results_io import RESULTS, write_result  # noqa: E402 - bench/, the script's own folder

from tests.fakes.gcs import start_emulator  # noqa: E402
from tests.fakes.vertex.fixture import start_fake_vertex  # noqa: E402

TFRUN = Path(sys.executable).parent / "tfrun"


def run(args: list[str], cwd: Path) -> dict:
    """`tfrun ARGS` in cwd: wall time, each step's seconds, the last deployment and the record."""
    env = {k: v for k, v in os.environ.items() if k != "STORAGE_EMULATOR_HOST"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.perf_counter()
    proc = subprocess.run(
        [str(TFRUN), *args, "hydra.run.dir=runs/r"], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"tfrun failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    record = json.loads((cwd / "runs" / "r" / "record.json").read_text())
    steps = {s["name"]: s["seconds"] for s in record["steps"]}
    return {
        "wall_s": round(wall, 3),
        "steps_s": steps,
        "record": record,
        "deployment": record["deployments"][-1] if record["deployments"] else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--examples", type=int, default=360)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-vertex-"))
    emulator = start_emulator(work / "gcs")
    fake = start_fake_vertex(emulator.url, work / "fake")
    try:
        common = [
            "cloud=gcp",
            "cloud.project=tfrun-bench",
            f"cloud.api_endpoint={fake.url}",
            f"cloud.storage_endpoint={emulator.url}",
            "cloud.credentials=anonymous",
            "train.epochs=5",
            "train.callbacks.tensorboard=false",
            "target.teardown=true",
        ]
        batch_rounds = []
        for i in range(args.rounds):
            cwd = work / f"batch{i}"
            cwd.mkdir()
            out = run(
                [
                    "target=vertex_batch",
                    f"cloud.bucket=bench-batch-{i}",
                    f"target.examples={args.examples}",
                    "target.poll_interval_s=0.2",
                    *common,
                ],
                cwd,
            )
            timings = out["deployment"]["timings_s"]
            batch_rounds.append(
                {
                    "wall_s": out["wall_s"],
                    "export_upload_s": timings["upload"],
                    "model_upload_s": timings["model_upload"],
                    "instances_upload_s": timings["upload_instances"],
                    "job_s": timings["batch_job"],
                    "read_back_s": timings["read_back"],
                    "train_s": out["steps_s"]["train"],
                    "teardown_s": out["steps_s"]["vertex_report"],
                }
            )
        cwd = work / "endpoint"
        cwd.mkdir()
        out = run(
            ["target=vertex_endpoint", "cloud.bucket=bench-endpoint", "target.latency_requests=200", *common], cwd
        )
        entry = out["deployment"]
        endpoint = {
            "wall_s": out["wall_s"],
            "deploy_s": entry["timings_s"]["deploy"],
            "parity_s": out["steps_s"]["vertex_parity"],
            "predict_batch_1_ms": entry["latency_ms"]["batch_1"],
            "parity_requests": entry["parity"]["requests"],
            "teardown_s": out["steps_s"]["vertex_report"],
        }
    finally:
        fake.stop()
        emulator.stop()
    median = {k: round(statistics.median(r[k] for r in batch_rounds), 3) for k in batch_rounds[0]}
    result = {
        "benchmark": "vertex",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "examples": args.examples,
        "rounds": args.rounds,
        "batch_rounds": batch_rounds,
        "batch_median": median,
        "endpoint": endpoint,
        "note": "GCS emulator and Vertex test server on 127.0.0.1; the serving container is tfrun-serve --vertex "
        "started as a local process",
    }
    path = write_result(result, RESULTS / "vertex.json")
    print("| phase (batch, median of %d) | seconds |\n|---|---|" % args.rounds)
    for key in (
        "train_s",
        "export_upload_s",
        "model_upload_s",
        "instances_upload_s",
        "job_s",
        "read_back_s",
        "teardown_s",
        "wall_s",
    ):
        print(f"| {key} | {median[key]:.3f} |")
    print(
        f"\nendpoint: deploy {endpoint['deploy_s']:.2f} s, predict p50/p99 "
        f"{endpoint['predict_batch_1_ms']['p50_ms']:.2f}/{endpoint['predict_batch_1_ms']['p99_ms']:.2f} ms"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
