"""Quantization-aware training: fake-quantize the model's layers while it trains.

tensorflow-model-optimization works with tf-keras (TF_USE_LEGACY_KERAS=1,
set by the runner for the child). Its `quantize_model` refuses a model with
any layer its registry lacks, and ours start with a Rescaling layer, so the
supported layers (Dense, Conv2D, Flatten, pooling, ...) are annotated with
the default 8-bit scheme, Rescaling gets an output quantizer (in the int8
TFLite model its output is an int8 tensor too, so training sees the same
rounding), and any other layer stays float: the documented "quantize some
layers" path. int8 conversion then uses the ranges learnt in training.
"""

from __future__ import annotations

from typing import Any


class QuantizationAwareUnavailable(RuntimeError):
    """train.quantization_aware=true without tensorflow-model-optimization installed."""


def _output_quantize_config(qk: Any) -> Any:
    """A QuantizeConfig that fake-quantizes a weightless layer's output (8 bits, asymmetric, per tensor)."""

    class OutputQuantizeConfig(qk.QuantizeConfig):
        def get_weights_and_quantizers(self, layer: Any) -> list[Any]:
            return []

        def get_activations_and_quantizers(self, layer: Any) -> list[Any]:
            return []

        def set_quantize_weights(self, layer: Any, quantize_weights: list[Any]) -> None:
            pass

        def set_quantize_activations(self, layer: Any, quantize_activations: list[Any]) -> None:
            pass

        def get_output_quantizers(self, layer: Any) -> list[Any]:
            return [
                qk.quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)
            ]

        def get_config(self) -> dict[str, Any]:
            return {}

    return OutputQuantizeConfig


def quantize_aware(model: Any) -> tuple[Any, list[str]]:
    """The model wrapped for QAT (call inside the strategy's scope, before compile) and the layers quantized."""
    try:
        import tensorflow_model_optimization as tfmot
        from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
            default_8bit_quantize_registry,
        )
    except ImportError as exc:
        raise QuantizationAwareUnavailable(
            "train.quantization_aware=true needs tensorflow-model-optimization: install the tflite extra "
            "(pip install -c constraints.txt -e '.[tflite]'), or set train.quantization_aware=false"
        ) from exc
    import tf_keras as keras

    qk = tfmot.quantization.keras
    registry = default_8bit_quantize_registry.Default8BitQuantizeRegistry()
    quantized: list[str] = []

    output_config = _output_quantize_config(qk)

    def annotate(layer: Any) -> Any:
        if registry.supports(layer):
            quantized.append(layer.name)
            return qk.quantize_annotate_layer(layer)
        if isinstance(layer, keras.layers.Rescaling):
            quantized.append(layer.name)
            return qk.quantize_annotate_layer(layer, output_config())
        return layer.__class__.from_config(layer.get_config())

    annotated = keras.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())  # QAT starts from the same initial weights
    if not quantized:
        raise QuantizationAwareUnavailable(
            f"train.quantization_aware=true, but no layer of model {model.name!r} can be quantized by "
            "tensorflow-model-optimization; set train.quantization_aware=false"
        )
    with qk.quantize_scope({output_config.__name__: output_config}):
        wrapped = qk.quantize_apply(annotated)
    return wrapped, quantized
