"""TF Serving on loopback with the embedded server: latency, payload bytes, batching throughput, client codecs.

Exports a digits MLP like `tfrun`'s (3 epochs), starts the embedded server (tfrun-serve) on
127.0.0.1 and measures:
  1. p50/p99 latency, batch 1 and batch 256, gRPC and REST, with tfrun.tasks.tfserving.clients
     (targets: gRPC batch 1 <= 2 ms p50, REST batch 1 <= 3 ms p50);
  2. request/response bytes per protocol;
  3. throughput with 32 concurrent clients sending batch-1 requests (REST: 32 threads with
     keep-alive connections; gRPC: grpc.aio in one client process), server-side batching off vs
     on with batch_timeout_micros 2, 5 and 10 ms (TF Serving's batching guide: tune it in the
     1-10 ms range), rounds alternating between the servers, the server's CPU time per request
     and the rows its batches really merged (target >= 1.5x);
  4. client encode/decode cost: tensor_content vs tf.make_tensor_proto, numpy vs tf.make_ndarray.
Writes bench/results/serving.json and prints a markdown summary (BENCHMARKS.md).

Usage: python bench/bench_serving.py [--model mlp|cnn] [--seconds 6] [--rounds 3] [--clients 32]
                                    [--timeouts-ms 2,5,10]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
from results_io import RESULTS, write_result  # noqa: E402 - bench/, the script's own folder

from tfrun.tasks.tfserving import backends  # noqa: E402
from tfrun.tasks.tfserving.clients import GrpcClient, RestClient, percentiles  # noqa: E402
from tfrun.tasks.tfserving.clients import timed as timed_calls  # noqa: E402

MODEL = "digits_mlp"
BATCHING = (
    "max_batch_size {{ value: 32 }}\nbatch_timeout_micros {{ value: {micros} }}\n"
    "num_batch_threads {{ value: 1 }}\nmax_enqueued_batches {{ value: 1000 }}\n"
)
BATCH_LOG = re.compile(r"(\d+) task\(s\) in (\d+) batch\(es\), mean ([\d.]+) rows")


def export_model(base: Path, kind: str = "mlp") -> tuple[np.ndarray, Path]:
    """A trained digits model (tfrun's mlp or cnn) exported as tfrun exports it; (holdout pixels, version dir)."""
    import tf_keras as keras

    from tfrun.tasks.data import load_digits
    from tfrun.tasks.data.splits import pipeline
    from tfrun.tasks.export import save_serving_model
    from tfrun.tasks.model import build_cnn, build_mlp

    keras.utils.set_random_seed(42)
    data = load_digits(
        seed=42,
        name="digits",
        input_name="pixels",
        holdout_fraction=0.2,
        validation_fraction=0.1,
        limit=None,
        shuffle_buffer=10_000,
        image_shape=None,
    )
    common = dict(
        input_shape=data.input_shape,
        input_dtype="float32",
        input_name="pixels",
        scale=data.scale,
        n_classes=data.n_classes,
        name=kind,
    )
    model = (
        build_mlp(**common, n_hidden=2, n_neurons=64, dropout=0.0)
        if kind == "mlp"
        else build_cnn(**common, filters=[32, 64], kernel_size=3, dense_units=64, dropout=0.25)
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(
        pipeline(data.x_train, data.y_train, batch_size=32, shuffle=True, seed=42, buffer=10_000), epochs=3, verbose=0
    )
    path = base / MODEL / "0001"
    save_serving_model(model, path, input_name="pixels", input_shape=data.input_shape, input_dtype="float32")
    return data.x_holdout, path


def start_server(base: Path, work: Path, timeout_ms: float | None) -> backends.ServerProcess:
    """The embedded server, batching off (timeout_ms None) or on with that batch_timeout_micros."""
    batching_file = None
    if timeout_ms is not None:
        batching_file = work / f"batching-{timeout_ms:g}ms.config"
        batching_file.write_text(BATCHING.format(micros=int(timeout_ms * 1000)))
    spec = backends.ServerSpec(
        model_name=MODEL, base_path=base / MODEL, batching_parameters_file=batching_file, max_load_retries=0
    ).with_free_ports()
    server = backends.start("embedded", spec, log_path=work / f"server-{server_name(timeout_ms)}.log", detached=False)
    backends.wait_serving(server, 120)
    GrpcClient(spec.grpc_target).wait_available(MODEL, 1, timeout=60, alive=server.alive)
    return server


def server_name(timeout_ms: float | None) -> str:
    return "batching_off" if timeout_ms is None else f"batching_on_{timeout_ms:g}ms"


def batch_rows(server: backends.ServerProcess) -> dict:
    """What the stopped server logged its batches merged (over every request it answered)."""
    m = BATCH_LOG.search(server.log_path.read_text())
    if not m:
        return {}
    return {"tasks": int(m.group(1)), "batches": int(m.group(2)), "mean_rows": float(m.group(3))}


def timed(fn, n: int) -> dict:
    return timed_calls(fn, n, warm=20)


def latency(server: backends.ServerProcess, x1: np.ndarray, x256: np.ndarray) -> dict:
    g, r = GrpcClient(server.spec.grpc_target), RestClient(server.spec.rest_url)
    out = {}
    for name, fn1, fn256 in (
        ("grpc", lambda: g.predict(MODEL, {"pixels": x1}), lambda: g.predict(MODEL, {"pixels": x256})),
        ("rest", lambda: r.predict(MODEL, instances=x1), lambda: r.predict(MODEL, instances=x256)),
    ):
        out[name] = {"batch_1": timed(fn1, 1000), "batch_256": timed(fn256, 200)}
    g.close()
    r.close()
    return out


def documented_clients(server: backends.ServerProcess, x1: np.ndarray) -> dict:
    """The same calls through TF Serving's documented client code (requests + make_tensor_proto/make_ndarray)."""
    import grpc
    import requests
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(server.spec.grpc_target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

    def grpc_call():
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        request.model_spec.signature_name = "serving_default"
        request.inputs["pixels"].CopyFrom(tf.make_tensor_proto(x1))
        return tf.make_ndarray(stub.Predict(request, timeout=10.0).outputs["probabilities"])

    session = requests.Session()
    url = f"{server.spec.rest_url}/v1/models/{MODEL}:predict"

    def rest_call():
        response = session.post(url, data=json.dumps({"signature_name": "serving_default", "instances": x1.tolist()}))
        response.raise_for_status()
        return np.array(response.json()["predictions"])  # the book's client: one output, one row per instance

    result = {"grpc_batch_1": timed(grpc_call, 500), "rest_batch_1": timed(rest_call, 500)}
    channel.close()
    return result


def payload_bytes(server: backends.ServerProcess, x1: np.ndarray, x256: np.ndarray) -> dict:
    import http.client

    import tensorflow as tf

    from tfrun.tasks.tfserving.clients import json_text

    g = GrpcClient(server.spec.grpc_target)
    out: dict = {}
    for label, x in (("batch_1", x1), ("batch_256", x256)):
        request = g.predict_request(MODEL, {"pixels": x})
        documented = g.predict_request(MODEL, {"pixels": x})
        documented.inputs["pixels"].CopyFrom(tf.make_tensor_proto(x))
        response = g.call(g.prediction.Predict, request)
        body = ('{"signature_name": "serving_default", "instances": ' + json_text(x) + "}").encode()
        conn = http.client.HTTPConnection(server.spec.client_host, server.spec.rest_port)
        conn.request("POST", f"/v1/models/{MODEL}:predict", body, {"Content-Type": "application/json"})
        answer = conn.getresponse().read()
        conn.close()
        out[label] = {
            "grpc_request": request.ByteSize(),
            "grpc_request_make_tensor_proto": documented.ByteSize(),
            "grpc_response": response.ByteSize(),
            "rest_request": len(body),
            "rest_request_json_dumps_tolist": len(
                json.dumps({"signature_name": "serving_default", "instances": x.tolist()})
            ),
            "rest_response": len(answer),
        }
    g.close()
    return out


def _aio_load(target: str, x: np.ndarray, clients: int, seconds: float, ready, go, results) -> None:
    """One client process: `clients` concurrent gRPC calls (grpc.aio, one thread) for `seconds`."""
    import asyncio

    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    request = GrpcClient(target).predict_request(MODEL, {"pixels": x})

    async def main() -> dict:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for _ in range(50):
                await stub.Predict(request, timeout=30)
            ready.set()
            while not go.is_set():
                await asyncio.sleep(0.005)
            stop_at = time.perf_counter() + seconds
            samples: list[float] = []
            errors = 0

            async def client() -> None:
                nonlocal errors
                while time.perf_counter() < stop_at:
                    t = time.perf_counter()
                    try:
                        await stub.Predict(request, timeout=30)
                        samples.append(time.perf_counter() - t)
                    except grpc.RpcError:
                        errors += 1

            await asyncio.gather(*(client() for _ in range(clients)))
            return {"requests": len(samples), "errors": errors, "samples": samples}

    results.put(asyncio.run(main()))


def _rest_load(url: str, x: np.ndarray, clients: int, seconds: float, ready, go, results) -> None:
    """One client process: `clients` threads, each with its own keep-alive connection, for `seconds`."""
    import threading

    from tfrun.tasks.tfserving.clients import json_text

    client = RestClient(url, retries=0)
    body = ('{"instances": ' + json_text(x) + "}").encode()
    path = f"/v1/models/{MODEL}:predict"
    for _ in range(50):
        client.request("POST", path, body)
    samples: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients

    def run(i: int) -> None:
        go.wait()
        stop_at = time.perf_counter() + seconds
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            try:
                status, _ = client.request("POST", path, body)
                if status == 200:
                    samples[i].append(time.perf_counter() - t)
                else:
                    errors[i] += 1
            except Exception:  # noqa: BLE001 - counted
                errors[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    ready.set()
    for t in threads:
        t.join()
    flat = [s for part in samples for s in part]
    results.put({"requests": len(flat), "errors": sum(errors), "samples": flat})


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput_round(
    server: backends.ServerProcess, x1: np.ndarray, clients: int, seconds: float, protocol: str
) -> dict:
    ctx = mp.get_context("spawn")
    ready, go, results = ctx.Event(), ctx.Event(), ctx.Queue()
    target, address = (_aio_load, server.spec.grpc_target) if protocol == "grpc" else (_rest_load, server.spec.rest_url)
    worker = ctx.Process(target=target, args=(address, x1, clients, seconds, ready, go, results))
    worker.start()
    if not ready.wait(120):
        worker.kill()
        raise RuntimeError("the load process did not start")
    cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
    go.set()
    result = results.get(timeout=seconds + 120)
    cpu1, wall = cpu_seconds(server.pid), time.perf_counter() - t0
    worker.join(30)
    n = result["requests"]
    return {
        "requests_per_s": n / seconds,
        "errors": result["errors"],
        "requests": n,
        "server_cpu_ms_per_request": (cpu1 - cpu0) * 1000 / max(n, 1),
        "wall_s": wall,
        "latency": percentiles(result["samples"]) if n else {},
    }


def throughput(
    servers: dict[str, backends.ServerProcess], x1: np.ndarray, clients: int, seconds: float, rounds: int, protocol: str
) -> dict:
    """Rounds alternate between the servers (batching off / on), so a busy moment of this shared machine
    does not favour one of them; medians are reported, and each batching server's ratio to off."""
    out: dict = {name: {"rounds": []} for name in servers}
    for _ in range(rounds):
        for name, server in servers.items():
            out[name]["rounds"].append(throughput_round(server, x1, clients, seconds, protocol))
    for r in out.values():
        rs = r["rounds"]
        r.update(
            clients=clients,
            seconds_per_round=seconds,
            requests_per_s=float(np.median([x["requests_per_s"] for x in rs])),
            server_cpu_ms_per_request=float(np.median([x["server_cpu_ms_per_request"] for x in rs])),
            errors=sum(x["errors"] for x in rs),
            p50_ms=float(np.median([x["latency"]["p50_ms"] for x in rs])),
            p99_ms=float(np.median([x["latency"]["p99_ms"] for x in rs])),
        )
    off = out["batching_off"]
    for name, r in out.items():
        if name != "batching_off":
            r["throughput_ratio"] = r["requests_per_s"] / off["requests_per_s"]
            r["server_cpu_ratio"] = off["server_cpu_ms_per_request"] / r["server_cpu_ms_per_request"]
    return out


def codecs(x1: np.ndarray, x256: np.ndarray) -> dict:
    import tensorflow as tf

    from tfrun.tasks.tfserving.tensors import as_proto_field, as_tensor_content, to_ndarray

    out = {}
    for label, x in (("batch_1", x1), ("batch_256", x256)):
        response = as_proto_field(np.random.default_rng(0).random((len(x), 10)).astype(np.float32))
        n = 2000 if len(x) == 1 else 300
        out[label] = {
            "encode_tensor_content_us": timed(lambda: as_tensor_content(x), n)["p50_ms"] * 1000,  # noqa: B023 (called at once)
            "encode_make_tensor_proto_us": timed(lambda: tf.make_tensor_proto(x), n)["p50_ms"] * 1000,  # noqa: B023 (called at once)
            "decode_numpy_us": timed(lambda: to_ndarray(response), n)["p50_ms"] * 1000,  # noqa: B023 (called at once)
            "decode_make_ndarray_us": timed(lambda: tf.make_ndarray(response), n)["p50_ms"] * 1000,  # noqa: B023 (called at once)
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="length of one throughput round")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per server")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp", help="tfrun's digits mlp (default) or cnn")
    parser.add_argument("--timeouts-ms", default="2,5,10", help="batch_timeout_micros values to compare, in ms")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        holdout, _ = export_model(work / "models", args.model)
        x1 = holdout[:1]
        x256 = np.concatenate([holdout] * 2)[:256]
        result: dict = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "load_average_at_start": os.getloadavg()[0],
            "server": "embedded (tfrun-serve) on 127.0.0.1",
            "model": f"digits {args.model} (8x8 float32 in, 10 out), as tfrun exports it",
        }
        timeouts = [float(t) for t in args.timeouts_ms.split(",")]
        servers = {server_name(t): start_server(work / "models", work, t) for t in [None, *timeouts]}
        off = servers["batching_off"]
        try:
            result["latency_ms"] = latency(off, x1, x256)
            result["documented_clients_ms"] = documented_clients(off, x1)
            result["bytes"] = payload_bytes(off, x1, x256)
            result["batching_parameters"] = {
                server_name(t): BATCHING.format(micros=int(t * 1000)).strip().replace("\n", "; ") for t in timeouts
            }
            result["latency_ms_batching_on"] = {}
            for t in timeouts:
                client = GrpcClient(servers[server_name(t)].spec.grpc_target)
                result["latency_ms_batching_on"][server_name(t)] = {
                    "grpc_batch_1": timed(lambda: client.predict(MODEL, {"pixels": x1}), 200)  # noqa: B023 (called at once)
                }
                client.close()
            result["throughput"] = {
                p: throughput(servers, x1, args.clients, args.seconds, args.rounds, p) for p in ("rest", "grpc")
            }
        finally:
            for server in servers.values():
                server.stop()
        result["batch_rows"] = {server_name(t): batch_rows(servers[server_name(t)]) for t in timeouts}
        result["codecs"] = codecs(x1, x256)
        result["load_average_at_end"] = os.getloadavg()[0]
    write_result(result, RESULTS / ("serving.json" if args.model == "mlp" else f"serving_{args.model}.json"))
    print(markdown(result))


def markdown(r: dict) -> str:
    lat = r["latency_ms"]
    lines = ["| protocol | batch | p50 ms | p99 ms | target |", "|---|---|---|---|---|"]
    for proto, target in (("grpc", "≤ 2 ms p50 (batch 1)"), ("rest", "≤ 3 ms p50 (batch 1)")):
        for batch in ("batch_1", "batch_256"):
            s = lat[proto][batch]
            lines.append(
                f"| {proto} | {batch[6:]} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | "
                f"{target if batch == 'batch_1' else ''} |"
            )
    doc = r["documented_clients_ms"]
    lines += [
        "",
        "| documented client code (batch 1) | p50 ms | p99 ms |",
        "|---|---|---|",
        f"| gRPC: make_tensor_proto + Predict + make_ndarray | {doc['grpc_batch_1']['p50_ms']:.2f} | "
        f"{doc['grpc_batch_1']['p99_ms']:.2f} |",
        f"| REST: requests.post(json.dumps(tolist)) | {doc['rest_batch_1']['p50_ms']:.2f} | "
        f"{doc['rest_batch_1']['p99_ms']:.2f} |",
    ]
    lines += [
        "",
        "| bytes | gRPC request | gRPC request (make_tensor_proto) | gRPC response | REST request | "
        "REST request (json.dumps of tolist) | REST response |",
        "|---|---|---|---|---|---|---|",
    ]
    for batch, b in r["bytes"].items():
        lines.append(
            f"| {batch[6:]} | {b['grpc_request']:,} | {b['grpc_request_make_tensor_proto']:,} | "
            f"{b['grpc_response']:,} | {b['rest_request']:,} | {b['rest_request_json_dumps_tolist']:,} | "
            f"{b['rest_response']:,} |"
        )
    rounds = len(r["throughput"]["rest"]["batching_off"]["rounds"])
    lines += [
        "",
        f"| 32 concurrent clients, batch 1 (median of {rounds} rounds) | requests/s | on / off "
        "(target ≥ 1.5x) | server CPU ms/request | mean rows per batch | errors | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for proto, t in r["throughput"].items():
        for name, m in t.items():
            ratio = f"**{m['throughput_ratio']:.2f}x**" if "throughput_ratio" in m else ""
            rows = r["batch_rows"].get(name, {}).get("mean_rows")
            lines.append(
                f"| {proto} {name.replace('_', ' ')} | {m['requests_per_s']:.0f} | {ratio} | "
                f"{m['server_cpu_ms_per_request']:.2f} | {'' if rows is None else f'{rows:.1f}'} | "
                f"{m['errors']} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} |"
            )
    lines += [
        "",
        "| batching on: gRPC batch-1 p50 ms, one client | "
        + " | ".join(name.removeprefix("batching_on_") for name in r["latency_ms_batching_on"])
        + " |",
        "|---|" + "---|" * len(r["latency_ms_batching_on"]),
        "| (a lone request waits for its batch to time out) | "
        + " | ".join(f"{v['grpc_batch_1']['p50_ms']:.2f}" for v in r["latency_ms_batching_on"].values())
        + " |",
    ]
    lines += [
        "",
        "| client codec (µs, p50) | tensor_content | make_tensor_proto | numpy decode | make_ndarray |",
        "|---|---|---|---|---|",
    ]
    for batch, c in r["codecs"].items():
        lines.append(
            f"| {batch[6:]} | {c['encode_tensor_content_us']:.1f} | {c['encode_make_tensor_proto_us']:.1f} | "
            f"{c['decode_numpy_us']:.1f} | {c['decode_make_ndarray_us']:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
