"""`tfrun-serve --vertex`: Vertex AI's custom serving container contract on the embedded server's parts.

Vertex starts the container with AIP_HTTP_PORT, AIP_HEALTH_ROUTE, AIP_PREDICT_ROUTE and AIP_STORAGE_URI
(a gs:// copy of the model's artifactUri), polls the health route until it answers 200, POSTs
`{"instances": [...], "parameters": {...}}` to the predict route and stops the container with SIGTERM.

The port opens at once and health answers 503 while the model downloads, loads and warms up, so
Vertex sees a live container that is not ready yet rather than a closed port. Requests are decoded
and answers written by tasks/tfserving/jsonio (TF Serving's REST row format, floats that read back
to the same float32), the model runs through tasks/tfserving/servable, and the HTTP layer is
tasks/tfserving/rest's handler (Nagle off, body limit checked before the body is read). Importing
this module imports neither TensorFlow nor google.cloud: both load in the loader thread.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from tfrun.tasks.tfserving import jsonio
from tfrun.tasks.tfserving.rest import RestServer, _Handler, answered
from tfrun.tasks.tfserving.server import batching_parameters, log, stop_signals
from tfrun.tasks.tfserving.status import Code, ServingError, http_status, invalid

DEFAULT_PORT = 8080
DEFAULT_HEALTH_ROUTE = "/health"
DEFAULT_PREDICT_ROUTE = "/predict"
DEFAULT_SIGNATURE = "serving_default"
LOADING = "loading"


@dataclass(frozen=True)
class ContainerSettings:
    """What Vertex tells the container through its environment (AIP_*)."""

    port: int
    health_route: str
    predict_route: str
    storage_uri: str  # gs://BUCKET/PATH or a local folder


def settings_from_env(env: Mapping[str, str], model_dir: str = "") -> ContainerSettings:
    """AIP_* variables with Vertex's defaults; `model_dir` (--model_base_path) overrides AIP_STORAGE_URI."""
    raw_port = env.get("AIP_HTTP_PORT") or str(DEFAULT_PORT)
    try:
        port = int(raw_port)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ValueError(f"AIP_HTTP_PORT={raw_port!r} is not a port number")
    routes = {}
    for key, default in (("AIP_HEALTH_ROUTE", DEFAULT_HEALTH_ROUTE), ("AIP_PREDICT_ROUTE", DEFAULT_PREDICT_ROUTE)):
        routes[key] = env.get(key) or default
        if not routes[key].startswith("/"):
            raise ValueError(f"{key}={routes[key]!r} must be a path starting with '/'")
    storage = model_dir or env.get("AIP_STORAGE_URI", "")
    if not storage:
        raise ValueError(
            "no model to serve: set AIP_STORAGE_URI (gs://BUCKET/PATH or a local folder) or pass --model_base_path"
        )
    if "://" in storage and not storage.startswith("gs://"):
        raise ValueError(f"model location {storage!r}: expected gs://BUCKET/PATH or a local folder")
    return ContainerSettings(port, routes["AIP_HEALTH_ROUTE"], routes["AIP_PREDICT_ROUTE"], storage)


# ------------------------------------------------------------------------------------------ the model
def _is_savedmodel(path: Path) -> bool:
    return (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file()


def savedmodel_dir(root: Path, shown_as: str = "") -> tuple[Path, int]:
    """The SavedModel under root and its version: root itself (what a Vertex Model's artifactUri names)
    or, in a TF Serving repository (<N>/saved_model.pb), the highest numbered version."""
    if _is_savedmodel(root):
        return root, 1
    versions = (
        sorted((int(p.name), p) for p in root.iterdir() if p.name.isdigit() and _is_savedmodel(p))
        if root.is_dir()
        else []
    )
    if not versions:
        raise FileNotFoundError(
            f"no SavedModel at {shown_as or root}: expected saved_model.pb there or in a "
            "numbered version folder (<N>/saved_model.pb)"
        )
    return versions[-1][1], versions[-1][0]


def fetch(uri: str, workdir: Optional[Path]) -> tuple[Path, int]:
    """The model folder on local disk and how many files were downloaded (0 for a local folder)."""
    if not uri.startswith("gs://"):
        return Path(uri), 0
    from tfrun.tasks import gcs

    assert workdir is not None
    target = workdir / "model"
    files = gcs.download_tree(gcs.storage_client_from_env(), uri, target)
    if not files:
        raise FileNotFoundError(f"no objects under {uri}")
    return target, files


def zero_inputs(signature: Any) -> dict[str, np.ndarray]:
    """One example of zeros (empty strings) per input, unknown dimensions taken as 1."""
    from tfrun.tasks.tfserving import tensors

    inputs = {}
    for alias, spec in signature.inputs.items():
        dtype = jsonio.DTYPES[tensors.dtype_name(spec.dtype)][0]
        shape = (1,) if spec.shape is None else tuple(1 if d is None else d for d in spec.shape)
        inputs[alias] = np.full(shape, b"", dtype=object) if dtype is object else np.zeros(shape, dtype)
    return inputs


def load(uri: str, workdir: Optional[Path], args: Any) -> tuple[Any, str]:
    """Download, load and warm up the model: the Servable and a one-line account for the log."""
    started = time.monotonic()
    root, files = fetch(uri, workdir)
    path, version = savedmodel_dir(root, uri)
    import tensorflow as tf

    from tfrun.tasks.tfserving.servable import Servable

    tf.config.threading.set_intra_op_parallelism_threads(args.tensorflow_intra_op_parallelism)
    tf.config.threading.set_inter_op_parallelism_threads(args.tensorflow_inter_op_parallelism)
    servable = Servable("vertex", version, path, batching=batching_parameters(args))
    servable.load()
    replayed = servable.warmup() if args.enable_model_warmup else 0
    signature = servable.signatures.get(DEFAULT_SIGNATURE)
    if signature is None or signature.fn is None:
        warm = f"no {DEFAULT_SIGNATURE} signature to warm up"
    else:
        try:
            inputs = zero_inputs(signature)
            servable.predict(DEFAULT_SIGNATURE, inputs)
            warm = "warmed up on " + ", ".join(f"{k} {list(v.shape)}" for k, v in sorted(inputs.items()))
        except (KeyError, ServingError) as err:  # a model may reject zeros; it still serves real input
            warm = f"zero-input warm-up failed ({getattr(err, 'message', err)}), serving anyway"
    where = f"{files} file(s) from {uri}" if files else str(path)
    version_text = f" version {version}" if path != root else ""
    extra = f", {replayed} warm-up record(s) replayed" if replayed else ""
    names = ", ".join(sorted(k for k, s in servable.signatures.items() if s.fn is not None))
    return servable, (
        f"loaded {where}{version_text}: signatures {names}; {warm}{extra}; ready in {time.monotonic() - started:.1f} s"
    )


# ------------------------------------------------------------------------------------------ routes
class VertexApp:
    """Vertex's two routes -> (HTTP status, JSON text); health is 503 until a model is set."""

    def __init__(self, health_route: str, predict_route: str):
        self.health_route = health_route
        self.predict_route = predict_route
        self.servable: Any = None

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, str]:
        if path == self.health_route:
            if method not in ("GET", "HEAD"):
                return 405, jsonio.error_body(f"{method} {path}: the health route answers GET")
            return (200, "{}") if self.servable is not None else (503, jsonio.error_body(LOADING))
        if path == self.predict_route:
            if method != "POST":
                return 405, jsonio.error_body(f'{method} {path}: POST {{"instances": [...]}} to predict')
            return self._answer_predict(body)
        return 404, jsonio.error_body(
            f"Not found: {method} {path} (health: GET {self.health_route}, predict: POST {self.predict_route})"
        )

    def _answer_predict(self, body: bytes) -> tuple[int, str]:
        servable = self.servable
        if servable is None:
            return http_status(Code.UNAVAILABLE), jsonio.error_body(LOADING)
        return answered(lambda: predict(servable, body))


def signature_name(doc: Mapping[str, Any]) -> str:
    """`parameters.signature_name` (Vertex carries options in parameters), else TF Serving's top-level key."""
    parameters = doc.get("parameters")
    if parameters is None:
        return jsonio.signature_name(doc)
    if not isinstance(parameters, dict):
        raise invalid(f"JSON Value: {jsonio.value_text(parameters)} 'parameters' must be a JSON object")
    return jsonio.signature_name(parameters) or jsonio.signature_name(doc)


def predict(servable: Any, body: bytes) -> str:
    """TF Serving's REST predict on one servable: `instances` -> `predictions` (row format)."""
    doc = jsonio.parse_document(body)
    signature = signature_name(doc)
    infos = servable.input_infos(signature)
    has_bools = b"true" in body or b"false" in body
    inputs, fmt = jsonio.predict_inputs(doc, infos, has_bools=has_bools)
    _, outputs = servable.predict(signature, inputs)
    return jsonio.predict_response(outputs, fmt)


# ------------------------------------------------------------------------------------------ HTTP
class _ContainerHandler(_Handler):
    server: "ContainerServer"

    def _answer(self, method: str, path: str, body: bytes) -> tuple[int, str]:
        return self.server.app.handle(method, path, body)


class ContainerServer(RestServer):
    """RestServer's socket settings, start and stop, answering Vertex's routes instead of TF Serving's."""

    def __init__(self, host: str, port: int, app: VertexApp, *, max_request_bytes: int, verbose: bool = False):
        if ":" in host:
            self.address_family = socket.AF_INET6
        ThreadingHTTPServer.__init__(self, (host, port), _ContainerHandler)
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.verbose = verbose
        self._thread: Optional[threading.Thread] = None


# ------------------------------------------------------------------------------------------ process
def _remove(workdir: Optional[Path]) -> None:
    """Delete the download folder, retrying while a download still running writes into it."""
    for _ in range(20):
        if workdir is None or not workdir.exists():
            return
        shutil.rmtree(workdir, ignore_errors=True)
        time.sleep(0.05)
    log(f"could not remove {workdir}")


def run(args: Any) -> int:
    """Serve until SIGTERM/SIGINT (exit 0) or until the model fails to load (exit 1)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        conf = settings_from_env(os.environ, args.model_base_path)
    except ValueError as err:
        log(f"Failed to start server. Error: {err}")
        return 1
    app = VertexApp(conf.health_route, conf.predict_route)
    try:
        http = ContainerServer(
            args.host, conf.port, app, max_request_bytes=args.max_request_bytes, verbose=args.verbose
        )
    except OSError as err:
        log(f"Failed to start server. Error: cannot listen on {args.host}:{conf.port}: {err}")
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="tfrun-vertex-")) if conf.storage_uri.startswith("gs://") else None
    stop = stop_signals()
    failed: list[str] = []

    def loader() -> None:
        try:
            servable, account = load(conf.storage_uri, workdir, args)
            log(account)
            app.servable = servable
        except Exception as err:  # noqa: BLE001 - any load failure ends the container with its reason
            failed.append(f"{type(err).__name__}: {getattr(err, 'message', None) or err}")
            log(f"Failed to load the model from {conf.storage_uri}. Error: {failed[-1]}")
            stop.set()

    stop.install()
    http.start()
    log(
        f"Vertex container mode on http://{args.host}:{http.port}: health GET {conf.health_route}, "
        f"predict POST {conf.predict_route}; loading {conf.storage_uri}"
    )
    threading.Thread(target=loader, name="loader", daemon=True).start()
    stop.wait()
    http.stop()
    if app.servable is not None:
        app.servable.unload()
    _remove(workdir)
    log("stopped" + (" (the model did not load)" if failed else ""))
    return 1 if failed else 0
