"""REST and gRPC clients for TF Serving (the embedded server, tensorflow_model_server, the Docker image).

    rest = RestClient("http://127.0.0.1:8501")
    rest.predict("digits_mlp", instances=x)   # -> {"output": array}: REST leaves a lone output unnamed;
                                              #    {"probabilities": ..., "class_id": ...} with export.class_id_output=true
    grpc_client = GrpcClient("127.0.0.1:8500")
    outputs, version = grpc_client.predict("digits_mlp", {"pixels": x})
    grpc_client.wait_available("digits_mlp", version=3, timeout=60)

Both keep one connection open, take a timeout per call and retry only what is safe to retry:
gRPC UNAVAILABLE, and on REST a refused/reset connection or a 503. Tensors go out as
tensor_content (the array's bytes) and come back through numpy, not tf.make_tensor_proto /
tf.make_ndarray (see BENCHMARKS.md for the difference). The REST client needs only the
standard library and numpy; the gRPC client imports TensorFlow's protos (and so TensorFlow).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence
from urllib.parse import quote, urlsplit

import numpy as np

RETRY_BACKOFF_S = 0.05


class ServingRequestError(Exception):
    """A request TF Serving answered with an error (REST status + {"error"}, or a gRPC status)."""

    def __init__(self, code: str, message: str, http_status: Optional[int] = None):
        super().__init__(f"{code}: {message}")
        self.code = code  # gRPC status name, e.g. INVALID_ARGUMENT (REST: derived from the HTTP status)
        self.message = message
        self.http_status = http_status


_HTTP_TO_CODE = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def model_path(model: str, version: Optional[int] = None, label: Optional[str] = None) -> str:
    path = f"/v1/models/{quote(model, safe='')}"
    if version is not None:
        path += f"/versions/{int(version)}"
    elif label:
        path += f"/labels/{quote(label, safe='')}"
    return path


# ------------------------------------------------------------------------------------------- REST
class RestClient:
    """TF Serving's REST API over one keep-alive connection per thread (http.client, Nagle off)."""

    def __init__(self, url: str = "http://127.0.0.1:8501", *, timeout: float = 30.0, retries: int = 3):
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http":
            raise ValueError(f"only http:// URLs are supported, got {url!r}")
        self.url = f"http://{parts.netloc}"
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 8501
        self.timeout = timeout
        self.retries = retries
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def request(self, method: str, path: str, body: Optional[bytes] = None) -> tuple[int, bytes]:
        """(HTTP status, body); retries refused/reset connections and 503 answers."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in range(self.retries + 1):
            try:
                conn = self._connection()
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.close()
                if response.status == 503 and attempt < self.retries:
                    time.sleep(RETRY_BACKOFF_S * 2**attempt)
                    continue
                return response.status, data
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine, BrokenPipeError) as err:
                self.close()
                if attempt >= self.retries:
                    raise ServingRequestError("UNAVAILABLE", f"{self.url}{path}: {err}") from None
                time.sleep(RETRY_BACKOFF_S * 2**attempt)
            except socket.timeout:
                self.close()
                raise ServingRequestError(
                    "DEADLINE_EXCEEDED", f"{self.url}{path}: no answer in {self.timeout} s"
                ) from None
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, payload: Any = None) -> Any:
        body = None if payload is None else (payload if isinstance(payload, bytes) else json_text(payload).encode())
        status, data = self.request(method, path, body)
        try:
            doc = json.loads(data) if data else {}
        except ValueError:
            doc = {"error": data.decode(errors="replace")}
        if status != 200:
            message = doc.get("error", "") if isinstance(doc, dict) else str(doc)
            raise ServingRequestError(_HTTP_TO_CODE.get(status, "UNKNOWN"), message, status)
        return doc

    # --- the API -----------------------------------------------------------------------------
    def predict_raw(
        self, model: str, payload: Mapping[str, Any], *, version: Optional[int] = None, label: Optional[str] = None
    ) -> Any:
        return self.json("POST", model_path(model, version, label) + ":predict", dict(payload))

    def predict(
        self,
        model: str,
        instances: Any = None,
        *,
        inputs: Any = None,
        version: Optional[int] = None,
        label: Optional[str] = None,
        signature: Optional[str] = None,
    ) -> dict[str, np.ndarray]:
        """Row (`instances`) or columnar (`inputs`) request; answers as {output name: array}."""
        if (instances is None) == (inputs is None):
            raise ValueError("give exactly one of instances= (row format) or inputs= (columnar)")
        payload: dict[str, Any] = {}
        if signature:
            payload["signature_name"] = signature
        if instances is not None:
            payload["instances"] = instances
        else:
            payload["inputs"] = inputs
        doc = self.predict_raw(model, payload, version=version, label=label)
        return decode_rest(doc)

    def status(self, model: str, version: Optional[int] = None) -> list[dict[str, Any]]:
        doc = self.json("GET", model_path(model, version))
        return [
            {
                "version": int(s["version"]),
                "state": s["state"],
                "error_code": s["status"]["error_code"],
                "error_message": s["status"]["error_message"],
            }
            for s in doc.get("model_version_status", [])
        ]

    def metadata(self, model: str, version: Optional[int] = None) -> dict[str, Any]:
        return self.json("GET", model_path(model, version) + "/metadata")

    def wait_available(
        self,
        model: str,
        version: Optional[int] = None,
        *,
        timeout: float = 60.0,
        alive: Optional[Callable[[], bool]] = None,
        interval: float = 0.1,
    ) -> list[dict[str, Any]]:
        return _wait_available(lambda: self.status(model, version), model, version, timeout, alive, interval)


def json_text(value: Any) -> str:
    """JSON for a request; numpy arrays are written by jsonio.tensor_json (several times faster than
    json.dumps(array.tolist()), same values)."""
    from tfrun.tasks.tfserving.jsonio import tensor_json

    if isinstance(value, np.ndarray):
        return tensor_json(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (np.ndarray, Mapping)):
        return "[" + ", ".join(json_text(v) for v in value) + "]"
    return json.dumps(value.item() if isinstance(value, np.generic) else value)


def decode_rest(doc: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """{"predictions": rows} or {"outputs": ...} -> {output name: numpy array} ("output" if unnamed)."""
    if "predictions" in doc:
        rows = doc["predictions"]
        if rows and isinstance(rows[0], dict) and not (len(rows[0]) == 1 and "b64" in rows[0]):
            return {name: np.asarray([r[name] for r in rows]) for name in rows[0]}
        return {"output": np.asarray(rows)}
    outputs = doc.get("outputs")
    if isinstance(outputs, dict) and not (len(outputs) == 1 and "b64" in outputs):
        return {k: np.asarray(v) for k, v in outputs.items()}
    return {"output": np.asarray(outputs)}


# ------------------------------------------------------------------------------------------- gRPC
class GrpcClient:
    """PredictionService and ModelService over one channel."""

    def __init__(
        self,
        target: str = "127.0.0.1:8500",
        *,
        timeout: float = 30.0,
        retries: int = 3,
        max_message_bytes: int = 256 << 20,
    ):
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        self.target = target
        self.timeout = timeout
        self.retries = retries
        self._grpc = grpc
        self.channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000),
            ],
        )
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def call(self, method: Callable, request: Any, timeout: Optional[float] = None) -> Any:
        """One RPC; UNAVAILABLE is retried with backoff, every other error raised as ServingRequestError."""
        grpc = self._grpc
        for attempt in range(self.retries + 1):
            try:
                return method(request, timeout=timeout or self.timeout)
            except grpc.RpcError as err:
                code = err.code()
                if code == grpc.StatusCode.UNAVAILABLE and attempt < self.retries:
                    time.sleep(RETRY_BACKOFF_S * 2**attempt)
                    continue
                raise ServingRequestError(code.name, err.details() or "") from None
        raise AssertionError("unreachable")

    @staticmethod
    def model_spec(
        spec: Any, model: str, version: Optional[int], label: Optional[str], signature: Optional[str] = None
    ) -> None:
        spec.name = model
        if version is not None:
            spec.version.value = int(version)
        elif label:
            spec.version_label = label
        if signature:
            spec.signature_name = signature

    def predict_request(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        *,
        version: Optional[int] = None,
        label: Optional[str] = None,
        signature: Optional[str] = "serving_default",
        output_filter: Sequence[str] = (),
    ) -> Any:
        from tensorflow_serving.apis import predict_pb2

        from tfrun.tasks.tfserving.tensors import as_tensor_content

        request = predict_pb2.PredictRequest()
        self.model_spec(request.model_spec, model, version, label, signature)
        for name, arr in inputs.items():
            request.inputs[name].CopyFrom(as_tensor_content(np.asarray(arr)))
        request.output_filter.extend(output_filter)
        return request

    def predict(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        *,
        version: Optional[int] = None,
        label: Optional[str] = None,
        signature: Optional[str] = "serving_default",
        output_filter: Sequence[str] = (),
        timeout: Optional[float] = None,
    ) -> tuple[dict[str, np.ndarray], int]:
        """(outputs as numpy arrays, the version that answered)."""
        from tfrun.tasks.tfserving.tensors import to_ndarray

        request = self.predict_request(
            model, inputs, version=version, label=label, signature=signature, output_filter=output_filter
        )
        response = self.call(self.prediction.Predict, request, timeout)
        return {k: to_ndarray(v) for k, v in response.outputs.items()}, response.model_spec.version.value

    def status(
        self, model: str, version: Optional[int] = None, timeout: Optional[float] = None
    ) -> list[dict[str, Any]]:
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self.model_spec(request.model_spec, model, version, None)
        response = self.call(self.models.GetModelStatus, request, timeout)
        states = get_model_status_pb2.ModelVersionStatus.State
        from tensorflow.core.protobuf import error_codes_pb2

        return [
            {
                "version": s.version,
                "state": states.Name(s.state),
                "error_code": error_codes_pb2.Code.Name(s.status.error_code),
                "error_message": s.status.error_message,
            }
            for s in response.model_version_status
        ]

    def metadata(self, model: str, version: Optional[int] = None) -> Any:
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest()
        self.model_spec(request.model_spec, model, version, None)
        request.metadata_field.append("signature_def")
        return self.call(self.prediction.GetModelMetadata, request)

    def reload_config(self, config: Any, timeout: float = 300.0) -> Any:
        """HandleReloadConfigRequest with a ModelServerConfig proto (see tfrun.tasks.tfserving.config)."""
        from tensorflow_serving.apis import model_management_pb2

        request = model_management_pb2.ReloadConfigRequest()
        request.config.CopyFrom(config)
        return self.call(self.models.HandleReloadConfigRequest, request, timeout)

    def wait_available(
        self,
        model: str,
        version: Optional[int] = None,
        *,
        timeout: float = 60.0,
        alive: Optional[Callable[[], bool]] = None,
        interval: float = 0.1,
    ) -> list[dict[str, Any]]:
        """Poll ModelService until the version (or any version) is AVAILABLE; raise if it ends in error."""
        return _wait_available(
            lambda: self.status(model, version, timeout=min(5.0, timeout)), model, version, timeout, alive, interval
        )


class NotAvailable(Exception):
    """The version did not become AVAILABLE (load error, server gone, or timeout)."""


def _wait_available(
    get: Callable[[], list[dict[str, Any]]],
    model: str,
    version: Optional[int],
    timeout: float,
    alive: Optional[Callable[[], bool]],
    interval: float,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        if alive is not None and not alive():
            raise NotAvailable(f"the server exited before {model} version {version} became AVAILABLE ({last})")
        try:
            states = get()
            wanted = [s for s in states if version is None or s["version"] == version]
            if any(s["state"] == "AVAILABLE" for s in wanted):
                return states
            failed = [s for s in wanted if s["state"] == "END" and s["error_code"] != "OK"]
            if failed and version is not None:
                s = failed[0]
                raise NotAvailable(f"{model} version {version} failed to load: {s['error_code']}: {s['error_message']}")
            last = ", ".join(f"version {s['version']} {s['state']}" for s in states) or "no versions"
        except ServingRequestError as err:
            last = f"{err.code}: {err.message}"
        if time.monotonic() > deadline:
            raise NotAvailable(f"{model} version {version} not AVAILABLE after {timeout:g} s (last: {last})")
        time.sleep(interval)


def percentiles(samples_s: Iterable[float]) -> dict[str, float]:
    """p50 / p90 / p99 / mean in milliseconds."""
    arr = np.asarray(list(samples_s), dtype=np.float64) * 1000.0
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p90_ms": float(np.percentile(arr, 90)),
        "p99_ms": float(np.percentile(arr, 99)),
        "mean_ms": float(arr.mean()),
        "n": int(arr.size),
    }


def timed(fn: Callable[[], Any], n: int, warm: int = 5) -> dict[str, float]:
    """Call fn `warm` times untimed, then n times timed; percentiles of the timed calls."""
    for _ in range(warm):
        fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return percentiles(samples)
