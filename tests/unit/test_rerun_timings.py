"""`tfrun-records rerun --verify` and `diff` compare what a deterministic rerun reproduces (weights,
metrics that are not timings, bytes of reproducible artifacts) and only show timings, labelled
"not compared" (records written by hand, tfrun replaced by a fake; no TensorFlow)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.helpers import make_record, run_cli, write
from tfrun.runner.records import reproducible

TFLITE_SHA = "7d" * 32


def tflite_record(
    latency: float = 1.55, throughput: float = 9540401.9, sm_latency: float = 176.66, **changes: Any
) -> dict[str, Any]:
    """A target=tflite run's record as tfrun writes it: the evaluate step declares its timing metrics."""
    data = make_record(**changes)
    data["steps"].append(
        {
            "name": "tflite_evaluate",
            "status": "succeeded",
            "seconds": 0.39,
            "result": {
                "summary": "accuracy 0.8528",
                "accepted": True,
                "accuracy_drop": 0.0,
                "timing_metrics": ["tflite_latency_p50_us", "tflite_throughput_per_s", "saved_model_latency_p50_us"],
            },
        }
    )
    data["metrics"]["final"].update(
        {
            "tflite_accuracy": 0.8527777777777777,
            "tflite_bytes": 38764,
            "tflite_max_abs_diff": 2.384185791015625e-07,
            "tflite_latency_p50_us": latency,
            "tflite_throughput_per_s": throughput,
            "saved_model_latency_p50_us": sm_latency,
        }
    )
    data["artifacts"].append(
        {
            "kind": "tflite",
            "path": "models/digits_mlp/0001.float32.tflite",
            "version": 1,
            "label": "float32",
            "sha256": TFLITE_SHA,
            "bytes": 38764,
            "reproducible": True,
            "latency_us": {"p50": latency},
        }
    )
    return data


def test_rerun_verify_passes_a_tflite_run_whose_timings_changed_and_shows_them_side_by_side(
    tmp_path, capsys, fake_tfrun
):
    run = write(tmp_path / "run", tflite_record())
    rerun = tflite_record(latency=1.56, throughput=9690054.1, sm_latency=184.09, run_id="again")
    rerun["artifacts"][0]["path"] = "models/digits_mlp/0002"  # a new version: paths and SavedModel bytes differ
    rerun["artifacts"][0]["sha256"] = "ee" * 32
    rerun["artifacts"][1]["path"] = "models/digits_mlp/0002.float32.tflite"
    fake_tfrun.will_write(rerun)

    code, out, _ = run_cli(capsys, "rerun", str(run), "--verify")

    assert code == 0, out
    assert "not compared (timings vary with machine load; original | rerun):" in out
    assert "  metrics.final.tflite_latency_p50_us: 1.55 | 1.56" in out
    assert "  metrics.final.tflite_throughput_per_s: 9540401.9 | 9690054.1" in out
    assert "  metrics.final.saved_model_latency_p50_us: 176.66 | 184.09" in out
    assert "differs" not in out and "saved_model" not in out.replace("saved_model_latency", "")
    assert "verified: identical metrics and weights, and identical bytes of reproducible artifacts" in out


def test_rerun_verify_still_fails_on_a_changed_accuracy_or_tflite_file(tmp_path, capsys, fake_tfrun):
    run = write(tmp_path / "run", tflite_record())
    rerun = tflite_record(latency=2.0)
    rerun["metrics"]["final"]["tflite_accuracy"] = 0.85
    rerun["artifacts"][1]["sha256"] = "ab" * 32
    fake_tfrun.will_write(rerun)

    code, out, _ = run_cli(capsys, "rerun", str(run), "--verify")

    assert code == 1
    assert "metrics.final.tflite_accuracy: 0.8527777777777777 != 0.85" in out
    assert f"artifacts.tflite[float32].sha256: {TFLITE_SHA[:12]}.. != abababababab.." in out
    assert "  metrics.final.tflite_latency_p50_us: 1.55 | 2.0" in out  # shown, not a difference
    assert "tflite_latency_p50_us: 1.55 !=" not in out and "verified" not in out


def test_timings_of_steps_that_declare_nothing_are_known_by_name(tmp_path, capsys, fake_tfrun):
    """An older record, or a future step: no declaration, so the naming rule decides."""

    def record(scale: float) -> dict[str, Any]:
        data = make_record()
        data["metrics"]["final"].update(
            {
                "serving_grpc_p99_ms": 7.8 * scale,
                "fit_seconds": 3.7 * scale,
                "examples_per_s": 1000.0 / scale,
                "push_duration": 0.06 * scale,
                "served_accuracy": 0.97,
            }
        )
        return data

    run = write(tmp_path / "run", record(1.0))
    fake_tfrun.will_write(record(1.5))

    code, out, _ = run_cli(capsys, "rerun", str(run), "--verify")

    assert code == 0, out
    for name in ("serving_grpc_p99_ms", "fit_seconds", "examples_per_s", "push_duration"):
        assert f"  metrics.final.{name}: " in out
    assert "served_accuracy" not in out


def test_a_declared_timing_is_not_compared_whatever_its_name(tmp_path, capsys, fake_tfrun):
    def record(warmup: float) -> dict[str, Any]:
        data = make_record()
        data["steps"][1]["result"]["timing_metrics"] = ["warmup"]
        data["metrics"]["final"]["warmup"] = warmup
        return data

    run = write(tmp_path / "run", record(0.5))
    fake_tfrun.will_write(record(0.7))

    code, out, _ = run_cli(capsys, "rerun", str(run), "--verify")

    assert code == 0, out
    assert "  metrics.final.warmup: 0.5 | 0.7" in out


def test_diff_shows_timings_apart_from_the_differences(tmp_path, capsys):
    write(tmp_path / "a", tflite_record())
    write(tmp_path / "b", tflite_record(latency=1.9))

    code, out, _ = run_cli(capsys, "diff", str(tmp_path / "a"), str(tmp_path / "b"))

    assert code == 0
    assert out.startswith("no differences\nnot compared (timings vary with machine load; A | B):\n")
    assert "  metrics.final.tflite_latency_p50_us: 1.55 | 1.9" in out


def test_records_without_timings_print_no_timing_block(tmp_path, capsys, fake_tfrun):
    run = write(tmp_path / "run", make_record())
    fake_tfrun.will_write(copy.deepcopy(make_record()))

    code, out, _ = run_cli(capsys, "rerun", str(run), "--verify")

    assert code == 0 and "not compared" not in out
    assert out.rstrip().endswith("verified: identical metrics and weights")


@pytest.mark.parametrize(
    "name",
    [
        "tflite_latency_p50_us",
        "tflite_throughput_per_s",
        "saved_model_latency_p50_us",
        "convert_seconds",
        "grpc_p99_ms",
        "epoch_time",
        "step_time_ms",
        "examples_per_second",
        "latency",
        "fit_duration_s",
        "elapsed",
        "requests_qps",
        "wall_time_sec",
        "inference_ns",
    ],
)
def test_timing_names(name):
    assert reproducible.named_like_a_timing(name)


@pytest.mark.parametrize(
    "name",
    [
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "holdout_accuracy",
        "holdout_loss",
        "tflite_accuracy",
        "tflite_accuracy_drop",
        "tflite_bytes",
        "tflite_float32_bytes",
        "tflite_size_ratio",
        "tflite_max_abs_diff",
        "tflite_agreement",
        "learning_rate",
        "epochs_run",
        "parameters",
        "loss_min",
        "sensitivity",
    ],
)
def test_names_that_are_not_timings(name):
    assert not reproducible.named_like_a_timing(name)


def test_artifacts_are_compared_only_when_marked_reproducible():
    data = tflite_record()
    assert reproducible.artifact_hashes(data) == {"tflite[float32].sha256": TFLITE_SHA}
    data["artifacts"][1]["reproducible"] = False
    assert reproducible.artifact_hashes(data) == {}
