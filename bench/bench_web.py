"""target=web in the browser against the same model in TensorFlow: bundle bytes, navigation to the first
prediction, predict p50 at batch 1 and 64 (wasm and cpu backends, and the .tflite format), and the SavedModel's
serving signature called in-process at the same batch sizes.

Each browser figure comes from a real `tfrun target=web` run (its record: headless Chromium driving the
page's own code); the TensorFlow figures time `signatures["serving_default"]` on the same export. Writes
bench/results/web.json and the screenshot of the wasm run as bench/results/web_page.png (the README shows it).

Usage: python bench/bench_web.py
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_io import RESULTS, write_result  # bench/, the script's own folder

BIN = Path(sys.executable).parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
VARIANTS = {
    "wasm": ["target.backend=wasm"],
    "cpu": ["target.backend=cpu"],
    "tflite (float32)": ["target.format=tflite"],
}


def tfrun(work: Path, name: str, overrides: list[str]) -> dict:
    subprocess.run(
        [str(BIN / "tfrun"), "target=web", "train.epochs=5", *overrides, f"hydra.run.dir=runs/{name}"],
        cwd=work,
        env=ENV,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return json.loads((work / "runs" / name / "record.json").read_text())


def tensorflow_p50(export: Path, x, batch: int, repeats: int = 200) -> float:
    import tensorflow as tf

    serve = tf.saved_model.load(str(export)).signatures["serving_default"]
    rows = tf.constant(x[:batch] if len(x) >= batch else x.repeat(batch // len(x) + 1, axis=0)[:batch])
    serve(rows)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        serve(rows)["probabilities"].numpy()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-web-"))
    result: dict = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "date": time.strftime("%Y-%m-%d"),
        "model": "digits mlp (default), 5 epochs",
        "runs": {},
    }
    export = None
    for name, overrides in VARIANTS.items():
        record = tfrun(work, name.split()[0], overrides)
        metrics = record["metrics"]["final"]
        artifact = next(a for a in record["artifacts"] if a["kind"] == "web_bundle")
        result["runs"][name] = {
            "bundle_bytes": artifact["bytes"],
            "backend": artifact["parity"]["backend"],
            "first_prediction_ms": metrics["web_first_prediction_ms"],
            "p50_ms_batch_1": metrics["web_predict_p50_ms_batch_1"],
            "p50_ms_batch_64": metrics["web_predict_p50_ms_batch_64"],
            "max_abs_diff": artifact["parity"]["online"]["max_abs_diff"],
        }
        if name == "wasm":
            export = work / next(a for a in record["artifacts"] if a["kind"] == "saved_model")["path"]
            shutil.copy2(work / artifact["screenshot"], RESULTS / "web_page.png")
    from sklearn.datasets import load_digits

    x = load_digits().images.astype("float32")
    result["tensorflow_in_process"] = {
        "p50_ms_batch_1": tensorflow_p50(export, x, 1),
        "p50_ms_batch_64": tensorflow_p50(export, x, 64),
    }
    write_result(result, RESULTS / "web.json")
    print("| | bundle | first prediction | p50 batch 1 | p50 batch 64 | max abs diff |\n|---|---|---|---|---|---|")
    for name, run in result["runs"].items():
        print(
            f"| browser, {name} | {run['bundle_bytes'] / 1e6:.1f} MB | {run['first_prediction_ms']:.0f} ms | "
            f"{run['p50_ms_batch_1']:.3f} ms | {run['p50_ms_batch_64']:.3f} ms | {run['max_abs_diff']:.1e} |"
        )
    tf_run = result["tensorflow_in_process"]
    print(f"| TensorFlow, in-process | | | {tf_run['p50_ms_batch_1']:.3f} ms | {tf_run['p50_ms_batch_64']:.3f} ms | |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
