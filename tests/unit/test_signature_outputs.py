"""The export's serving signature: probabilities alone by default, class_id opt-in; parity reads both forms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.helpers import tfrun
from tfrun.runner.config.validate import validate
from tfrun.tasks.export import output_names
from tfrun.tasks.parity import compare
from tfrun.tasks.tfserving.steps import served_outputs

P = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], dtype=np.float32)


def test_the_default_is_probabilities_alone(compose_cfg, tmp_path: Path):
    assert validate(compose_cfg()).export.class_id_output is False
    assert validate(compose_cfg("export.class_id_output=true")).export.class_id_output is True
    assert output_names(False) == ["probabilities"] and output_names(True) == ["probabilities", "class_id"]
    cfg = yaml.safe_load(tfrun("--cfg", "job", cwd=tmp_path, timeout=60).stdout)
    assert cfg["export"] == {"class_id_output": False}


def test_a_bad_value_is_a_config_error(tmp_path: Path):
    proc = tfrun("export.class_id_output=maybe", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "export.class_id_output" in proc.stderr, proc.stderr


@pytest.mark.parametrize("answer", [{"output": P}, {"probabilities": P}, {"probabilities": P, "class_id": [1, 0, 1]}])
def test_served_outputs_reads_either_signature(answer):
    probabilities, classes = served_outputs(answer)
    assert np.array_equal(probabilities, P)
    assert (classes is None) == ("class_id" not in answer)


def test_an_answer_without_probabilities_is_named():
    with pytest.raises(KeyError, match="scores"):
        served_outputs({"scores": P})


def test_parity_checks_class_ids_only_when_served():
    one = compare(P, None, P, P, 0.0, 1e-6)
    assert one["passed"] and one["class_ids_consistent"] is None
    two = compare(P, np.array([1, 0, 1]), P, P, 0.0, 1e-6)
    assert two["passed"] and two["class_ids_consistent"] is True
    wrong = compare(P, np.array([0, 0, 1]), P, P, 0.0, 1e-6)
    assert not wrong["passed"] and wrong["class_ids_consistent"] is False
