"""TF Serving's REST API on http.server: routes, payloads, status codes, `{"error": ...}`.

Routes (model_servers/http_rest_api_util.cc, case-insensitive):
    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:(predict|classify|regress)
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}][/metadata]
Anything else under /v1/ is `400 Malformed request`; outside /v1/ it is 404.

Keep-alive HTTP/1.1 with Nagle's algorithm off and each answer written in one send (with
Nagle on, keep-alive calls stall ~40 ms on delayed ACKs). Bodies over `max_request_bytes`
are refused before they are read (RESOURCE_EXHAUSTED -> 429) and the connection is closed.
Importing this module does not import TensorFlow (the Vertex container mode listens before it loads).
Every predict/classify/regress is counted and timed (tfrun.tasks.tfserving.metrics, entrypoint REST); with
`metrics_path` (--monitoring_config_file) a GET there answers the Prometheus page.
"""

from __future__ import annotations

import re
import threading
import time
import traceback
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Callable, Optional
from urllib.parse import unquote, urlsplit

from tfrun.tasks.tfserving import jsonio, metrics
from tfrun.tasks.tfserving.status import Code, ServingError, http_status, invalid

if TYPE_CHECKING:
    from tfrun.tasks.tfserving.manager import ModelManager

PREDICT_RE = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.I
)
STATUS_RE = re.compile(r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.I)
API_RE = re.compile(r"/v1/.*", re.I | re.S)
REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    429: "Too Many Requests",
    499: "Client Closed Request",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def answered(call: Callable[[], str]) -> tuple[int, str]:
    """(HTTP status, JSON body) of a call: its answer, or TF Serving's error JSON with the mapped status."""
    try:
        return 200, call()
    except ServingError as err:
        return http_status(err.code), jsonio.error_body(err.message)
    except RecursionError:
        return 400, jsonio.error_body("JSON Parse error: Nesting too deep")
    except MemoryError:
        return 429, jsonio.error_body("Out of memory while answering the request")
    except Exception as err:  # noqa: BLE001 - a bug answers 500, the server stays up
        traceback.print_exc()
        return 500, jsonio.error_body(f"{type(err).__name__}: {err}")


class RestApi:
    """Path + body -> (HTTP status, JSON text). No sockets here, so it is easy to reason about."""

    def __init__(self, manager: ModelManager):
        self.manager = manager

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, str]:
        return answered(lambda: self._dispatch(method, path, body))

    def _dispatch(self, method: str, path: str, body: bytes) -> str:
        if method == "POST":
            m = PREDICT_RE.fullmatch(path)
            if m:
                return self._measured(m, body)
        elif method == "GET":
            m = STATUS_RE.fullmatch(path)
            if m:
                name, version, label = self._model_info(m.group(1), m.group(2), m.group(3))
                if not name:
                    raise invalid("Missing model name in request.")
                if m.group(4):
                    return self._metadata(name, version, label)
                return self._status(name, version)
        raise invalid(f"Malformed request: {method} {path}")

    def _measured(self, m: re.Match, body: bytes) -> str:
        """A predict/classify/regress call, counted by status and timed as TF Serving's metrics are."""
        started = time.perf_counter()
        action = m.group(4).lower()
        status = "OK"
        try:
            name, version, label = self._model_info(m.group(1), m.group(2), m.group(3))
            if action == "predict":
                return self._predict(name, version, label, body)
            return self._classify_regress(action, name, version, label, body)
        except BaseException as err:
            status = metrics.status_name(err)
            raise
        finally:
            metrics.REGISTRY.request(
                unquote(m.group(1)), action.capitalize(), "REST", status, (time.perf_counter() - started) * 1e6
            )

    @staticmethod
    def _model_info(name: Optional[str], version: Optional[str], label: Optional[str]):
        number = None
        if version:
            try:
                number = int(version)
                if number >= 1 << 63:
                    raise ValueError
            except ValueError:
                raise invalid(f"Failed to convert version: {version} to numeric.") from None
        return unquote(name or ""), number, unquote(label) if label else None

    def _predict(self, name: str, version: Optional[int], label: Optional[str], body: bytes) -> str:
        doc = jsonio.parse_document(body)
        signature = jsonio.signature_name(doc)
        servable = self.manager.resolve(name, version, label)
        infos = servable.input_infos(signature)
        has_bools = b"true" in body or b"false" in body
        inputs, fmt = jsonio.predict_inputs(doc, infos, has_bools=has_bools)
        _, outputs = servable.predict(signature, inputs)
        return jsonio.predict_response(outputs, fmt)

    def _classify_regress(
        self, action: str, name: str, version: Optional[int], label: Optional[str], body: bytes
    ) -> str:
        from tfrun.tasks.tfserving.servable import examples_from_json

        doc = jsonio.parse_document(body)
        signature = jsonio.signature_name(doc)
        context, examples = jsonio.example_dicts(doc, action)
        servable = self.manager.resolve(name, version, label)
        serialized = examples_from_json(context, examples)
        metrics.REGISTRY.examples(servable.model_name, len(serialized))
        if action == "classify":
            _, results = servable.classify(signature, serialized)
            return jsonio.classification_response(results)
        _, values = servable.regress(signature, serialized)
        return jsonio.regression_response(values)

    def _status(self, name: str, version: Optional[int]) -> str:
        from tfrun.tasks.tfserving.grpc_api import status_json, status_response

        return status_json(status_response(self.manager, name, version))

    def _metadata(self, name: str, version: Optional[int], label: Optional[str]) -> str:
        from tensorflow_serving.apis import model_pb2

        from tfrun.tasks.tfserving.grpc_api import metadata_json, metadata_response

        spec = model_pb2.ModelSpec(name=name)
        if version is not None:
            spec.version.value = version
        elif label:
            spec.version_label = label
        return metadata_json(metadata_response(self.manager, spec, ["signature_def"]))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 120  # an idle keep-alive connection is closed after this many seconds
    server_version = "tfrun-serve"
    server: "RestServer"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        if self.server.verbose:
            super().log_message(format, *args)

    def _read_body(self) -> bytes:
        limit = self.server.max_request_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > limit:
                    raise _TooLarge(total)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            body = b"".join(chunks)
        else:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                raise ServingError(Code.INVALID_ARGUMENT, "Invalid Content-Length header") from None
            if length < 0:
                raise ServingError(Code.INVALID_ARGUMENT, "Invalid Content-Length header")
            if length > limit:
                raise _TooLarge(length)
            body = self.rfile.read(length) if length else b""
        encoding = self.headers.get("Content-Encoding", "").lower()
        if encoding in ("gzip", "deflate"):
            try:
                decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
                body = decompressor.decompress(body, limit + 1)
            except zlib.error:
                raise ServingError(Code.INVALID_ARGUMENT, "Could not decompress the request body") from None
            if len(body) > limit:
                raise _TooLarge(len(body))
        return body

    def _answer(self, method: str, path: str, body: bytes) -> tuple[int, str]:
        """(HTTP status, JSON text) for a request whose body was read; subclasses route differently."""
        if API_RE.fullmatch(path):
            return self.server.api.handle(method, path, body)
        return 404, jsonio.error_body(f"Not found: {method} {path} (the API is under /v1/)")

    def _serve(self, method: str) -> None:
        path = urlsplit(self.path).path
        close = False
        content_type = "application/json"
        try:
            body = self._read_body()
            if method in ("GET", "HEAD") and path == self.server.metrics_path:
                status, text, content_type = 200, metrics.REGISTRY.exposition(), metrics.CONTENT_TYPE
            else:
                status, text = self._answer(method, path, body)
        except _TooLarge as err:
            close = True
            status, text = (
                http_status(Code.RESOURCE_EXHAUSTED),
                jsonio.error_body(
                    f"Request body of {err.size} bytes exceeds the limit of {self.server.max_request_bytes} bytes "
                    "(--max_request_bytes)"
                ),
            )
        except ServingError as err:
            close = True
            status, text = http_status(err.code), jsonio.error_body(err.message)
        except (ValueError, OSError) as err:
            close = True
            status, text = 400, jsonio.error_body(f"Malformed HTTP request body: {err}")
        payload = text.encode()
        head = (
            f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n"
            + ("Connection: close\r\n" if close else "")
            + "\r\n"
        ).encode("latin-1")
        if close:
            self.close_connection = True
        self.wfile.write(head + (payload if method != "HEAD" else b""))  # one send: no Nagle / delayed-ACK stall

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_HEAD(self) -> None:
        self._serve("HEAD")


class _TooLarge(Exception):
    def __init__(self, size: int):
        super().__init__(size)
        self.size = size


class RestServer(ThreadingHTTPServer):
    daemon_threads = True
    metrics_path: Optional[str] = None  # subclasses that skip __init__ (the Vertex container) serve no metrics
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(
        self,
        host: str,
        port: int,
        manager: ModelManager,
        *,
        max_request_bytes: int,
        verbose: bool = False,
        metrics_path: Optional[str] = None,
    ):
        import socket

        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)
        self.api = RestApi(manager)
        self.max_request_bytes = max_request_bytes
        self.verbose = verbose
        self.metrics_path = metrics_path  # the Prometheus page's path (--monitoring_config_file), or None
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        return self.server_address[1]

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.25}, name="rest", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
