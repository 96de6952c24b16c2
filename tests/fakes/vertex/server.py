"""The HTTP side of fake-vertex: Vertex's REST routes (v1, as the Python SDK's REST transport calls them),
the operations routes (`/ui/...` and `/v1/...`), and the control API under `/_fake/` (health, calls,
faults, state, settings, reset).

Requests and answers are JSON with camelCase fields; enums are answered as ints when the query carries
`$alt=json;enum-encoding=int` (the SDK always sends it) and as names otherwise. Errors are Google's
`{"error": {"code", "message", "status"}}`. Every Vertex call is logged (method, path, status, time).
"""

from __future__ import annotations

import json
import random
import re
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from .batch import BatchService
from .containers import Launcher
from .control import Control, FaultRule
from .custom_jobs import CustomJobService
from .endpoint_service import EndpointService
from .gcsio import Gcs
from .model_service import ModelService
from .operations import Operations
from .replicas import Training
from .store import Store
from .tuning import TuningJobService
from .wire import ApiError, camel, new_id, normalise_enums, to_wire


@dataclass
class Raw:
    """A non-JSON answer (rawPredict passes the container's bytes and status through)."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    raw: bytes
    headers: Any
    control: Control
    _json: Any = None

    @property
    def int_enums(self) -> bool:
        return "enum-encoding=int" in self.query.get("$alt", "")

    def json(self) -> dict:
        if self._json is None:
            if not self.raw.strip():
                self._json = {}
            else:
                try:
                    self._json = json.loads(self.raw)
                except ValueError as exc:
                    raise ApiError("INVALID_ARGUMENT", f"Invalid JSON payload received. {exc}") from None
                if not isinstance(self._json, dict):
                    raise ApiError("INVALID_ARGUMENT", "Invalid JSON payload received: expected an object.")
                self._json = normalise_enums(self._json)
        return self._json

    def int_query(self, key: str) -> int | None:
        value = self.query.get(key)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError:
            raise ApiError("INVALID_ARGUMENT", f"Invalid value for {key}: {value!r}") from None

    def update_mask(self) -> list[str]:
        """`updateMask` (comma-separated, snake_case or camelCase) as camelCase field names; required."""
        fields = [camel(f.strip()) for f in self.query.get("updateMask", "").split(",") if f.strip()]
        if not fields:
            raise ApiError("INVALID_ARGUMENT", "update_mask is required.")
        return fields

    def take_fault(self, mode: str) -> FaultRule | None:
        return self.control.take(self.method, self.path, mode)


class Fake:
    """The whole fake: resources, operations, containers, control; `route()` answers one request."""

    def __init__(
        self,
        workdir: Path | None = None,
        storage_endpoint: str | None = None,
        deploy_timeout: float = 120.0,
        predict_timeout: float = 60.0,
        seed: int | None = None,
        max_replica_restarts: int = 1,
        serving_zygote: str | None = None,
    ) -> None:
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="fake-vertex-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage_endpoint = storage_endpoint
        self.deploy_timeout = deploy_timeout
        self.predict_timeout = predict_timeout
        self.seed = seed
        self.rng = random.Random(seed)
        self.store = Store()
        self.ops = Operations(self.store)
        self.control = Control()
        self.gcs = Gcs(storage_endpoint)
        self.launcher = Launcher(self.workdir, storage_endpoint, serving_zygote)
        self.model_service = ModelService(self)
        self.endpoint_service = EndpointService(self)
        self.batch_service = BatchService(self)
        self.training = Training(self.workdir, max_replica_restarts)
        self.custom_jobs = CustomJobService(self)
        self.tuning_jobs = TuningJobService(self)
        self.routes = self._routes()

    @staticmethod
    def new_id() -> str:
        return new_id()

    def start_operation(self, req: Request, under: str, metadata_type: str) -> tuple[dict, bool]:
        """Start an operation for `req`: (the operation, whether its work goes on). With an injected `operation`
        fault it answers running and fails shortly after, as Vertex's do, and the work is not done."""
        op = self.ops.start(under, metadata_type)
        if (rule := req.take_fault("operation")) is None:
            return op, True
        timer = threading.Timer(0.2, self.ops.fail, args=(op, rule.error()))
        timer.daemon = True
        timer.start()
        return op, False

    def quick_operation(
        self,
        req: Request,
        under: str,
        metadata_type: str,
        work: Callable[[], Any],
        response_type: str | None = None,
        response: dict | None = None,
    ) -> dict:
        """An operation whose work is quick: `work()` runs and the operation is done (with the response) before
        the call answers, unless an `operation` fault fails it (start_operation)."""
        op, go_on = self.start_operation(req, under, metadata_type)
        if not go_on:
            return op
        work()
        return self.ops.succeed(op, response_type, response)

    # routes ------------------------------------------------------------------------------------------
    def _routes(self) -> list[tuple[str, re.Pattern, Callable[..., Any]]]:
        loc = r"/v1(?:beta1)?/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
        m, e, b = self.model_service, self.endpoint_service, self.batch_service
        c, h = self.custom_jobs, self.tuning_jobs
        table = [
            ("POST", loc + r"/models:upload", m.upload),
            ("GET", loc + r"/models", m.list),
            ("GET", loc + r"/models/(?P<model>[^/:]+)", m.get),
            ("PATCH", loc + r"/models/(?P<model>[^/:]+)", m.patch),
            ("DELETE", loc + r"/models/(?P<model>[^/:]+)", m.delete),
            ("GET", loc + r"/models/(?P<model>[^/:]+):listVersions", m.list_versions),
            ("POST", loc + r"/models/(?P<model>[^/:]+):mergeVersionAliases", m.merge_aliases),
            ("DELETE", loc + r"/models/(?P<model>[^/:]+):deleteVersion", m.delete_version),
            ("POST", loc + r"/endpoints", e.create),
            ("GET", loc + r"/endpoints", e.list),
            ("GET", loc + r"/endpoints/(?P<endpoint>[^/:]+)", e.get),
            ("PATCH", loc + r"/endpoints/(?P<endpoint>[^/:]+)", e.patch),
            ("DELETE", loc + r"/endpoints/(?P<endpoint>[^/:]+)", e.delete),
            ("POST", loc + r"/endpoints/(?P<endpoint>[^/:]+):deployModel", e.deploy),
            ("POST", loc + r"/endpoints/(?P<endpoint>[^/:]+):undeployModel", e.undeploy),
            ("POST", loc + r"/endpoints/(?P<endpoint>[^/:]+):predict", e.predict),
            ("POST", loc + r"/endpoints/(?P<endpoint>[^/:]+):rawPredict", e.raw_predict),
            ("POST", loc + r"/batchPredictionJobs", b.create),
            ("GET", loc + r"/batchPredictionJobs", b.list),
            ("GET", loc + r"/batchPredictionJobs/(?P<job>[^/:]+)", b.get),
            ("POST", loc + r"/batchPredictionJobs/(?P<job>[^/:]+):cancel", b.cancel),
            ("DELETE", loc + r"/batchPredictionJobs/(?P<job>[^/:]+)", b.delete),
            ("POST", loc + r"/customJobs", c.create),
            ("GET", loc + r"/customJobs", c.list),
            ("GET", loc + r"/customJobs/(?P<job>[^/:]+)", c.get),
            ("POST", loc + r"/customJobs/(?P<job>[^/:]+):cancel", c.cancel),
            ("DELETE", loc + r"/customJobs/(?P<job>[^/:]+)", c.delete),
            ("POST", loc + r"/hyperparameterTuningJobs", h.create),
            ("GET", loc + r"/hyperparameterTuningJobs", h.list),
            ("GET", loc + r"/hyperparameterTuningJobs/(?P<job>[^/:]+)", h.get),
            ("POST", loc + r"/hyperparameterTuningJobs/(?P<job>[^/:]+):cancel", h.cancel),
            ("DELETE", loc + r"/hyperparameterTuningJobs/(?P<job>[^/:]+)", h.delete),
            ("GET", r"/(?:ui|v1|v1beta1)/(?P<name>projects/[^:]+/operations/[^/:]+)", self._op_get),
            ("POST", r"/(?:ui|v1|v1beta1)/(?P<name>projects/[^:]+/operations/[^/:]+):wait", self._op_wait),
            ("POST", r"/(?:ui|v1|v1beta1)/(?P<name>projects/[^:]+/operations/[^/:]+):cancel", self._op_cancel),
            ("DELETE", r"/(?:ui|v1|v1beta1)/(?P<name>projects/[^:]+/operations/[^/:]+)", self._op_delete),
            ("GET", r"/(?:ui|v1|v1beta1)/(?P<name>projects/[^:]+)/operations", self._op_list),
            ("GET", r"/_fake/health", lambda req: {"ok": True}),
            ("GET", r"/_fake/calls", lambda req: {"calls": self.control.snapshot()["calls"]}),
            ("DELETE", r"/_fake/calls", self._clear_calls),
            ("GET", r"/_fake/faults", lambda req: {"faults": self.control.snapshot()["rules"]}),
            ("POST", r"/_fake/faults", lambda req: self.control.add_rule(json.loads(req.raw or b"{}")).as_dict()),
            ("GET", r"/_fake/state", lambda req: self.state()),
            ("GET", r"/_fake/settings", lambda req: self.settings()),
            ("POST", r"/_fake/settings", self._set_settings),
            ("POST", r"/_fake/reset", lambda req: self.reset() or {"reset": True}),
        ]
        return [(method, re.compile(pattern + r"$"), handler) for method, pattern, handler in table]

    def _op_get(self, req: Request, name: str) -> dict:
        return self.ops.get(name)

    def _op_wait(self, req: Request, name: str) -> dict:
        timeout = str(req.json().get("timeout", "60s")).rstrip("s")
        return self.ops.wait(name, min(float(timeout or 60), 60.0))

    def _op_cancel(self, req: Request, name: str) -> dict:
        self.ops.cancel(name)
        return {}

    def _op_delete(self, req: Request, name: str) -> dict:
        self.ops.delete(name)
        return {}

    def _op_list(self, req: Request, name: str) -> dict:
        ops = self.ops.list(name)
        return {"operations": ops} if ops else {}

    def settings(self) -> dict:
        return {"maxReplicaRestarts": self.training.max_restarts}

    def _set_settings(self, req: Request) -> dict:
        """Control API: `{"maxReplicaRestarts": N}` = restarts allowed per training replica killed by a signal."""
        body = json.loads(req.raw or b"{}")
        unknown = set(body) - {"maxReplicaRestarts"}
        if unknown:
            raise ApiError("INVALID_ARGUMENT", f"unknown settings {sorted(unknown)}; known: maxReplicaRestarts")
        if "maxReplicaRestarts" in body:
            value = body["maxReplicaRestarts"]
            if not isinstance(value, int) or value < 0:
                raise ApiError("INVALID_ARGUMENT", f"maxReplicaRestarts must be an integer >= 0, got {value!r}")
            self.training.max_restarts = value
        return self.settings()

    def _clear_calls(self, req: Request) -> dict:
        with self.control.lock:
            self.control.calls.clear()
        return {}

    # whole-fake actions --------------------------------------------------------------------------------
    def state(self) -> dict:
        with self.store.lock:
            return {
                "models": self.model_service.versions(),
                "endpoints": [
                    {**self.endpoint_service.view(e), "pendingDeployedModels": list(e["_pending"])}
                    for e in self.store.all("endpoints")
                ],
                "batchPredictionJobs": self.store.all("batchPredictionJobs"),
                "customJobs": self.store.all("customJobs"),
                "hyperparameterTuningJobs": self.store.all("hyperparameterTuningJobs"),
                "replicas": self.training.snapshot(),
                "settings": self.settings(),
                "operations": list(self.ops.ops.values()),
                "containers": self.launcher.snapshot(),
                "projects": dict(self.store.projects),
                "workdir": str(self.workdir),
                "storageEndpoint": self.storage_endpoint,
            }

    def reset(self) -> None:
        """Forget every resource, operation, fault, call and setting; stop every container and replica."""
        self.batch_service.cancel_all()
        self.custom_jobs.cancel_all()
        self.tuning_jobs.cancel_all()
        self.training.stop_all(forget=True)
        self.tuning_jobs.reseed()
        self.ops.clear()  # sets every operation's cancel event: deploys under way give up
        self.launcher.stop_all()
        self.store.clear()
        self.control.clear()

    def shutdown(self) -> None:
        """Stop every container and replica and let none start after this (deploys and jobs under way fail)."""
        self.batch_service.cancel_all()
        self.custom_jobs.cancel_all()
        self.tuning_jobs.cancel_all()
        self.training.stop_all(close=True)
        self.launcher.stop_all(close=True)

    def route(self, method: str, target: str, raw: bytes, headers: Any) -> tuple[int, bytes, dict[str, str]]:
        """Answer one HTTP request: (status, body, headers)."""
        split = urlsplit(target)
        path = unquote(split.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        req = Request(method, path, query, raw, headers, self.control)
        try:
            if not path.startswith("/_fake/") and (rule := req.take_fault("http")) is not None:
                raise rule.error()
            for route_method, pattern, handler in self.routes:
                match = pattern.match(path)
                if match and route_method == method:
                    result = handler(req, **match.groupdict())
                    break
            else:
                if any(pattern.match(path) for _m, pattern, _h in self.routes):
                    raise ApiError("UNIMPLEMENTED", f"Method {method} is not allowed on {path}.", http_status=405)
                raise ApiError("NOT_FOUND", f"fake-vertex has no route {method} {path}.")
            if isinstance(result, Raw):
                return result.status, result.body, result.headers
            with self.store.lock:
                body = json.dumps(to_wire(result, req.int_enums)).encode()
            return 200, body, {"Content-Type": "application/json; charset=UTF-8"}
        except ApiError as error:
            return error.http_status, json.dumps(error.body()).encode(), {"Content-Type": "application/json"}
        except Exception as exc:  # a bug of the fake: answer INTERNAL with the traceback on stderr
            traceback.print_exc(file=sys.stderr)
            error = ApiError("INTERNAL", f"fake-vertex internal error: {exc!r}")
            return error.http_status, json.dumps(error.body()).encode(), {"Content-Type": "application/json"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: "FakeHttpServer"

    def _handle(self) -> None:
        started_wall, started = time.time(), time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status, body, headers = self.server.fake.route(self.command, self.path, raw, self.headers)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        split = urlsplit(self.path)
        if not split.path.startswith("/_fake/"):
            self.server.fake.control.log(
                self.command, unquote(split.path), split.query, status, started_wall, time.perf_counter() - started
            )

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write("fake-vertex: " + format % args + "\n")


class FakeHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: Fake, host: str, port: int, verbose: bool = False) -> None:
        self.fake = fake
        self.verbose = verbose
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"
