"""Serving containers run as local processes with the environment Vertex gives a model's container.

There is no Docker engine (and no TF Serving binary) on the machines this runs on, so an image is not
pulled: the container's process is started directly.
  * `containerSpec.command` (+ `args`) when given, with Vertex's `$(VAR)` expansion from the container's
    environment (`$$(VAR)` stays literal), run as is;
  * otherwise images of Vertex's prebuilt TensorFlow prediction family (`.../vertex-ai/prediction/tf2-...`)
    and images whose URI contains `tfrun-serving` run `tfrun-serve --vertex` (next to sys.executable, or
    on PATH) as a stand-in for the image's own server;
  * any other image without a command cannot be run, and the deploy fails as an image pull does.
Environment: AIP_HTTP_PORT (a free local port: processes share the host network, so the port of
`containerSpec.ports` is recorded but not used), AIP_HEALTH_ROUTE / AIP_PREDICT_ROUTE (the spec's routes or
Vertex's defaults `/v1/endpoints/{endpoint}/deployedModels/{id}[:predict]`), AIP_STORAGE_URI and
AIP_MODEL_DIR (the model's artifactUri itself: Vertex copies it to a service bucket first),
AIP_DEPLOYED_MODEL_ID, AIP_ENDPOINT_ID, AIP_PROJECT_NUMBER, AIP_MACHINE_TYPE, AIP_ACCELERATOR_TYPE,
AIP_FRAMEWORK, AIP_MODE, plus STORAGE_EMULATOR_HOST (the GCS emulator given to the fake) and the spec's env.
Each process runs in its own session (process group), writes to a log file under the fake's work dir and
is stopped by its group id: SIGTERM, then SIGKILL after a grace period. Given a serving zygote's socket
(`--serving-zygote`, serving_zygote.py), the stand-in `tfrun-serve --vertex` is forked from that warm process
(TensorFlow imported once) rather than started cold, with the same argv, environment and rules.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from . import serving_zygote
from .serving_zygote import ForkedProcess
from .wire import ApiError

PREBUILT_TF = re.compile(r"(^|/)vertex-ai/prediction/tf2-")
_VAR = re.compile(r"\$\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the fake imports nothing of the tests' helpers: it starts in every test)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes/Vertex `$(VAR)` expansion: known variables replaced, unknown left as written, `$$(` escapes."""

    def replace(match: re.Match) -> str:
        if match.group(1) is not None:
            return f"$({match.group(1)})"
        return env.get(match.group(2), match.group(0))

    return _VAR.sub(replace, text)


def tfrun_serve() -> str | None:
    beside = Path(sys.executable).parent / "tfrun-serve"
    return str(beside) if beside.is_file() else shutil.which("tfrun-serve")


def command_for(spec: dict, env: Mapping[str, str]) -> list[str]:
    """The argv a model's container runs, or FAILED_PRECONDITION as when Vertex cannot pull the image."""
    image = spec.get("imageUri", "")
    command = [expand(part, env) for part in spec.get("command", [])]
    args = [expand(part, env) for part in spec.get("args", [])]
    if command:
        return command + args
    if PREBUILT_TF.search(image) or "tfrun-serving" in image:
        serve = tfrun_serve()
        if serve is None:
            raise ApiError(
                "FAILED_PRECONDITION",
                f'Image "{image}": the stand-in `tfrun-serve --vertex` was not '
                "found next to the Python interpreter or on PATH.",
            )
        return [serve, "--vertex", *args]
    raise ApiError(
        "FAILED_PRECONDITION",
        f'Failed to pull image "{image}": the image has no containerSpec.command and is not a '
        "TensorFlow prediction image or a tfrun-serving image (fake-vertex runs containers as local "
        "processes, without Docker).",
    )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@dataclass
class Container:
    key: str  # the deployed model id, or the batch job id
    purpose: str  # "endpoint" or "batch"
    argv: list[str]
    env: dict[str, str]  # the AIP_* and spec variables given (not the inherited environment)
    port: int
    health_route: str
    predict_route: str
    log_path: Path
    process: subprocess.Popen | ForkedProcess  # started cold, or forked by the serving zygote
    started: float = field(default_factory=time.time)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def url(self, route: str) -> str:
        return f"http://127.0.0.1:{self.port}{route}"

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the container's process group, SIGKILL it after `grace` seconds; its exit code."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(grace)
        return self.process.returncode

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "purpose": self.purpose,
            "pid": self.pid,
            "alive": self.alive(),
            "returncode": self.process.returncode,
            "port": self.port,
            "argv": self.argv,
            "healthRoute": self.health_route,
            "predictRoute": self.predict_route,
            "log": str(self.log_path),
            "env": self.env,
            "started": self.started,
        }


class Launcher:
    """Starts, health-checks, calls and stops the containers of one fake."""

    def __init__(self, workdir: Path, storage_endpoint: str | None, serving_zygote: str | None = None) -> None:
        self.log_dir = workdir / "containers"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.storage_endpoint = storage_endpoint
        self.serving_zygote = serving_zygote  # socket of a warm stand-in for the prebuilt image (serving_zygote.py)
        self.lock = threading.Lock()
        self.running: dict[str, Container] = {}
        self.closed = False  # set when the fake stops: no container may start after that

    def start(
        self, key: str, purpose: str, model: dict, *, project_number: str, endpoint_id: str, machine_spec: dict
    ) -> Container:
        spec = model.get("containerSpec", {})
        port = free_port()
        default_route = f"/v1/endpoints/{endpoint_id}/deployedModels/{key}"
        env = {
            "AIP_HTTP_PORT": str(port),
            "AIP_HEALTH_ROUTE": spec.get("healthRoute") or default_route,
            "AIP_PREDICT_ROUTE": spec.get("predictRoute") or f"{default_route}:predict",
            "AIP_STORAGE_URI": model.get("artifactUri", ""),
            "AIP_MODEL_DIR": model.get("artifactUri", ""),
            "AIP_DEPLOYED_MODEL_ID": key,
            "AIP_ENDPOINT_ID": endpoint_id,
            "AIP_PROJECT_NUMBER": project_number,
            "AIP_MACHINE_TYPE": machine_spec.get("machineType", ""),
            "AIP_FRAMEWORK": "TENSORFLOW" if PREBUILT_TF.search(spec.get("imageUri", "")) else "CUSTOM_CONTAINER",
            "AIP_MODE": "PREDICTION",
            "AIP_MODE_VERSION": "1.0.0",
        }
        accelerator = machine_spec.get("acceleratorType", "ACCELERATOR_TYPE_UNSPECIFIED")
        if accelerator != "ACCELERATOR_TYPE_UNSPECIFIED":
            env["AIP_ACCELERATOR_TYPE"] = accelerator
        if self.storage_endpoint:
            env["STORAGE_EMULATOR_HOST"] = self.storage_endpoint
        for item in spec.get("env", []):  # later variables may refer to earlier ones, as in Kubernetes
            env[item["name"]] = expand(item.get("value", ""), env)
        argv = command_for(spec, env)
        log_path = self.log_dir / f"{purpose}-{key}.log"
        full_env = {**os.environ, **env}
        full_env.pop("PYTHONSTARTUP", None)
        process: subprocess.Popen | ForkedProcess | None = None
        if self.serving_zygote and not spec.get("command"):  # the stand-in `tfrun-serve --vertex`: forked warm
            process = serving_zygote.fork(self.serving_zygote, argv, full_env, os.getcwd(), str(log_path))
        with self.lock, open(log_path, "ab") as log:
            if self.closed:
                if process is not None:
                    _kill_group(process.pid)
                raise ApiError("UNAVAILABLE", "fake-vertex is stopping.")
            try:
                process = process or subprocess.Popen(
                    argv,
                    env=full_env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ApiError(
                    "FAILED_PRECONDITION",
                    f"Model server could not start: {exc}. Model server logs can be found at {log_path}.",
                ) from None
            container = Container(
                key, purpose, argv, env, port, env["AIP_HEALTH_ROUTE"], env["AIP_PREDICT_ROUTE"], log_path, process
            )
            self.running[key] = container
        return container

    def wait_healthy(self, container: Container, timeout: float, cancelled: threading.Event | None = None) -> None:
        """Poll the health route until it answers 200, as Vertex does before it routes traffic."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            if container.process.poll() is not None:
                raise ApiError(
                    "FAILED_PRECONDITION",
                    f"Model server exited unexpectedly (exit code {container.process.returncode}). "
                    f"Model server logs can be found at {container.log_path}.",
                )
            if cancelled is not None and cancelled.is_set():
                raise ApiError("CANCELLED", "Operation cancelled.")
            try:
                status, _body, _headers = self.call(container, "GET", container.health_route, None, timeout=2.0)
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ApiError(
                    "FAILED_PRECONDITION",
                    f"Model server never became ready within {timeout:g} s. Please validate that your "
                    "model file or container configuration are valid. "
                    f"Model server logs can be found at {container.log_path}.",
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    @staticmethod
    def call(
        container: Container,
        method: str,
        route: str,
        body: bytes | None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> tuple[int, bytes, dict]:
        """One HTTP request to a container: (status, body, headers). OSError when it cannot be reached."""
        conn = http.client.HTTPConnection("127.0.0.1", container.port, timeout=timeout)
        try:
            conn.request(method, route, body=body, headers=dict(headers or {}))
            response = conn.getresponse()
            return response.status, response.read(), dict(response.getheaders())
        except http.client.HTTPException as exc:
            raise ConnectionError(str(exc)) from None
        finally:
            conn.close()

    def stop(self, key: str) -> Container | None:
        with self.lock:
            container = self.running.pop(key, None)
        if container is not None:
            container.stop()
        return container

    def stop_all(self, close: bool = False) -> None:
        """Stop every container; with `close`, refuse to start any later (the fake is stopping)."""
        with self.lock:
            self.closed = self.closed or close
            containers = list(self.running.values())
            self.running.clear()
        for container in containers:
            container.stop()

    def snapshot(self) -> list[dict]:
        with self.lock:
            return [c.as_dict() for c in self.running.values()]
