"""target=web through the real tfrun command: the page bundle predicts like the trained model in headless
Chromium (Debian's, driven by puppeteer-core), online and after an offline reload from its service worker."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import BIN, command_env, copy_example, copy_trained, read_record, tfrun

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

QUICK = ["train.epochs=3", "train.verbose=0", "train.callbacks.tensorboard=false"]


def _web(record: dict) -> tuple[dict, dict]:
    artifact = next(a for a in record["artifacts"] if a["kind"] == "web_bundle")
    parity = next(s["result"] for s in record["steps"] if s["name"] == "web_parity")
    return artifact, parity


def _assert_checked(workdir: Path, record: dict, version_dir: str) -> dict:
    assert record["status"] == "succeeded", record.get("error")
    artifact, step = _web(record)
    report = artifact["parity"]
    for when in ("online", "offline"):
        assert report[when]["passed"] and report[when]["argmax_equal"] == report[when]["examples"], report[when]
        assert report[when]["max_abs_diff"] <= 1e-5
    assert report["offline"]["served_by_service_worker"], "the offline reload came from the service worker"
    assert report["foreign_requests"] == [], "nothing is fetched from another host"
    assert artifact["path"] == f"{version_dir}.web" and artifact["bytes"] > 1_000_000
    bundle = workdir / artifact["path"]
    model = "model.tflite" if artifact["format"] == "tflite" else "model.json"
    for name in (
        "index.html",
        "app.js",
        "sw.js",
        "manifest.webmanifest",
        "icon-192.png",
        model,
        "tf.min.js",
        "tf-backend-wasm.min.js",
        "tfjs-backend-wasm-simd.wasm",
        "page.json",
    ):
        assert (bundle / name).is_file(), name
    for name in ("index.html", "app.js", "sw.js"):  # the page's own code names no other host
        assert not re.search(r"https?://", (bundle / name).read_text()), name
    shot = workdir / artifact["screenshot"]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5_000
    metrics = record["metrics"]["final"]
    assert metrics["web_bundle_bytes"] == artifact["bytes"] and metrics["web_first_prediction_ms"] > 0
    assert metrics["web_predict_p50_ms_batch_1"] > 0 and metrics["web_predict_p50_ms_batch_64"] > 0
    return report


def test_the_digits_mlp_predicts_like_the_trained_model_in_the_browser(trained_digits: Path, workdir: Path):
    """The suite's shared trained digits mlp, deployed (job=deploy source=runs/train target=web: a training run's own
    target=web is what the cnn, wine and mixed-precision tests run): the page predicts like that model; the deploy's
    record links the training run (this is also test_deploy_job.py's web deploy); job=serve_web serves the bundle."""
    copy_trained(trained_digits, workdir)
    proc = tfrun("job=deploy", "source=runs/train", "target=web", "hydra.run.dir=runs/web", cwd=workdir, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = read_record(workdir / "runs/web")
    report = _assert_checked(workdir, record, "models/digits_mlp/0001")
    assert report["backend"] == "wasm" and report["online"]["examples"] == 360
    assert "argmax equal on 360/360" in proc.stdout and "from the service worker" in proc.stdout

    # a deploy: no training, the source run's export and metrics, linked by its record
    steps = [s["name"] for s in record["steps"]]
    assert record["job"] == "deploy" and steps[:3] == ["hardware", "data", "source"], steps
    assert "train" not in steps and "export" not in steps, steps
    train = read_record(workdir / "runs/train")
    export = next(a for a in train["artifacts"] if a["kind"] == "saved_model")
    source = record["source"]
    assert source["run_id"] == train["run_id"] and source["record"] == "runs/train/record.json"
    assert source["saved_model"] == export["path"] and source["sha256"] == export["sha256"]
    assert source["weights_sha256"] == train["weights_sha256"] == record["weights_sha256"]
    assert record["metrics"]["final"]["holdout_accuracy"] == train["metrics"]["final"]["holdout_accuracy"]

    # job=serve_web serves that bundle in the foreground (here for a few seconds)
    server = subprocess.Popen(
        [str(BIN / "tfrun"), "job=serve_web", "serve_web.port=0", "serve_web.duration_s=4", "hydra.run.dir=runs/serve"],
        cwd=workdir,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = None
    for line in server.stdout:  # type: ignore[union-attr]
        found = re.search(r"at (http://127\.0\.0\.1:\d+/index\.html)", line)
        if found:
            url = found.group(1)
            with urllib.request.urlopen(url, timeout=10) as answer:
                assert answer.status == 200 and b"app.js" in answer.read()
            break
    rest = server.communicate(timeout=60)[0]
    assert url and server.returncode == 0, rest
    served = read_record(workdir / "runs/serve")
    assert served["status"] == "succeeded" and served["deployments"][0]["path"] == "models/digits_mlp/0001.web"


def test_a_cnn_with_uint8_input_is_fed_int32_and_names_its_classes(workdir: Path):
    rng = np.random.default_rng(1)
    y = np.arange(400) % 4
    x = (rng.integers(0, 40, (400, 28, 28)) + y[:, None, None] * 50).astype("uint8").reshape(400, -1)
    np.savez(workdir / "flat.npz", x=x, y=y)
    proc = tfrun(
        "model=cnn",
        "model.filters=[4]",
        "data=files",
        "data.path=flat.npz",
        "data.image_shape=[28,28]",
        "target=web",
        "target.class_names=[dim,low,mid,bright]",
        *QUICK,
        "hydra.run.dir=runs/cnn",
        cwd=workdir,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = read_record(workdir / "runs/cnn")
    _assert_checked(workdir, record, "models/files_cnn/0001")
    bundle = next(s["result"] for s in record["steps"] if s["name"] == "web_bundle")
    assert "[28, 28] int32" in bundle["summary"], "TF.js sees the uint8 input as int32"
    assert any(word in _web(record)[0]["parity"]["shown"] for word in ("dim", "low", "mid", "bright"))


@pytest.mark.parametrize("mode, label", [("none", "float32"), ("float16", "float16"), ("int8", "int8_float_io")])
def test_the_tflite_file_in_the_page_answers_like_litert(trained_digits: Path, workdir: Path, mode: str, label: str):
    """target.format=tflite: the .tflite file (beside the export, as target=tflite names it) in the page with
    @tensorflow/tfjs-tflite; the browser's answers equal LiteRT's on the same file. The suite's shared trained
    run, deployed (job=deploy): the conversion and the page are what is tested here, not the training."""
    copy_trained(trained_digits, workdir)
    proc = tfrun(
        "job=deploy",
        "source=runs/train",
        "target=web",
        "target.format=tflite",
        f"target.quantization={mode}",
        f"hydra.run.dir=runs/{mode}",
        cwd=workdir,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = read_record(workdir / f"runs/{mode}")
    artifact, _ = _web(record)
    version = artifact["version"]
    report = _assert_checked(workdir, record, f"models/digits_mlp/{version:04d}")
    assert report["reference"] == "LiteRT on the same .tflite file"
    assert (workdir / artifact["path"] / "model.tflite").read_bytes() == (
        workdir / f"models/digits_mlp/{version:04d}.{label}.tflite"
    ).read_bytes()
    assert report["vs_trained_model"]["argmax_equal"] >= 0.9 * report["online"]["examples"]


def test_a_users_own_model_is_a_page_and_stays_served_on_request(tmp_path: Path):
    """examples/wine (its own loader and model, flat input: a numbers box) with target.serve=true: checked, then
    left served on 127.0.0.1 until its printed stop command."""
    project = copy_example("wine", tmp_path / "wine")
    proc = tfrun(
        "--config-dir",
        "conf",
        "experiment=wine",
        "train.epochs=10",
        "target=web",
        "target.serve=true",
        "hydra.run.dir=runs/web",
        cwd=project,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = read_record(project / "runs/web")
    _assert_checked(project, record, "models/wine_tabular/0001")
    page = (project / "models/wine_tabular/0001.web/page.json").read_text()
    assert '"shape": [\n   13\n  ]' in page or '"shape": [13]' in page.replace("\n", "").replace(" ", "")
    served = next(d for d in record["deployments"] if d["kind"] == "web_server")
    assert served["url"].startswith("http://127.0.0.1:") and f"kill {served['pid']}" in proc.stdout
    try:
        with urllib.request.urlopen(served["url"], timeout=10) as answer:
            assert answer.status == 200 and b"app.js" in answer.read()
    finally:
        os.kill(served["pid"], signal.SIGTERM)


def test_a_mixed_precision_export_is_held_to_a_float16_sized_tolerance(workdir: Path):
    """float16 compute (mixed precision) vs the page's float32: the default 1e-5 fails, saying why and what fits;
    target.parity_atol=1e-3 passes with argmax equal on every row (the same export, deployed again)."""
    strict = tfrun(
        "target=web",
        "hardware.mixed_precision=true",
        *QUICK,
        "train.epochs=1",
        "hydra.run.dir=runs/strict",
        cwd=workdir,
        timeout=400,
    )
    assert strict.returncode == 1
    error = read_record(workdir / "runs/strict")["error"]["message"]
    assert "computes in float16" in error and "1e-3" in error, error
    assert not (workdir / "models/digits_mlp/0001.web").exists() and (workdir / "runs/strict/web/bundle").is_dir()
    loose = tfrun(
        "job=deploy",
        "source=runs/strict",
        "target=web",
        "target.parity_atol=1e-3",
        "hydra.run.dir=runs/loose",
        cwd=workdir,
        timeout=400,
    )
    assert loose.returncode == 0, loose.stdout[-3000:] + loose.stderr[-3000:]
    report = _web(read_record(workdir / "runs/loose"))[0]["parity"]
    assert report["online"]["passed"] and report["online"]["argmax_equal"] == report["online"]["examples"]
