"""TFLite against the SavedModel signature call: per-example latency and batch throughput, per mode.

Trains the digits mlp in this process (tf-keras, fixed seed), exports it the
way tfrun does (tfrun.tasks.export.save_serving_model), then for each quantization
mode converts it with tfrun.tasks.tflite.convert and times, on the holdout:

- TFLite (ai_edge_litert): one example per invoke (p50/p90 µs), and batches
  of BATCH examples (examples/s, median of the rounds);
- the SavedModel's serving_default signature: the same two figures.

Timings run in interleaved rounds (every mode, then again) so that machine
drift hits all modes alike. Also records size, ratio to float32, holdout accuracy and its drop. Writes
bench/results/tflite.json and prints a markdown table.

Usage: python bench/bench_tflite.py [--neurons 64,512] [--epochs 10] [--repeats 2000] [--batch 256] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from results_io import RESULTS, write_result  # noqa: E402 - bench/, the script's own folder

MODES = ("none", "dynamic", "float16", "int8")
ROUNDS = 3  # interleaved timing rounds per model


def train_and_export(n_neurons: int, epochs: int, export_dir: Path, seed: int = 42):
    import tensorflow as tf
    import tf_keras as keras

    from tfrun.tasks.data import load_digits
    from tfrun.tasks.export import save_serving_model
    from tfrun.tasks.model import build_mlp

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    data = load_digits(
        seed=seed,
        name="digits",
        input_name="pixels",
        holdout_fraction=0.2,
        validation_fraction=0.1,
        limit=None,
        shuffle_buffer=10_000,
        image_shape=None,
    )
    model = build_mlp(
        input_shape=data.input_shape,
        input_dtype="float32",
        input_name="pixels",
        scale=data.scale,
        n_classes=data.n_classes,
        name="mlp",
        n_hidden=2,
        n_neurons=n_neurons,
        dropout=0.0,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data.x_train, data.y_train, batch_size=32, epochs=epochs, verbose=0)
    save_serving_model(model, export_dir, input_name="pixels", input_shape=data.input_shape, input_dtype="float32")
    return data, int(model.count_params())


def bench_model(n_neurons: int, args: argparse.Namespace, work: Path) -> list[dict]:
    """All modes of one model; timings in ROUNDS interleaved rounds so drift hits every mode alike."""
    import numpy as np

    from tfrun.tasks import tflite

    export_dir = work / f"mlp_{n_neurons}" / "0001"
    data, params = train_and_export(n_neurons, args.epochs, export_dir)
    x, y = data.x_holdout, data.y_holdout
    reference = tflite.SavedModelSignature(export_dir)
    float_probabilities = reference.predict(x)
    float_accuracy = float((float_probabilities.argmax(1) == y).mean())
    models, rows = {}, {}
    float32_bytes = None
    for mode in MODES:
        representative = tflite.representative_sample(data.x_train, 300, 42) if mode == "int8" else None
        started = time.perf_counter()
        content = tflite.convert(quantization=mode, saved_model_dir=export_dir, representative=representative)
        convert_s = time.perf_counter() - started
        float32_bytes = float32_bytes or len(content)
        models[mode] = tflite.TfliteModel(content, threads=args.threads)
        probabilities = models[mode].predict(x)
        accuracy = float((probabilities.argmax(1) == y).mean())
        rows[mode] = {
            "model": f"mlp 2x{n_neurons}",
            "parameters": params,
            "mode": tflite.label(mode),
            "bytes": len(content),
            "size_ratio": round(len(content) / float32_bytes, 3),
            "accuracy": round(accuracy, 4),
            "float_accuracy": round(float_accuracy, 4),
            "accuracy_drop": round(float_accuracy - accuracy, 4),
            "max_abs_diff": float(abs(probabilities - float_probabilities).max()),
            "convert_seconds": round(convert_s, 2),
            "interpreter": models[mode].info["name"],
        }
    latencies = {mode: [] for mode in (*MODES, "saved_model")}
    throughputs = {mode: [] for mode in (*MODES, "saved_model")}
    per_round = max(args.repeats // ROUNDS, 10)
    for _ in range(ROUNDS):
        latencies["saved_model"].append(reference.latencies_us(x, min(per_round, 200)))
        throughputs["saved_model"].append(reference.throughput(x, args.batch, min_seconds=0.3))
        for mode, model in models.items():
            latencies[mode].append(model.latencies_us(x, per_round))
            throughputs[mode].append(model.throughput(x, args.batch, min_seconds=0.3))
    sm_latency = tflite.percentiles(np.concatenate(latencies["saved_model"]))
    sm_throughput = float(np.median(throughputs["saved_model"]))
    for mode, row in rows.items():
        latency = tflite.percentiles(np.concatenate(latencies[mode]))
        throughput = float(np.median(throughputs[mode]))
        row.update(
            {
                "tflite_latency_us": latency,
                "tflite_throughput_per_s": round(throughput),
                "saved_model_latency_us": sm_latency,
                "saved_model_throughput_per_s": round(sm_throughput),
                "latency_speedup": round(sm_latency["p50"] / latency["p50"], 1),
            }
        )
        print(
            f"  {row['model']:<11} {row['mode']:<8} {row['bytes']:>9,} B  p50 {latency['p50']:7.1f} µs  "
            f"{throughput:>12,.0f}/s",
            file=sys.stderr,
            flush=True,
        )
    return list(rows.values())


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [
        f"| model | mode | bytes | × float32 | holdout acc. (drop) | TFLite p50 / p90 µs | SavedModel p50 µs "
        f"| speed-up | TFLite batch {args.batch} ex/s | SavedModel batch {args.batch} ex/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['mode']} | {r['bytes']:,} | {r['size_ratio']:.2f} | "
            f"{r['accuracy']:.4f} ({r['accuracy_drop']:+.4f}) | "
            f"{r['tflite_latency_us']['p50']:.1f} / {r['tflite_latency_us']['p90']:.1f} | "
            f"{r['saved_model_latency_us']['p50']:.0f} | {r['latency_speedup']:.0f}× | "
            f"{r['tflite_throughput_per_s']:,} | {r['saved_model_throughput_per_s']:,} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", default="64,512", help="hidden width(s) of the 2-layer mlp, comma separated")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2000, help="single-example calls timed per mode")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="TFLite interpreter threads")
    parser.add_argument("--out", default=str(RESULTS / "tflite.json"))
    args = parser.parse_args()

    import tensorflow as tf

    rows = []
    with tempfile.TemporaryDirectory() as work:
        for n in (int(v) for v in args.neurons.split(",")):
            rows += bench_model(n, args, Path(work))
    try:
        from importlib.metadata import version

        litert = version("ai-edge-litert")
    except Exception:
        litert = None
    result = {
        "benchmark": "tflite",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpus": os.cpu_count(),
            "arch": platform.machine(),
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "ai_edge_litert": litert,
        },
        "settings": {
            "epochs": args.epochs,
            "repeats": args.repeats,
            "batch": args.batch,
            "threads": args.threads,
            "data": "digits holdout (360 examples)",
        },
        "results": rows,
    }
    out = write_result(result, Path(args.out))
    print(markdown(rows, args))
    print(f"\n(results: {os.path.relpath(out)})")


if __name__ == "__main__":
    main()
