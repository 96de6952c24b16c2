"""job=deploy's source step checks the SavedModel's serving signature against the data before any target runs
(tfrun.tasks.deploy_source): a real SavedModel, built untrained with tfrun's own export."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tfrun.tasks.export import save_serving_model
    from tfrun.tasks.model import build_mlp

    path = tmp_path_factory.mktemp("signature") / "0001"
    model = build_mlp(
        input_shape=(8, 8),
        input_dtype="float32",
        input_name="pixels",
        scale=16.0,
        n_classes=10,
        name="mlp",
        n_hidden=1,
        n_neurons=4,
        dropout=0.0,
    )
    save_serving_model(model, path, input_name="pixels", input_shape=(8, 8), input_dtype="float32")
    return path


def test_the_signature_matches_the_data_it_was_trained_on_or_says_what_differs(saved_model: Path):
    import tensorflow as tf

    from tfrun.tasks.deploy_source import SourceMismatch, _checked_signature

    loaded = tf.saved_model.load(str(saved_model))
    serve = _checked_signature(loaded, saved_model, SimpleNamespace(input_name="pixels", input_shape=(8, 8)))
    assert serve(tf.zeros([2, 8, 8]))["probabilities"].shape == (2, 10)
    with pytest.raises(SourceMismatch, match=r"takes \['pixels'\], not the data's input 'image'"):
        _checked_signature(loaded, saved_model, SimpleNamespace(input_name="image", input_shape=(8, 8)))
    with pytest.raises(SourceMismatch, match=r"of shape \[8, 8\], the data's rows are \[28, 28\]"):
        _checked_signature(loaded, saved_model, SimpleNamespace(input_name="pixels", input_shape=(28, 28)))
