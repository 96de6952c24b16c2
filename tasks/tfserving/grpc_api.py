"""gRPC PredictionService and ModelService, answering as TF Serving answers.

Errors are gRPC status codes with TF Serving's messages. Predict outputs are typed fields
(`float_val`, ...), as TF Serving writes them; inputs may use tensor_content or typed fields.
MultiInference is not implemented (UNIMPLEMENTED).

Handlers block (grpc.server runs each on a pool thread), except BatchedPredictionService's
Predict: with batching on, it is an asyncio coroutine for grpc.aio that waits for its batch
as a future, so 32 callers sharing one model call cost one wake-up, not 32 threads.
"""

from __future__ import annotations

import time
import traceback
from typing import Any, Awaitable, Callable, Optional

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tfrun.tasks.tfserving import metrics, tensors
from tfrun.tasks.tfserving.config import configs_from_proto
from tfrun.tasks.tfserving.manager import ModelManager
from tfrun.tasks.tfserving.servable import Servable, serialized_examples
from tfrun.tasks.tfserving.status import ServingError, invalid

SIGNATURE_DEF_FIELD = "signature_def"
MEASURED = ("Predict", "Classify", "Regress")  # the RPCs TF Serving counts and times (request_count, request_latency)


LABEL_HEADER = "x-tfrun-version-label"  # set by a balancer's split (tasks/tfserving/balancer.py)


def header_label(context: Any) -> Optional[str]:
    """The version label a balancer's split chose for this call, if any (gRPC metadata)."""
    for key, value in context.invocation_metadata() or ():
        if key == LABEL_HEADER and value:
            return value
    return None


def resolve(manager: ModelManager, model_spec: Any, context: Any = None) -> Servable:
    """A version, a label, or (naming neither) the label a balancer's split put in the call's metadata, else the
    latest version."""
    which = model_spec.WhichOneof("version_choice")
    if which == "version":
        return manager.resolve(model_spec.name, version=model_spec.version.value)
    if which == "version_label":
        return manager.resolve(model_spec.name, label=model_spec.version_label)
    label = header_label(context) if context is not None else None
    if label:
        return manager.resolve(model_spec.name, label=label)
    return manager.resolve(model_spec.name)


def status_response(manager: ModelManager, name: str, version: Optional[int]) -> Any:
    response = get_model_status_pb2.GetModelStatusResponse()
    for v, state, error in manager.status(name, version):
        entry = response.model_version_status.add(
            version=v, state=get_model_status_pb2.ModelVersionStatus.State.Value(state)
        )
        entry.status.error_code = int(error.code) if error else 0
        entry.status.error_message = error.message if error else ""
    return response


def stamp_model_spec(response: Any, servable: Any, signature: str | None = None) -> None:
    """The model_spec every TF Serving response echoes: name, the version that answered, signature."""
    response.model_spec.name = servable.model_name
    response.model_spec.version.value = servable.version
    if signature is not None:
        response.model_spec.signature_name = signature


def predict_response(servable: Servable, signature: str, outputs: dict[str, np.ndarray]) -> Any:
    response = predict_pb2.PredictResponse()
    stamp_model_spec(response, servable, signature)
    for alias, arr in outputs.items():
        tensors.as_proto_field(arr, into=response.outputs[alias])
    return response


def metadata_response(manager: ModelManager, model_spec: Any, fields: list[str]) -> Any:
    if not fields:
        raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
    for f in fields:
        if f != SIGNATURE_DEF_FIELD:
            raise invalid(f"Metadata field {f} is not supported")
    servable = resolve(manager, model_spec)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    stamp_model_spec(response, servable)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, sig in servable.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(sig)
    response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
    return response


def status_json(response: Any) -> str:
    return json_format.MessageToJson(response, always_print_fields_with_no_presence=True, indent=1)


def metadata_json(response: Any) -> str:
    """TF Serving's hand-built metadata JSON: model_spec and the unpacked SignatureDefMap."""
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF_FIELD].Unpack(signature_map)
    options = dict(preserving_proto_field_name=True, always_print_fields_with_no_presence=True, indent=1)
    spec = json_format.MessageToJson(response.model_spec, **options)
    signatures = json_format.MessageToJson(signature_map, **options)
    return '{\n"model_spec":' + spec + ',\n"metadata": {"signature_def": ' + signatures + "}\n}\n"


def _status(err: Exception) -> Optional[tuple[grpc.StatusCode, str]]:
    """The status an RPC error becomes; None for gRPC's own aborts, which pass through."""
    if isinstance(err, ServingError):
        return grpc.StatusCode[err.code.name], err.message
    if isinstance(err, RecursionError):
        return grpc.StatusCode.INVALID_ARGUMENT, "Request nested too deeply"
    if isinstance(err, MemoryError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, "Out of memory while answering the request"
    if isinstance(err, (grpc.RpcError, grpc.aio.AbortError)) or type(err).__name__ == "_AbortError":
        return None
    traceback.print_exc()  # a bug: INTERNAL for the client, the traceback for the log
    return grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}"


def _record(api: str, request: Any, started: float, err: Optional[BaseException]) -> None:
    """Predict/Classify/Regress into TF Serving's request metrics (entrypoint GRPC)."""
    if api in MEASURED:
        status = "OK" if err is None else metrics.status_name(err)
        metrics.REGISTRY.request(request.model_spec.name, api, "GRPC", status, (time.perf_counter() - started) * 1e6)


def _guard(method: Callable) -> Callable:
    """Every RPC: ServingError -> its status; anything else -> INTERNAL. The server never goes down."""

    def wrapper(self, request, context):
        started = time.perf_counter()
        try:
            response = method(self, request, context)
        except Exception as err:  # noqa: BLE001 - every error becomes a status
            _record(method.__name__, request, started, err)
            status = _status(err)
            if status is None:
                raise
            context.abort(*status)
        _record(method.__name__, request, started, None)
        return response

    wrapper.__name__ = method.__name__
    return wrapper


def _guard_async(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """_guard for a grpc.aio coroutine handler."""

    async def wrapper(self, request, context):
        started = time.perf_counter()
        try:
            response = await method(self, request, context)
        except Exception as err:  # noqa: BLE001 - every error becomes a status
            _record(method.__name__, request, started, err)
            status = _status(err)
            if status is None:
                raise
            await context.abort(*status)
        _record(method.__name__, request, started, None)
        return response

    wrapper.__name__ = method.__name__
    return wrapper


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager: ModelManager, max_elements: int):
        self.manager = manager
        self.max_elements = max_elements

    @_guard
    def Predict(self, request, context):
        servable, inputs = self._request(request, context)
        signature, outputs = servable.predict(request.model_spec.signature_name, inputs, list(request.output_filter))
        return predict_response(servable, signature, outputs)

    def _request(self, request: Any, context: Any = None) -> tuple[Servable, dict[str, np.ndarray]]:
        servable = resolve(self.manager, request.model_spec, context)
        return servable, {k: tensors.to_ndarray(v, max_elements=self.max_elements) for k, v in request.inputs.items()}

    @_guard
    def GetModelMetadata(self, request, context):
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        return metadata_response(self.manager, request.model_spec, list(request.metadata_field))

    @_guard
    def Classify(self, request, context):
        servable = resolve(self.manager, request.model_spec, context)
        examples = serialized_examples(request.input)
        metrics.REGISTRY.examples(request.model_spec.name, len(examples))
        signature, results = servable.classify(request.model_spec.signature_name, examples)
        response = classification_pb2.ClassificationResponse()
        stamp_model_spec(response, servable, signature)
        for row in results:
            classifications = response.result.classifications.add()
            for label, score in row:
                classifications.classes.add(label=label, score=score)
        return response

    @_guard
    def Regress(self, request, context):
        servable = resolve(self.manager, request.model_spec, context)
        examples = serialized_examples(request.input)
        metrics.REGISTRY.examples(request.model_spec.name, len(examples))
        signature, values = servable.regress(request.model_spec.signature_name, examples)
        response = regression_pb2.RegressionResponse()
        stamp_model_spec(response, servable, signature)
        for v in values:
            response.result.regressions.add(value=v)
        return response


class BatchedPredictionService(PredictionService):
    """PredictionService for grpc.aio when batching is on: Predict waits for its batch on the event
    loop; the other methods stay blocking, and grpc.aio runs them on its migration thread pool."""

    @_guard_async
    async def Predict(self, request, context):
        servable, inputs = self._request(request, context)
        signature, outputs = await servable.predict_async(
            request.model_spec.signature_name, inputs, list(request.output_filter)
        )
        return predict_response(servable, signature, outputs)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: ModelManager, reload_wait_s: float = 300.0):
        self.manager = manager
        self.reload_wait_s = reload_wait_s

    @_guard
    def GetModelStatus(self, request, context):
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        spec = request.model_spec
        version = spec.version.value if spec.WhichOneof("version_choice") == "version" else None
        return status_response(self.manager, spec.name, version)

    @_guard
    def HandleReloadConfigRequest(self, request, context):
        configs = configs_from_proto(request.config)
        self.manager.set_configs(configs, wait_s=self.reload_wait_s)
        response = model_management_pb2.ReloadConfigResponse()
        response.status.error_code = 0
        return response


def add_services(server: Any, manager: ModelManager, *, max_elements: int, batched: bool) -> None:
    """Both services on `server`: a grpc.server, or a grpc.aio server when `batched`."""
    prediction = (BatchedPredictionService if batched else PredictionService)(manager, max_elements)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(prediction, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager), server)
