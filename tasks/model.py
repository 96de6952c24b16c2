"""Models (tf-keras), built inside the strategy's scope.

Preprocessing lives in the model (cast + rescale), so the exported
SavedModel takes raw pixels with the data's own name, dtype and shape.
"""

from __future__ import annotations

from typing import Any, Sequence


def _inputs(keras: Any, *, input_shape: Sequence[int], input_dtype: str, input_name: str, scale: float):
    inputs = keras.Input(shape=tuple(input_shape), dtype=input_dtype, name=input_name)
    x = keras.layers.Rescaling(1.0 / scale, name="rescale")(inputs)  # casts raw (e.g. uint8) pixels to float
    return inputs, x


def _outputs(keras: Any, x: Any, n_classes: int) -> Any:
    # float32 softmax even under mixed precision, for numerically stable probabilities
    return keras.layers.Dense(n_classes, activation="softmax", dtype="float32", name="probabilities")(x)


def build_mlp(
    *,
    input_shape: Sequence[int],
    input_dtype: str,
    input_name: str,
    scale: float,
    n_classes: int,
    name: str,
    n_hidden: int,
    n_neurons: int,
    dropout: float,
) -> Any:
    """The book's MLP: Flatten -> n_hidden x Dense(n_neurons, relu) -> softmax."""
    import tf_keras as keras

    inputs, x = _inputs(keras, input_shape=input_shape, input_dtype=input_dtype, input_name=input_name, scale=scale)
    x = keras.layers.Flatten()(x)
    for i in range(n_hidden):
        x = keras.layers.Dense(n_neurons, activation="relu", name=f"hidden_{i + 1}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, _outputs(keras, x, n_classes), name=name)


def build_cnn(
    *,
    input_shape: Sequence[int],
    input_dtype: str,
    input_name: str,
    scale: float,
    n_classes: int,
    name: str,
    filters: Sequence[int],
    kernel_size: int,
    dense_units: int,
    dropout: float,
) -> Any:
    """Conv2D(relu, same) + MaxPool per entry of `filters`, then Dense -> softmax."""
    import tf_keras as keras

    inputs, x = _inputs(keras, input_shape=input_shape, input_dtype=input_dtype, input_name=input_name, scale=scale)
    if len(input_shape) == 2:
        x = keras.layers.Reshape((*input_shape, 1))(x)
    for i, n in enumerate(filters):
        x = keras.layers.Conv2D(n, kernel_size, padding="same", activation="relu", name=f"conv_{i + 1}")(x)
        if x.shape[1] >= 2 and x.shape[2] >= 2:
            x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="dense")(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, _outputs(keras, x, n_classes), name=name)


def step(cfg: Any, ctx: Any) -> dict[str, Any]:
    from tfrun.tasks.build import instantiate
    from tfrun.tasks.user_calls import build_model, is_user_node

    data = ctx.need("data")
    with ctx.need("strategy").scope():
        if is_user_node(cfg.model):  # the user's builder: called with the input spec it names, result checked
            model = build_model(cfg.model, data)
        else:
            model = instantiate(
                cfg.model,
                input_shape=list(data.input_shape),
                input_dtype=data.input_dtype,
                input_name=data.input_name,
                scale=data.scale,
                n_classes=data.n_classes,
            )
    ctx.state["model"] = model
    params = int(model.count_params())
    return {
        "summary": f"{cfg.model.name}: {params:,} parameters",
        "parameters": params,
        "layers": [layer.name for layer in model.layers],
    }
