"""`tfrun-records rerun --verify` on a real `tfrun target=tflite` run: the TFLite step's latency and
throughput differ on every run, yet the rerun verifies (they are shown, not compared), while the
.tflite file's bytes are compared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import BIN, run_command

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_rerun_verify_of_a_tflite_run_shows_timings_and_compares_the_rest(tmp_path: Path):
    first = run_command([str(BIN / "tfrun"), "target=tflite", "train.epochs=2", "hydra.run.dir=runs/a"], tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    original = json.loads((tmp_path / "runs" / "a" / "record.json").read_text())
    assert "tflite_latency_p50_us" in original["metrics"]["final"]

    again = run_command([str(BIN / "tfrun-records"), "rerun", "runs/a", "--verify"], tmp_path)

    assert again.returncode == 0, again.stdout + again.stderr
    out = again.stdout
    assert "not compared (timings vary with machine load; original | rerun):" in out
    for name in ("tflite_latency_p50_us", "tflite_throughput_per_s", "saved_model_latency_p50_us"):
        assert f"  metrics.final.{name}: " in out
    assert "verified: identical metrics and weights, and identical bytes of reproducible artifacts" in out
    rerun = json.loads(next((tmp_path / "runs" / "a" / "reruns").glob("*/record.json")).read_text())
    tflite = [a for a in rerun["artifacts"] if a["kind"] == "tflite"]
    assert tflite[0]["sha256"] == next(a for a in original["artifacts"] if a["kind"] == "tflite")["sha256"]
