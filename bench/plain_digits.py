"""The default tfrun job written by hand, as a baseline: same data, model, training and export.

Usage: python bench/plain_digits.py OUT_DIR
"""

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

out = sys.argv[1]
keras.utils.set_random_seed(42)
tf.config.experimental.enable_op_determinism()

digits = load_digits()
x, y = digits.images.astype("float32"), digits.target.astype("int64")
x, x_test, y, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=42)
x_train, x_valid, y_train, y_valid = train_test_split(x, y, test_size=0.1, stratify=y, random_state=42)


def dataset(x, y, shuffle):
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=42)
    return ds.batch(32).prefetch(tf.data.AUTOTUNE)


inputs = keras.Input(shape=(8, 8), name="pixels")
h = keras.layers.Flatten()(keras.layers.Rescaling(1 / 16)(inputs))
for _ in range(2):
    h = keras.layers.Dense(64, activation="relu")(h)
model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(h))
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(
    dataset(x_train, y_train, True),
    validation_data=dataset(x_valid, y_valid, False),
    epochs=20,
    verbose=2,
    callbacks=[keras.callbacks.TensorBoard(os.path.join(out, "tensorboard"))],
)
loss, accuracy = model.evaluate(dataset(x_test, y_test, False), verbose=0)
print(f"holdout accuracy {accuracy:.4f}")


@tf.function(input_signature=[tf.TensorSpec([None, 8, 8], tf.float32, name="pixels")])
def serve(pixels):
    return {"probabilities": model(pixels, training=False)}


tf.saved_model.save(model, os.path.join(out, "model", "1"), signatures={"serving_default": serve})
