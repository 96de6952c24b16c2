"""`tfrun-records rerun --verify` against real tfrun runs: a deterministic run reproduces bit for bit,
and a record whose metric no longer matches is caught."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.helpers import run_command

BIN = Path(sys.executable).parent
TFRUN, RECORDS = str(BIN / "tfrun"), str(BIN / "tfrun-records")

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_rerun_verify_reproduces_a_deterministic_run_and_catches_a_changed_metric(tmp_path):
    first = run_command(
        [TFRUN, "train.epochs=3", "train.deterministic=true", f"hydra.run.dir={tmp_path}/runs/a"], tmp_path
    )
    assert first.returncode == 0, first.stdout + first.stderr
    record_path = tmp_path / "runs" / "a" / "record.json"
    original = json.loads(record_path.read_text())
    assert original["status"] == "succeeded" and original["weights_sha256"]

    same = run_command([RECORDS, "rerun", "runs/a", "--verify"], tmp_path)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "verified: identical metrics and weights" in same.stdout
    assert "warning" not in same.stdout  # same config hash
    reruns = list((tmp_path / "runs" / "a" / "reruns").glob("*/record.json"))
    assert len(reruns) == 1
    rerun = json.loads(reruns[0].read_text())
    assert rerun["config_sha256"] == original["config_sha256"]
    assert rerun["command"]["overrides"] == original["command"]["overrides"]

    original["metrics"]["final"]["holdout_accuracy"] += 0.01
    record_path.write_text(json.dumps(original, indent=2))
    changed = run_command([RECORDS, "rerun", "runs/a", "--verify"], tmp_path)
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "metrics.final.holdout_accuracy" in changed.stdout
    assert "weights_sha256" not in changed.stdout  # only the edited value differs
    assert "verified" not in changed.stdout
