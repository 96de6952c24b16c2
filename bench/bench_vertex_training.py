"""What cluster=vertex adds to a run: staging, the job's life, taking the model back; offline.

Runs the same training (digits · mlp, EPOCHS epochs) three ways, ROUNDS times each: plain `tfrun` on
this machine, `tfrun cluster=vertex` (one chief replica) and `tfrun cluster=vertex strategy=multi_worker
cluster.workers=2`, against the GCS emulator and the Vertex test server (tests/fakes), whose replicas are
local processes. Per run: wall time, each step's seconds from the record, the chief replica's own run
time (from its record), and the wheel's build time and size. Then Ctrl-C: a cluster=vertex run sent SIGINT while
its job runs, ROUNDS times: seconds until the run is removing what it made (the cancel taken) and until it has
exited (the clean-up child, which imports the Vertex SDK, done). Offline figures: they measure tfrun's side
and the local stand-in for Vertex's machines, not Google's queueing, VM start-up or image pulls (minutes).

Writes bench/results/vertex_training.json and prints a markdown table.

Usage: python bench/bench_vertex_training.py [--rounds 2] [--epochs 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import bench_vertex  # noqa: E402 - bench/, the script's own folder
from results_io import RESULTS, write_result  # noqa: E402

from tests.fakes.gcs import start_emulator  # noqa: E402
from tests.fakes.vertex.fixture import start_fake_vertex  # noqa: E402

STEPS = ("vertex_preflight", "vertex_stage", "vertex_job", "vertex_job_result", "vertex_register")


def run(args: list[str], cwd: Path) -> dict:
    cwd.mkdir(parents=True)
    out = bench_vertex.run(args, cwd)
    result = next((s["result"] for s in out.pop("record")["steps"] if s["name"] == "vertex_job_result"), None)
    out.pop("deployment")
    if result:
        out["chief_run_s"] = result["chief"]["seconds"]
    return out


def _wait_for_line(log: Path, line: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while line not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"tfrun never printed {line!r}:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def stop(args: list[str], cwd: Path) -> dict:
    """SIGINT once the job runs: seconds to the clean-up's start and to the run's exit (exit code 130)."""
    cwd.mkdir(parents=True)
    log = cwd / "run.log"
    env = {k: v for k, v in os.environ.items() if k != "STORAGE_EMULATOR_HOST"}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(bench_vertex.TFRUN), *args, "hydra.run.dir=runs/r"],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    _wait_for_line(log, "JOB_STATE_RUNNING", proc)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _wait_for_line(log, "the run interrupted: removing", proc)
    removing = time.monotonic() - sent
    if proc.wait(300) != 130:
        raise SystemExit(f"the interrupted run exited {proc.returncode}:\n{log.read_text()[-3000:]}")
    return {"to_cleanup_s": round(removing, 3), "to_exit_s": round(time.monotonic() - sent, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    from tfrun.tasks.vertex.package import build_wheel

    started = time.perf_counter()
    wheel = build_wheel()
    wheel_s = time.perf_counter() - started
    work = Path(tempfile.mkdtemp(prefix="bench-vertex-training-"))
    emulator = start_emulator(work / "gcs")
    fake = start_fake_vertex(emulator.url, work / "fake")
    common = [f"train.epochs={args.epochs}", "train.callbacks.tensorboard=false"]
    cloud = [
        "cloud=gcp",
        "cloud.project=tfrun-bench",
        "cloud.bucket=bench-training",
        f"cloud.api_endpoint={fake.url}",
        f"cloud.storage_endpoint={emulator.url}",
        "cloud.credentials=anonymous",
        "cluster.poll_interval_s=0.5",
    ]
    kinds = {
        "local": [],
        "vertex": ["cluster=vertex", *cloud],
        "vertex_multi_worker": ["cluster=vertex", "strategy=multi_worker", "cluster.workers=2", *cloud],
    }
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    try:
        for i in range(args.rounds):
            for kind, extra in kinds.items():  # alternating, so drift hits every kind alike
                runs[kind].append(run([*common, *extra], work / f"{kind}-{i}"))
        stops = [
            stop(["train.epochs=500", "train.callbacks.tensorboard=false", *kinds["vertex"]], work / f"stop-{i}")
            for i in range(args.rounds)
        ]
    finally:
        fake.stop()
        emulator.stop()
    median = {}
    for kind, rounds in runs.items():
        keys = {"wall_s": [r["wall_s"] for r in rounds], "train_s": [r["steps_s"].get("train") for r in rounds]}
        if kind != "local":
            keys.update({step: [r["steps_s"][step] for r in rounds] for step in STEPS})
            keys["chief_run_s"] = [r["chief_run_s"] for r in rounds]
        median[kind] = {k: round(statistics.median(v), 3) for k, v in keys.items() if None not in v}
    result = {
        "benchmark": "vertex_training",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "epochs": args.epochs,
        "rounds": args.rounds,
        "wheel": {"build_s": round(wheel_s, 3), "bytes": len(wheel.data), "requirements": len(wheel.requires)},
        "runs": runs,
        "median": median,
        "ctrl_c": {
            "rounds": stops,
            "median": {k: round(statistics.median(r[k] for r in stops), 3) for k in ("to_cleanup_s", "to_exit_s")},
        },
        "note": "GCS emulator and Vertex test server on 127.0.0.1; every replica is a local tfrun process",
    }
    path = write_result(result, RESULTS / "vertex_training.json")
    print(f"| median of {args.rounds} ({args.epochs} epochs) | local | vertex (1 replica) | vertex multi_worker x2 |")
    print("|---|---|---|---|")
    for key in ("wall_s", "train_s", *STEPS, "chief_run_s"):
        print(f"| {key} | " + " | ".join(str(median[k].get(key, "")) for k in kinds) + " |")
    ctrl_c = result["ctrl_c"]["median"]
    print(
        f"\nCtrl-C while the job runs (median of {args.rounds}): clean-up starts after {ctrl_c['to_cleanup_s']} s, "
        f"the run has exited after {ctrl_c['to_exit_s']} s"
    )
    print(f"wheel: built in {wheel_s:.2f} s, {len(wheel.data):,} bytes, {len(wheel.requires)} requirement lines")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
