"""Small real SavedModels for the TF Serving tests (built with TensorFlow, no training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def digits_model(path: Path, seed: int, class_id: bool = False) -> None:
    """Like tfrun's digits export: pixels float32 [-1, 8, 8] -> probabilities [-1, 10] (and class_id int64
    with class_id=True, as export.class_id_output=true exports). Different seeds give different weights,
    so versions are told apart by their outputs."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)

    class Digits(tf.Module):
        def __init__(self):
            super().__init__()
            self.w1 = tf.Variable(rng.normal(size=(64, 32)).astype("float32") * 0.3)
            self.w2 = tf.Variable(rng.normal(size=(32, 10)).astype("float32") * 0.3)

        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8], tf.float32, name="pixels")])
        def serve(self, pixels):
            h = tf.nn.relu(tf.reshape(pixels / 16.0, [-1, 64]) @ self.w1)
            p = tf.nn.softmax(h @ self.w2)
            return {"probabilities": p, "class_id": tf.argmax(p, axis=-1)} if class_id else {"probabilities": p}

    m = Digits()
    tf.saved_model.save(m, str(path), signatures={"serving_default": m.serve.get_concrete_function()})


def batch_model(path: Path) -> None:
    """x float32 [-1, 3] -> y = 2x, and `batch`: the size of the batch the model was called with (per row)."""
    import tensorflow as tf

    class Batch(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def serve(self, x):
            n = tf.shape(x)[0]
            return {"y": x * 2.0, "batch": tf.fill([n], tf.cast(n, tf.int64))}

    m = Batch()
    tf.saved_model.save(m, str(path), signatures={"serving_default": m.serve.get_concrete_function()})


def multi_input_model(path: Path) -> None:
    """a float32 [-1, 2], b int64 [-1], name string [-1] -> total float32 [-1], greeting string [-1]."""
    import tensorflow as tf

    class Multi(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 2], tf.float32, name="a"),
                tf.TensorSpec([None], tf.int64, name="b"),
                tf.TensorSpec([None], tf.string, name="name"),
            ]
        )
        def serve(self, a, b, name):
            return {
                "total": tf.reduce_sum(a, axis=1) + tf.cast(b, tf.float32),
                "greeting": tf.strings.join(["hello ", name]),
            }

    m = Multi()
    tf.saved_model.save(m, str(path), signatures={"serving_default": m.serve.get_concrete_function()})


def examples_model(path: Path) -> None:
    """A TF1-style SavedModel with classify, regress and predict signatures over tf.Example feature x."""
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        serialized = v1.placeholder(tf.string, [None], name="tf_example")
        features = v1.io.parse_example(serialized, {"x": v1.io.FixedLenFeature([1], tf.float32)})
        x = features["x"]
        positive = tf.sigmoid(x)
        scores = tf.concat([1.0 - positive, positive], axis=1)
        classes = tf.tile(tf.constant([["neg", "pos"]]), [tf.shape(x)[0], 1])
        regression = tf.reshape(2.0 * x + 1.0, [-1])
        raw = v1.placeholder(tf.float32, [None, 1], name="raw_x")
        with v1.Session(graph=graph) as session:
            builder = v1.saved_model.Builder(str(path))
            builder.add_meta_graph_and_variables(
                session,
                ["serve"],
                signature_def_map={
                    "classify_x": v1.saved_model.classification_signature_def(serialized, classes, scores),
                    "regress_x": v1.saved_model.regression_signature_def(serialized, tf.reshape(regression, [-1, 1])),
                    "serving_default": v1.saved_model.predict_signature_def({"x": raw}, {"doubled": raw * 2.0}),
                },
            )
            builder.save()
