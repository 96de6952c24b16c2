"""target=tflite end to end: four modes through the real tfrun (deploys of the suite's shared trained run; the
QAT pair trains, through `tfrun -m target=tflite`), fresh-process checks, size, QAT, bad inputs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers import assert_rejected, command_env, copy_trained, read_record, tfrun

pytestmark = pytest.mark.slow

MODES = ("none", "dynamic", "float16", "int8")
# the QAT pair (big_int8) trains: 2 epochs leave both int8 files within 0.01 of their float model (measured: a drop
# of 0 for each), the figures tested there; QAT's training is most of this module's time
QUICK = ["train.epochs=2", "train.verbose=0", "train.callbacks.tensorboard=false"]


def _sweep(cwd: Path, name: str, *overrides: str) -> list[dict[str, Any]]:
    proc = tfrun("-m", "target=tflite", *QUICK, *overrides, f"hydra.sweep.dir={name}", cwd=cwd, timeout=280)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    runs = sorted((cwd / name).glob("*/record.json"), key=lambda p: int(p.parent.name))
    return [read_record(p.parent) for p in runs]


def _artifact(record: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [a for a in record["artifacts"] if a["kind"] == kind]
    assert len(found) == 1, record["artifacts"]
    return found[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tflite")


def _saved_model(record: dict[str, Any], workdir: Path | None = None) -> dict[str, Any]:
    """The SavedModel artifact a record's .tflite file was converted from: the run's own export, or for a deploy
    (job=deploy) the one its source run's record lists."""
    if record["job"] == "deploy":
        assert workdir is not None
        record = json.loads((workdir / record["source"]["record"]).read_text())
    return _artifact(record, "saved_model")


@pytest.fixture(scope="module")
def four_modes(workdir: Path, trained_digits: Path) -> dict[str, dict[str, Any]]:
    """`tfrun job=deploy source=runs/train target=tflite target.quantization=MODE` for each mode, of the suite's
    shared trained run (5 epochs; the conversion is tested here, not the training): one record per mode."""
    copy_trained(trained_digits, workdir)
    records = []
    for i, mode in enumerate(MODES):
        run = f"modes/{i}"
        proc = tfrun(
            "job=deploy",
            "source=runs/train",
            "target=tflite",
            f"target.quantization={mode}",
            f"hydra.run.dir={run}",
            cwd=workdir,
            timeout=280,
        )
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        records.append(read_record(workdir / run))
    return {r["config"]["target"]["quantization"]: r for r in records}


@pytest.fixture(scope="module")
def big_int8(workdir: Path) -> dict[bool, dict[str, Any]]:
    """int8 on a ~300k-parameter mlp, without and with quantization-aware training; these exports also
    have the opt-in class_id output (export.class_id_output=true), the four modes' have probabilities alone."""
    records = _sweep(
        workdir,
        "big",
        "target.quantization=int8",
        "model.n_hidden=2",
        "model.n_neurons=512",
        "train.quantization_aware=false,true",
        "export.class_id_output=true",
    )
    return {r["config"]["train"]["quantization_aware"]: r for r in records}


# ---------------------------------------------------------------- records
def test_each_mode_records_accuracy_drop_difference_size_and_latency(workdir: Path, four_modes):
    float_accuracies = set()
    for mode, record in four_modes.items():
        assert record["status"] == "succeeded", (mode, record["error"])
        assert [s["name"] for s in record["steps"]][-3:] == ["tflite_convert", "tflite_evaluate", "tflite_gate"]
        art = _artifact(record, "tflite")
        saved_model = _saved_model(record, workdir)
        path = workdir / art["path"]
        assert path.is_file() and path.parent == (workdir / saved_model["path"]).parent  # beside the export
        assert path.name == f"{saved_model['version']:04d}.{'float32' if mode == 'none' else mode}.tflite"
        content = path.read_bytes()
        assert art["bytes"] == len(content) and art["sha256"] == hashlib.sha256(content).hexdigest()
        assert art["accepted"] is True and art["quantization"] == mode
        assert 0.85 <= art["accuracy"] <= 1.0
        assert art["accuracy_drop"] == pytest.approx(art["float_accuracy"] - art["accuracy"], abs=1e-6)
        assert art["accuracy_drop"] <= art["max_accuracy_drop"] == 0.01
        assert 0.0 <= art["max_abs_diff"] < 0.1
        assert art["latency_us"]["p50"] > 0 and art["throughput_per_s"] > 0 and art["threads"] == 1
        assert art["saved_model_latency_us"]["p50"] > art["latency_us"]["p50"]
        assert art["interpreter"]["name"] == "ai_edge_litert" and art["interpreter"]["note"] is None
        final = record["metrics"]["final"]
        for key in (
            "tflite_accuracy",
            "tflite_accuracy_drop",
            "tflite_max_abs_diff",
            "tflite_bytes",
            "tflite_size_ratio",
            "tflite_latency_p50_us",
            "tflite_throughput_per_s",
        ):
            assert key in final, key
        assert final["tflite_size_ratio"] == pytest.approx(art["bytes"] / art["float32_bytes"], abs=1e-4)
        float_accuracies.add(art["float_accuracy"])
    assert len(float_accuracies) == 1  # same seed, deterministic: the four records compare one model
    none, dynamic, f16, int8 = (_artifact(four_modes[m], "tflite") for m in MODES)
    assert none["size_ratio"] == 1.0 and none["max_abs_diff"] < 1e-5 and none["accuracy_drop"] == 0
    assert f16["max_abs_diff"] < 1e-2 and f16["size_ratio"] < 0.7
    assert dynamic["size_ratio"] < 0.6 and int8["size_ratio"] < 0.6
    assert int8["input_dtype"] == "int8" and int8["output_dtype"] == "int8"
    assert {tuple(_saved_model(r, workdir)["outputs"]) for r in four_modes.values()} == {("probabilities",)}


def test_int8_is_under_30_percent_of_float32_and_qat_is_no_worse(big_int8):
    ptq, qat = big_int8[False], big_int8[True]
    for record in (ptq, qat):
        assert record["status"] == "succeeded", record["error"]
        assert _saved_model(record)["outputs"] == ["probabilities", "class_id"]
    ptq_art, qat_art = _artifact(ptq, "tflite"), _artifact(qat, "tflite")
    params = next(s for s in ptq["steps"] if s["name"] == "model")["result"]["parameters"]
    assert params > 250_000
    assert ptq_art["size_ratio"] <= 0.30 and qat_art["size_ratio"] <= 0.30
    assert ptq_art["accuracy_drop"] <= 0.01 and qat_art["accuracy_drop"] <= 0.01
    assert qat_art["accuracy_drop"] <= ptq_art["accuracy_drop"]
    qat_train = next(s for s in qat["steps"] if s["name"] == "train")["result"]
    assert {"hidden_1", "hidden_2", "probabilities"} <= set(qat_train["quantization_aware_layers"])


FRESH = r"""
import hashlib, json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter

out = []
for item in json.loads(sys.argv[1]):
    arrays = np.load(item["npz"])
    interpreter = Interpreter(model_path=item["tflite"], num_threads=item["threads"])
    runner = interpreter.get_signature_runner("serving_default")
    (name, detail), = runner.get_input_details().items()
    x = arrays["x"]
    scale, zero = detail["quantization"]
    if np.dtype(detail["dtype"]) == np.int8:
        x = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
    result = runner(**{name: x})
    probabilities = result["probabilities"]
    scale, zero = runner.get_output_details()["probabilities"]["quantization"]
    if probabilities.dtype == np.int8:
        probabilities = (probabilities.astype(np.float32) - zero) * scale
    predicted = probabilities.argmax(axis=1).astype(np.int64)
    out.append({"tflite": item["tflite"],
                "classes_sha256": hashlib.sha256(predicted.tobytes()).hexdigest(),
                "outputs": sorted(result),
                "class_id_matches": bool((result["class_id"] == predicted).all()) if "class_id" in result else None,
                "max_diff_vs_npz": float(np.abs(probabilities - arrays["probabilities"]).max()),
                "accuracy": float((predicted == arrays["y"]).mean())})
print(json.dumps({"results": out, "tensorflow_imported": "tensorflow" in sys.modules}))
"""


def test_every_file_answers_in_a_fresh_process_as_the_record_states(workdir: Path, four_modes, big_int8):
    records = [*four_modes.values(), *big_int8.values()]
    items = []
    for record in records:
        art = _artifact(record, "tflite")
        npz = workdir / art["predictions"]["path"]
        assert hashlib.sha256(npz.read_bytes()).hexdigest() == art["predictions"]["sha256"]
        items.append({"tflite": str(workdir / art["path"]), "npz": str(npz), "threads": art["threads"]})
    proc = subprocess.run(
        [sys.executable, "-c", FRESH, json.dumps(items)],
        cwd=workdir,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer["tensorflow_imported"] is False  # LiteRT alone, as on a device
    for record, result in zip(records, answer["results"]):
        art = _artifact(record, "tflite")
        assert result["classes_sha256"] == art["predictions"]["predicted_classes_sha256"], art["path"]
        outputs = _saved_model(record, workdir)["outputs"]
        assert result["outputs"] == sorted(outputs), (art["path"], result["outputs"])
        assert result["class_id_matches"] is (True if "class_id" in outputs else None), art["path"]
        assert result["max_diff_vs_npz"] <= 1e-6, (art["path"], result)
        assert result["accuracy"] == pytest.approx(art["accuracy"], abs=1e-9)


# -------------------------------------------------------------- bad inputs
def test_too_few_training_examples_for_the_representative_sample_fails_clearly(workdir: Path):
    """Found before training (the data's known shape, tfrun.runner.config.data_shape): exit 2, one line, no run."""
    proc = tfrun(
        "target=tflite",
        "target.quantization=int8",
        "target.representative_samples=120",
        "data.limit=150",
        "train.epochs=1",
        "train.verbose=0",
        "train.callbacks.tensorboard=false",
        "hydra.run.dir=runs/few",
        cwd=workdir,
        timeout=200,
    )
    assert_rejected(proc, ["target.representative_samples=120", "108 training examples"], workdir / "runs" / "few")


def _tiny_saved_model(path: Path, fn) -> Path:
    import tensorflow as tf

    class Tiny(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x):
            return {"probabilities": fn(x)}

    module = Tiny()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve.get_concrete_function()})
    return path


def test_an_op_tflite_lacks_names_the_op_and_select_tf_ops(tmp_path: Path):
    import tensorflow as tf

    from tfrun.tasks.tflite import TfliteConversionError, TfliteInterpreterError, TfliteModel, convert

    strings = _tiny_saved_model(
        tmp_path / "strings", lambda x: tf.cast(tf.strings.length(tf.strings.as_string(x)), tf.float32)
    )
    with pytest.raises(TfliteConversionError) as info:
        convert(quantization="none", saved_model_dir=strings)
    message = str(info.value)
    assert "AsString" in message and "StringLength" in message and "target.select_tf_ops=true" in message
    assert "Traceback" not in message and len(message) < 800
    flex = convert(quantization="none", saved_model_dir=strings, select_tf_ops=True)  # Select TF ops: converts
    with pytest.raises(TfliteInterpreterError, match="Select TF ops.*Flex delegate"):
        TfliteModel(flex)

    erfinv = _tiny_saved_model(tmp_path / "erfinv", lambda x: tf.math.erfinv(x))
    with pytest.raises(TfliteConversionError) as info:
        convert(quantization="dynamic", saved_model_dir=erfinv, select_tf_ops=True)
    assert info.value.custom_ops == ["Erfinv"] and "does not help" in str(info.value)


def test_quality_gate_rejects_a_worse_model_and_keeps_the_file(workdir: Path, four_modes, tmp_path: Path):
    """A real evaluation: an untrained model's .tflite against the trained float SavedModel."""
    from omegaconf import OmegaConf

    from tfrun.tasks.context import Context
    from tfrun.tasks.data import load_digits
    from tfrun.tasks.export import save_serving_model
    from tfrun.tasks.model import build_mlp
    from tfrun.tasks.tflite import TfliteQualityGateError, convert, evaluate_step, gate_step, write_atomic

    record = four_modes["none"]
    saved_model = _saved_model(record, workdir)
    cfg = OmegaConf.create({**record["config"], "model_name": "digits_mlp"})
    data = load_digits(
        seed=cfg.train.seed,
        name="digits",
        input_name="pixels",
        holdout_fraction=0.2,
        validation_fraction=0.1,
        limit=None,
        shuffle_buffer=100,
        image_shape=None,
    )
    untrained = build_mlp(
        input_shape=data.input_shape,
        input_dtype="float32",
        input_name="pixels",
        scale=16.0,
        n_classes=10,
        name="mlp",
        n_hidden=1,
        n_neurons=4,
        dropout=0.0,
    )
    save_serving_model(
        untrained, tmp_path / "untrained", input_name="pixels", input_shape=data.input_shape, input_dtype="float32"
    )
    bad = tmp_path / "0001.float32.tflite"
    content = convert(quantization="none", saved_model_dir=tmp_path / "untrained")
    write_atomic(bad, content)
    ctx = Context(run_dir=tmp_path, emit=lambda event: None)
    ctx.state.update(
        data=data,
        export={"path": workdir / saved_model["path"], "version": saved_model["version"]},
        tflite={
            "path": bad,
            "bytes": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "quantization": "none",
            "label": "float32",
            "source": "saved_model",
            "int8_io": None,
            "select_tf_ops": False,
            "float32_bytes": len(content),
            "size_ratio": 1.0,
        },
    )
    result = evaluate_step(cfg, ctx)
    art = result["artifacts"][0]
    assert result["accepted"] is False and art["accepted"] is False
    assert art["float_accuracy"] == _artifact(record, "tflite")["float_accuracy"]
    assert art["accuracy_drop"] > 0.5
    with pytest.raises(TfliteQualityGateError) as info:
        gate_step(cfg, ctx)
    message = str(info.value)
    assert f"{art['accuracy']:.4f}" in message and f"{art['float_accuracy']:.4f}" in message
    assert "accepted=false" in message and bad.is_file()
    assert np.load(tmp_path / "tflite" / "0001.float32.holdout.npz")["predicted"].shape == (360,)


@pytest.mark.filterwarnings("ignore::UserWarning")  # tf.lite.Interpreter warns it is deprecated: expected
def test_fallback_interpreter_is_noted_and_answers_alike(workdir: Path, four_modes, monkeypatch):
    from tfrun.tasks.tflite import TfliteModel

    art = _artifact(four_modes["int8"], "tflite")
    arrays = np.load(workdir / art["predictions"]["path"])
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # as if the tflite extra were not installed
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    model = TfliteModel(workdir / art["path"], threads=1)
    assert model.info["name"] == "tf.lite.Interpreter" and "deprecat" in model.info["note"]
    probabilities = model.predict(arrays["x"])
    assert (probabilities.argmax(axis=1) == arrays["predicted"]).all()
    assert np.abs(probabilities - arrays["probabilities"]).max() <= 1e-6
