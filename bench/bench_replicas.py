"""TF Serving replicas behind nginx: throughput and latency for 1, 2 and 3 embedded replicas through the balancer
against one server without it, and a rolling update's failed requests under load.

Exports a digits MLP like `tfrun`'s (bench_serving.export_model), then for each set-up sends batch-1 predict
requests naming no version from CLIENTS threads (REST and gRPC alternating, one keep-alive connection / channel per
thread, no retries) for SECONDS, ROUNDS times, set-ups interleaved round by round:
  direct   one embedded server (tfrun-serve), no balancer
  nginx-N  N embedded replicas behind Debian's nginx (tasks/tfserving/replicas.py, balancer.py)
Then the roll-out: 3 replicas behind nginx, CLIENTS threads x ROLL_REQUESTS requests while version 2 rolls across
the replicas one at a time (ReplicaGroup.roll): the failed requests and which version answered after the roll.
Writes bench/results/replicas.json and prints a markdown summary (BENCHMARKS.md).

Usage: python bench/bench_replicas.py [--seconds 8] [--rounds 3] [--clients 8] [--roll-requests 2500]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
from results_io import RESULTS, write_result  # noqa: E402 - bench/, the script's own folder

from tfrun.tasks.tfserving import backends  # noqa: E402
from tfrun.tasks.tfserving.clients import GrpcClient, RestClient, percentiles  # noqa: E402
from tfrun.tasks.tfserving.replicas import ReplicaGroup  # noqa: E402

MODEL = "digits_mlp"


class Target:
    """One set-up under test: where clients go, and how it stops."""

    def __init__(self, name: str, rest_url: str, grpc_target: str, stop, group=None):
        self.name, self.rest_url, self.grpc_target, self.stop, self.group = name, rest_url, grpc_target, stop, group


def start_direct(base: Path, folder: Path) -> Target:
    spec = backends.ServerSpec(model_name=MODEL, base_path=base / MODEL, max_load_retries=0).with_free_ports()
    server = backends.start("embedded", spec, log_path=folder / "direct.log", detached=False)
    backends.wait_serving(server, 180)
    GrpcClient(spec.grpc_target).wait_available(MODEL, 1, timeout=180)
    return Target("direct", spec.rest_url, spec.grpc_target, server.stop)


def start_group(base: Path, folder: Path, n: int) -> Target:
    template = backends.ServerSpec(model_name=MODEL, base_path=base / MODEL, max_load_retries=0)
    group = ReplicaGroup.start(
        backend="embedded",
        template=template,
        replicas=n,
        folder=folder / f"nginx-{n}",
        versions=[1],
        labels={},
        split={},
        config_poll_seconds=1,
        detached=False,
        timeout=180,
    )
    return Target(f"nginx-{n}", group.balancer.rest_url, group.balancer.grpc_target, group.stop, group)


def load(target: Target, x: np.ndarray, clients: int, *, seconds: float = 0, per_client: int = 0) -> dict:
    """CLIENTS threads sending batch-1 predicts (REST/gRPC alternating) for `seconds` or `per_client` requests."""
    samples: dict[str, list[float]] = {"rest": [], "grpc": []}
    answered: list[tuple[float, int]] = []
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds if seconds else None

    def client(index: int) -> None:
        rest = RestClient(target.rest_url, retries=0, timeout=60)
        grpc_client = GrpcClient(target.grpc_target, retries=0, timeout=60)
        mine: dict[str, list[float]] = {"rest": [], "grpc": []}
        versions: list[tuple[float, int]] = []
        i = 0
        try:
            while (deadline and time.monotonic() < deadline) or (per_client and i < per_client):
                protocol = "grpc" if (i + index) % 2 else "rest"
                t = time.perf_counter()
                try:
                    if protocol == "grpc":
                        versions.append((time.monotonic(), grpc_client.predict(MODEL, {"pixels": x})[1]))
                    else:
                        rest.predict(MODEL, instances=x)
                    mine[protocol].append(time.perf_counter() - t)
                except Exception as err:  # noqa: BLE001 - a failed request is counted, not raised
                    with lock:
                        failures.append(f"{type(err).__name__}: {err}"[:200])
                i += 1
        finally:
            rest.close()
            grpc_client.close()
            with lock:
                for k in samples:
                    samples[k] += mine[k]
                answered.extend(versions)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    total = len(samples["rest"]) + len(samples["grpc"])
    return {
        "requests": total,
        "failed": len(failures),
        "failures": failures[:5],
        "seconds": round(elapsed, 2),
        "throughput_rps": round(total / elapsed, 1),
        "rest": percentiles(samples["rest"]) if samples["rest"] else None,
        "grpc": percentiles(samples["grpc"]) if samples["grpc"] else None,
        "_answered": answered,
    }


def roll_out(base: Path, folder: Path, x: np.ndarray, clients: int, per_client: int) -> dict:
    """3 replicas, load running, version 2 rolled across them; failed requests and the versions after."""
    target = start_group(base, folder / "roll", 3)
    group = target.group
    try:
        shutil.copytree(base / MODEL / "0001", base / MODEL / ".tmp-2")  # version 2: the same weights, a new number
        os.rename(base / MODEL / ".tmp-2", base / MODEL / "0002")
        result: dict = {}

        def roll() -> None:
            time.sleep(1.0)  # requests in flight first
            started = time.monotonic()
            result["steps"] = group.roll(2, timeout=180)
            result["roll_s"] = round(time.monotonic() - started, 2)
            result["done_at"] = time.monotonic()

        roller = threading.Thread(target=roll)
        roller.start()
        measured = load(target, x, clients, per_client=per_client)
        roller.join()
        after = [v for t, v in measured.pop("_answered") if t > result["done_at"]]
        counts = group.counts()
        return {
            "replicas": 3,
            "clients": clients,
            "requests": measured["requests"] + measured["failed"],
            "failed": measured["failed"],
            "failures": measured["failures"],
            "roll_s": result["roll_s"],
            "per_replica_s": result["steps"],
            "grpc_answers_after_roll": len(after),
            "versions_after_roll": sorted(set(after)),
            "answered_per_replica": {str(i): sum(c.values()) for i, c in counts.replicas.items()},
            "throughput_rps": measured["throughput_rps"],
        }
    finally:
        target.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--roll-requests", type=int, default=2500, help="requests per client during the roll-out")
    args = parser.parse_args()

    from bench_serving import export_model

    folder = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    base = folder / "models"
    holdout, version_dir = export_model(base)
    x = holdout[:1]
    targets = [start_direct(base, folder)] + [start_group(base, folder, n) for n in (1, 2, 3)]
    runs: dict[str, list[dict]] = {t.name: [] for t in targets}
    try:
        for t in targets:  # warm every set-up once (connections, first calls)
            load(t, x, args.clients, seconds=1.0)
        for _ in range(args.rounds):
            for t in targets:
                r = load(t, x, args.clients, seconds=args.seconds)
                r.pop("_answered")
                runs[t.name].append(r)
    finally:
        for t in targets:
            t.stop()
    summary = {}
    for name, rs in runs.items():
        best = sorted(rs, key=lambda r: r["throughput_rps"])[len(rs) // 2]  # the median round by throughput
        summary[name] = {
            "throughput_rps_median": best["throughput_rps"],
            "throughput_rps_rounds": [r["throughput_rps"] for r in rs],
            "rest_p50_ms": round(best["rest"]["p50_ms"], 2),
            "rest_p99_ms": round(best["rest"]["p99_ms"], 2),
            "grpc_p50_ms": round(best["grpc"]["p50_ms"], 2),
            "grpc_p99_ms": round(best["grpc"]["p99_ms"], 2),
            "failed": sum(r["failed"] for r in rs),
        }
    rolled = roll_out(base, folder, x, args.clients, args.roll_requests)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg": os.getloadavg()},
        "settings": vars(args),
        "setups": summary,
        "runs": runs,
        "roll_out": rolled,
    }
    path = write_result(result, RESULTS / "replicas.json")
    shutil.rmtree(folder, ignore_errors=True)
    print(f"wrote {path}\n")
    print("| set-up | throughput (req/s) | REST p50 / p99 (ms) | gRPC p50 / p99 (ms) | failed |")
    print("|---|---|---|---|---|")
    for name, s in summary.items():
        print(
            f"| {name} | {s['throughput_rps_median']:.0f} | {s['rest_p50_ms']:.2f} / {s['rest_p99_ms']:.2f} | "
            f"{s['grpc_p50_ms']:.2f} / {s['grpc_p99_ms']:.2f} | {s['failed']} |"
        )
    print(
        f"\nroll-out across 3 replicas: {rolled['requests']} requests from {rolled['clients']} clients, "
        f"{rolled['failed']} failed, roll {rolled['roll_s']} s, versions after: {rolled['versions_after_roll']}"
    )


if __name__ == "__main__":
    main()
