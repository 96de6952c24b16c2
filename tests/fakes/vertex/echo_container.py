"""A tiny serving container for fake-vertex's own tests (no TensorFlow): Vertex's custom-container contract.

Listens on 127.0.0.1:$AIP_HTTP_PORT; loads `model.json` ({"weights": [...], "bias": b}) from
$AIP_STORAGE_URI through the GCS emulator ($STORAGE_EMULATOR_HOST, plain JSON API) in a thread, answering
503 on $AIP_HEALTH_ROUTE until it is loaded, then 200. POST $AIP_PREDICT_ROUTE {"instances": [...]}
answers {"predictions": [dot(weights, x) + bias, ...]} for instances that are lists of numbers, {"x": [...]}
objects, or {"b64": base64 of such a JSON instance} (how a TFRecord batch input arrives); any other
instance fails the whole request with 400 {"error": ...}, as TF Serving does. parameters.scale multiplies
the predictions. ECHO_EXIT_CODE=N makes the process exit at once (a crashing model server);
ECHO_LOAD_SECONDS delays readiness.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

MODEL: dict[str, Any] = {}


def load(uri: str) -> dict:
    if uri.startswith("gs://"):
        bucket, _, prefix = uri[len("gs://") :].partition("/")
        name = f"{prefix.rstrip('/')}/model.json" if prefix else "model.json"
        host = os.environ["STORAGE_EMULATOR_HOST"].rstrip("/")
        url = f"{host}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}?alt=media"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())
    with open(os.path.join(uri, "model.json")) as handle:
        return json.load(handle)


def features(instance: Any) -> list[float]:
    if isinstance(instance, dict) and set(instance) == {"b64"}:
        instance = json.loads(base64.b64decode(instance["b64"]))
    if isinstance(instance, dict) and "x" in instance:
        instance = instance["x"]
    if not isinstance(instance, list) or not all(isinstance(v, (int, float)) for v in instance):
        raise ValueError(f"instance {instance!r} is not a list of numbers")
    if len(instance) != len(MODEL["weights"]):
        raise ValueError(f"instance has {len(instance)} values, the model takes {len(MODEL['weights'])}")
    return instance


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == os.environ["AIP_HEALTH_ROUTE"]:
            self._send(200, {"pid": os.getpid()}) if MODEL else self._send(503, {"error": "loading"})
        else:
            self._send(404, {"error": f"no route {self.path}"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if self.path != os.environ["AIP_PREDICT_ROUTE"]:
            return self._send(404, {"error": f"no route {self.path}"})
        if not MODEL:
            return self._send(503, {"error": "model not loaded"})
        scale = float((body.get("parameters") or {}).get("scale", 1.0))
        try:
            rows = [features(instance) for instance in body["instances"]]
        except (KeyError, TypeError, ValueError) as exc:
            return self._send(400, {"error": str(exc)})
        predictions = [
            scale * (sum(w * v for w, v in zip(MODEL["weights"], row)) + MODEL.get("bias", 0.0)) for row in rows
        ]
        self._send(200, {"predictions": predictions})

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write("echo-container: " + format % args + "\n")


def _load_later() -> None:
    time.sleep(float(os.environ.get("ECHO_LOAD_SECONDS", "0")))
    try:
        MODEL.update(load(os.environ["AIP_STORAGE_URI"]))
    except Exception as exc:  # a model that cannot load: exit, as a real server would
        print(f"echo-container: cannot load the model: {exc!r}", flush=True)
        os._exit(1)
    print(f"echo-container: model loaded from {os.environ['AIP_STORAGE_URI']}", flush=True)


def main() -> int:
    if os.environ.get("ECHO_EXIT_CODE"):
        print("echo-container: exiting as asked (ECHO_EXIT_CODE)", flush=True)
        return int(os.environ["ECHO_EXIT_CODE"])
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["AIP_HTTP_PORT"])), Handler)
    server.daemon_threads = True
    threading.Thread(target=_load_later, daemon=True).start()
    print(f"echo-container: pid {os.getpid()} on port {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.exit(main())
