"""A shipped preset through the real `tfrun`: `experiment=digits_tflite_int8` trains, exports and converts
to a full-integer TFLite file, and the record holds what the preset chose and the override that chose it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import read_record, tfrun

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_the_int8_preset_trains_and_converts(tmp_path: Path):
    proc = tfrun("experiment=digits_tflite_int8", "train.epochs=2", "hydra.run.dir=runs/p", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = read_record(tmp_path / "runs/p")
    assert record["status"] == "succeeded"
    assert record["command"]["overrides"] == ["experiment=digits_tflite_int8", "train.epochs=2"]
    assert record["config"]["train"]["epochs"] == 2  # the command line over the preset's and the group's values
    assert record["config"]["target"]["quantization"] == "int8" and record["config"]["target"]["int8_io"] == "int8"
    assert [s["name"] for s in record["steps"]][-3:] == ["tflite_convert", "tflite_evaluate", "tflite_gate"]
    tflite = next(a for a in record["artifacts"] if a["kind"] == "tflite")
    assert tflite["path"] == "models/digits_mlp/0001.int8.tflite" and (tmp_path / tflite["path"]).is_file()
    assert tflite["quantization"] == "int8" and tflite["input_dtype"] == "int8" and tflite["accepted"] is True
    assert "[tfrun] tflite: models/digits_mlp/0001.int8.tflite" in proc.stdout
