"""target=tflite config: schema, validation before TensorFlow (exit 2), and the TF-free parts of tfrun.tasks.tflite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from tests.helpers import command_env, tfrun
from tfrun.runner.config.validate import validate
from tfrun.runner.steps import STEPS
from tfrun.tasks.core import schema
from tfrun.tasks.core.plans import plan


# ---------------------------------------------------------------- schema
def test_tflite_is_a_registered_target_with_its_steps(compose_cfg):
    assert schema.SCHEMAS["target"]["tflite"] is schema.TfliteTarget
    cfg = compose_cfg("target=tflite")
    config = validate(cfg)
    target = config.target
    assert isinstance(target, schema.TfliteTarget)
    assert target.name == "tflite"
    assert target.steps == ["tflite_convert", "tflite_evaluate", "tflite_gate"]
    assert target.quantization is schema.Quantization.none
    assert target.int8_io is schema.Int8Io.int8
    assert target.source is schema.TfliteSource.saved_model
    assert target.max_accuracy_drop == 0.01
    assert target.select_tf_ops is False
    assert target.representative_samples >= schema.MIN_REPRESENTATIVE_SAMPLES
    assert config.train.quantization_aware is False
    for name in target.steps:
        assert STEPS[name].startswith("tfrun.tasks.tflite:")
    assert plan("train", target.steps)[-4:] == ["export", *target.steps]


def test_quantization_modes_are_an_enum(compose_cfg):
    assert [q.value for q in schema.Quantization] == ["none", "dynamic", "float16", "int8"]
    for mode in ("none", "dynamic", "float16", "int8"):
        config = validate(compose_cfg("target=tflite", f"target.quantization={mode}"))
        assert config.target.quantization.value == mode
    config = validate(
        compose_cfg(
            "target=tflite",
            "target.quantization=int8",
            "target.int8_io=float32",
            "target.source=keras",
            "target.select_tf_ops=true",
            "train.quantization_aware=true",
        )
    )
    assert (config.target.int8_io.value, config.target.source.value) == ("float32", "keras")
    assert config.target.select_tf_ops and config.train.quantization_aware


def test_resolved_config_reaches_the_child_as_plain_strings(compose_cfg):
    resolved = OmegaConf.to_container(
        compose_cfg("target=tflite", "target.quantization=float16"), resolve=True, enum_to_str=True
    )
    assert resolved["target"]["quantization"] == "float16"
    assert resolved["target"]["source"] == "saved_model"


@pytest.mark.parametrize(
    "fields, key",
    [
        ({"quantization": schema.Quantization.int8, "representative_samples": 99}, "target.representative_samples"),
        ({"representative_samples": 0}, "target.representative_samples"),
        ({"threads": 0}, "target.threads"),
        ({"max_accuracy_drop": -0.1}, "target.max_accuracy_drop"),
        ({"max_accuracy_drop": 1.5}, "target.max_accuracy_drop"),
        ({"latency_repeats": 5}, "target.latency_repeats"),
        ({"throughput_batch": 0}, "target.throughput_batch"),
        ({"steps": ["tflite_evaluate", "tflite_gate"]}, "target.steps"),
        ({"steps": ["tflite_convert", "tflite_gate"]}, "target.steps"),
    ],
)
def test_problems_name_the_key(fields: dict, key: str):
    problems = list(schema.TfliteTarget(**fields).problems())
    assert [p.key for p in problems] == [key], problems


def test_defaults_and_partial_plans_are_fine():
    assert list(schema.TfliteTarget().problems()) == []
    assert list(schema.TfliteTarget(quantization=schema.Quantization.int8).problems()) == []
    assert list(schema.TfliteTarget(steps=["tflite_convert"]).problems()) == []
    assert list(schema.TfliteTarget(steps=["tflite_convert", "tflite_evaluate"]).problems()) == []
    # fewer than 100 samples are only a problem when int8 uses them
    assert (
        list(schema.TfliteTarget(quantization=schema.Quantization.dynamic, representative_samples=10).problems()) == []
    )


# ------------------------------------------------- the real command, exit 2
BAD = [
    pytest.param(
        ["target.quantization=int4"],
        ["target.quantization", "int4", "none, dynamic, float16, int8"],
        id="invalid-quantization-name",
    ),
    pytest.param(
        ["target.quantization=int8", "target.representative_samples=10"],
        ["target.representative_samples", "10", ">= 100", "int8"],
        id="int8-too-few-representative",
    ),
    pytest.param(["target.threads=0"], ["target.threads", "0", "[1, 64]"], id="zero-threads"),
    pytest.param(
        ["target.max_accuracy_drop=1.5"], ["target.max_accuracy_drop", "1.5", "[0.0, 1.0]"], id="drop-out-of-range"
    ),
    pytest.param(["target.latency_repeats=1"], ["target.latency_repeats", "1", "[10, "], id="too-few-repeats"),
    pytest.param(["target.int8_io=uint8"], ["target.int8_io", "uint8", "int8, float32"], id="bad-io-type"),
    pytest.param(["target.source=h5"], ["target.source", "h5", "saved_model, keras"], id="bad-source"),
    pytest.param(
        ["target.steps=[tflite_evaluate]"],
        ["target.steps", "tflite_evaluate", "tflite_convert"],
        id="evaluate-before-convert",
    ),
    pytest.param(["train.quantization_aware=maybe"], ["train.quantization_aware", "maybe", "bool"], id="qat-not-bool"),
]


@pytest.mark.parametrize("overrides, words", BAD)
def test_bad_tflite_config_exits_2(tmp_path: Path, overrides: list[str], words: list[str]):
    proc = tfrun("target=tflite", *overrides, "hydra.run.dir=runs/bad", cwd=tmp_path, timeout=60)
    message = proc.stdout + proc.stderr
    assert proc.returncode == 2, message
    for word in words:
        assert word in message, f"{word!r} missing from:\n{message}"
    assert "Traceback" not in message
    assert not (tmp_path / "runs" / "bad").exists()
    assert not (tmp_path / "models").exists()


def test_quantization_without_tflite_target_exits_2(tmp_path: Path):
    proc = tfrun("target.quantization=int8", "hydra.run.dir=runs/bad", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "quantization" in proc.stderr


PROBE = """
import sys
sys.argv = ["tfrun", "target=tflite", "target.quantization=int8", "target.representative_samples=5",
            "hydra.run.dir=runs/bad"]
import tfrun.runner.cli
try:
    tfrun.runner.cli.main()
except SystemExit as exc:
    print("CODE=" + str(exc.code))
heavy = sorted(m for m in ("tensorflow", "tf_keras", "ai_edge_litert", "tensorflow_model_optimization")
               if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


def test_rejected_tflite_config_imports_no_tensorflow(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tmp_path, env=command_env(), capture_output=True, text=True, timeout=60
    )
    assert "CODE=2" in proc.stdout, proc.stdout + proc.stderr
    assert "HEAVY=\n" in proc.stdout, proc.stdout


# ------------------------------------------- tfrun.tasks.tflite without TensorFlow
def test_file_sits_beside_the_version_dir_not_inside(tmp_path: Path):
    from tfrun.tasks.tflite import label, tflite_path

    export = tmp_path / "models" / "digits_mlp" / "0007"
    assert tflite_path(export, 7, "none") == export.parent / "0007.float32.tflite"
    assert tflite_path(export, 7, "int8") == export.parent / "0007.int8.tflite"
    assert tflite_path(export, 7, "int8", "float32").name == "0007.int8_float_io.tflite"
    assert label("dynamic") == "dynamic" and label("float16", "float32") == "float16"
    assert not tflite_path(export, 7, "dynamic").name.isdigit()  # TF Serving only loads numeric dirs


def test_representative_sample_is_seeded_and_bounded():
    import numpy as np

    from tfrun.tasks.tflite import TfliteError, representative_sample

    x = np.arange(500, dtype="float32").reshape(250, 2)
    a, b = representative_sample(x, 100, 1), representative_sample(x, 100, 1)
    assert a.shape == (100, 2) and (a == b).all() and len(np.unique(a[:, 0])) == 100
    with pytest.raises(TfliteError, match=r"target.representative_samples=300 is more than the 250 training"):
        representative_sample(x, 300, 1)


SELECT_MESSAGE = """Could not translate MLIR to FlatBuffer.<unknown>:0: error: loc(...): 'tf.AsString' op is neither a custom op nor a flex op
<unknown>:0: error: loc(...): 'tf.StringLength' op is neither a custom op nor a flex op
error: failed while converting: 'main':
Some ops are not supported by the native TFLite runtime, you can enable TF kernels fallback using TF Select. See instructions: https://www.tensorflow.org/lite/guide/ops_select
TF Select ops: AsString, StringLength
Details:
	tf.AsString(tensor<?x4xf32>) -> (tensor<?x4x!tf_type.string>)
"""
CUSTOM_MESSAGE = """Could not translate MLIR to FlatBuffer.<unknown>:0: error: loc(...): 'tf.Erfinv' op is neither a custom op nor a flex op
error: failed while converting: 'main':
Some ops in the model are custom ops, See instructions to implement custom ops: https://www.tensorflow.org/lite/guide/ops_custom
Custom ops: Erfinv
"""


def test_conversion_errors_name_the_ops_and_the_option():
    from tfrun.tasks.tflite import conversion_error

    err = conversion_error(RuntimeError(SELECT_MESSAGE), quantization="none", select_tf_ops=False)
    assert err.select_ops == ["AsString", "StringLength"] and err.custom_ops == []
    assert "AsString, StringLength" in str(err) and "target.select_tf_ops=true" in str(err)
    err = conversion_error(RuntimeError(CUSTOM_MESSAGE), quantization="int8", select_tf_ops=True)
    assert err.custom_ops == ["Erfinv"] and "Erfinv" in str(err)
    assert "does not help" in str(err)
    err = conversion_error(
        RuntimeError("something odd happened\nerror: boom"), quantization="int8", select_tf_ops=False
    )
    assert "error: boom" in str(err) and "target.select_tf_ops=true" in str(err)


def test_missing_export_fails_with_a_clear_message(tmp_path: Path):
    from tfrun.tasks.context import Context
    from tfrun.tasks.tflite import TfliteError, convert_step

    cfg = OmegaConf.create(
        {
            "target": {
                "quantization": "none",
                "int8_io": "int8",
                "source": "saved_model",
                "select_tf_ops": False,
                "representative_samples": 300,
            },
            "train": {"seed": 1},
        }
    )
    ctx = Context(run_dir=tmp_path, emit=lambda event: None)
    with pytest.raises(RuntimeError, match="step needs 'export'"):
        convert_step(cfg, ctx)
    ctx.state["export"] = {"path": tmp_path / "models" / "m" / "0001", "version": 1}
    with pytest.raises(TfliteError, match=r"no SavedModel at .*0001 \(missing saved_model.pb\)"):
        convert_step(cfg, ctx)


def test_gate_fails_with_both_accuracies(tmp_path: Path):
    from tfrun.tasks.tflite import TfliteQualityGateError, gate_step

    ctx = SimpleNamespace(
        state={
            "tflite": {"label": "int8", "path": tmp_path / "0001.int8.tflite"},
            "tflite_evaluation": {
                "accepted": False,
                "accuracy": 0.91,
                "float_accuracy": 0.9667,
                "accuracy_drop": 0.0567,
                "max_accuracy_drop": 0.01,
            },
        }
    )
    ctx.need = lambda key: ctx.state[key]
    with pytest.raises(TfliteQualityGateError) as info:
        gate_step(None, ctx)
    assert info.value.user_facing  # a rejected model is its message alone, no traceback
    message = str(info.value)
    for word in ("0.9100", "0.9667", "0.0567", "target.max_accuracy_drop=0.01", "accepted=false", "0001.int8.tflite"):
        assert word in message, message
    ctx.state["tflite_evaluation"].update(accepted=True, accuracy=0.96, accuracy_drop=0.0067)
    assert gate_step(None, ctx)["accepted"] is True
