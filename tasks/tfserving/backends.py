"""Which server runs, and its process: `binary` (tensorflow_model_server on PATH), `docker` (the
tensorflow/serving image, when a Docker engine answers) or `embedded` (tfrun-serve).

`auto` takes the first available in that order. Every backend is one process started here and
stopped by its PID (SIGTERM, then SIGKILL). Ports are picked free on the bind address. A server
kept running after the run is started in its own session with output to a log file, so it
outlives tfrun and holds none of tfrun's pipes; otherwise it dies with the process that started
it (PR_SET_PDEATHSIG on Linux) even if that process is killed.

The binary has no bind-address flag: it listens on all interfaces (the record says so). Docker
publishes the ports on the chosen host address only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from tfrun.tasks.core.processes import SERVE_MODULE, die_with_parent, forked_module_command
from tfrun.tasks.core.serving_backends import BINARY, binary_path, missing

BACKENDS = ("binary", "docker", "embedded")
CONTAINER_GRPC, CONTAINER_REST = 8500, 8501


def availability() -> dict[str, str]:
    """backend -> 'available' or why not."""
    return {
        "binary": missing("binary") or "available",
        "docker": missing("docker") or "available",
        "embedded": "available",
    }


def choose(requested: str) -> tuple[str, dict[str, str]]:
    """The backend to run for `requested` (auto | binary | docker | embedded), or RuntimeError saying why not."""
    found = availability() if requested in ("auto", "binary", "docker") else {"embedded": "available"}
    if requested == "auto":
        for name in BACKENDS:
            if found.get(name) == "available":
                return name, found
    if found.get(requested) == "available":
        return requested, found
    raise RuntimeError(f"target.server={requested} is not available here: {found.get(requested)}")


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host if host not in ("0.0.0.0", "::") else "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class ServerSpec:
    """What to serve and how: enough to build any backend's command line."""

    model_name: str
    base_path: Path  # the model's folder: <repository>/<model_name>
    host: str = "127.0.0.1"
    grpc_port: int = 0
    rest_port: int = 0
    poll_wait_seconds: int = 1
    batching_parameters_file: Optional[Path] = None
    enable_warmup: bool = True
    max_load_retries: int = 5
    max_request_bytes: int = 64 << 20
    model_config_file: Optional[Path] = None
    config_poll_seconds: int = 0  # re-read model_config_file this often (0: never): labels and rolls reach the server
    monitoring_config_file: Optional[Path] = None  # TF Serving's MonitoringConfig: Prometheus metrics on the REST port
    docker_image: str = "tensorflow/serving:2.21.0"
    container_name: str = ""

    def with_free_ports(self) -> "ServerSpec":
        if not self.grpc_port:
            self.grpc_port = free_port(self.host)
        if not self.rest_port:
            self.rest_port = free_port(self.host)
            while self.rest_port == self.grpc_port:
                self.rest_port = free_port(self.host)
        return self

    @property
    def client_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else ("::1" if self.host == "::" else self.host)

    @property
    def grpc_target(self) -> str:
        host = self.client_host
        return f"[{host}]:{self.grpc_port}" if ":" in host else f"{host}:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        host = self.client_host
        return f"http://[{host}]:{self.rest_port}" if ":" in host else f"http://{host}:{self.rest_port}"


def _model_flags(
    spec: ServerSpec,
    base_path: str,
    config_file: Optional[str],
    batching_file: Optional[str],
    monitoring_file: Optional[str] = None,
) -> list[str]:
    flags = [
        f"--file_system_poll_wait_seconds={spec.poll_wait_seconds}",
        f"--enable_model_warmup={'true' if spec.enable_warmup else 'false'}",
        f"--max_num_load_retries={spec.max_load_retries}",
    ]
    if config_file:
        flags.append(f"--model_config_file={config_file}")
        if spec.config_poll_seconds:
            flags.append(f"--model_config_file_poll_wait_seconds={spec.config_poll_seconds}")
    else:
        flags += [f"--model_name={spec.model_name}", f"--model_base_path={base_path}"]
    if batching_file:
        flags += ["--enable_batching=true", f"--batching_parameters_file={batching_file}"]
    if monitoring_file:
        flags.append(f"--monitoring_config_file={monitoring_file}")
    return flags


def command(backend: str, spec: ServerSpec) -> list[str]:
    """The argv that starts `backend` serving `spec`."""
    base = str(Path(spec.base_path).resolve())
    batching = str(spec.batching_parameters_file.resolve()) if spec.batching_parameters_file else None
    config = str(spec.model_config_file.resolve()) if spec.model_config_file else None
    monitoring = str(spec.monitoring_config_file.resolve()) if spec.monitoring_config_file else None
    if backend == "embedded":
        return [
            sys.executable,
            "-m",
            SERVE_MODULE,
            f"--host={spec.host}",
            f"--port={spec.grpc_port}",
            f"--rest_api_port={spec.rest_port}",
            f"--max_request_bytes={spec.max_request_bytes}",
            *_model_flags(spec, base, config, batching, monitoring),
        ]
    if backend == "binary":
        path = binary_path()
        if path is None:
            raise RuntimeError(f"{BINARY} is not on PATH")
        return [
            path,
            f"--port={spec.grpc_port}",
            f"--rest_api_port={spec.rest_port}",
            *_model_flags(spec, base, config, batching, monitoring),
        ]
    if backend == "docker":
        name = spec.container_name or f"tfrun-serving-{os.getpid()}-{spec.grpc_port}"
        spec.container_name = name
        argv = [
            "docker",
            "run",
            "--rm",
            "--init",
            "--name",
            name,
            "-p",
            f"{spec.host}:{spec.grpc_port}:{CONTAINER_GRPC}",
            "-p",
            f"{spec.host}:{spec.rest_port}:{CONTAINER_REST}",
            "--mount",
            f"type=bind,source={base},target=/models/{spec.model_name},readonly",
        ]
        if batching:
            argv += ["--mount", f"type=bind,source={batching},target=/config/batching.config,readonly"]
        if config:
            argv += ["--mount", f"type=bind,source={config},target=/config/models.config,readonly"]
        if monitoring:
            argv += ["--mount", f"type=bind,source={monitoring},target=/config/monitoring.config,readonly"]
        argv += [
            "--entrypoint",
            BINARY,
            spec.docker_image,
            f"--port={CONTAINER_GRPC}",
            f"--rest_api_port={CONTAINER_REST}",
            *_model_flags(
                spec,
                f"/models/{spec.model_name}",
                "/config/models.config" if config else None,
                "/config/batching.config" if batching else None,
                "/config/monitoring.config" if monitoring else None,
            ),
        ]
        return argv
    raise ValueError(f"unknown backend {backend!r}")


@dataclass
class ServerProcess:
    backend: str
    argv: list[str]
    spec: ServerSpec
    log_path: Path
    detached: bool
    proc: Optional[subprocess.Popen] = field(default=None, repr=False)
    pid: int = 0

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return pid_alive(self.pid)

    def stop(self, timeout: float = 15.0) -> Optional[int]:
        """SIGTERM by PID, SIGKILL after `timeout`; returns the exit code (None if it was not ours to reap)."""
        if self.backend == "docker" and self.spec.container_name:
            subprocess.run(["docker", "stop", "-t", "5", self.spec.container_name], capture_output=True, timeout=60)
        stop_pid(self.pid, timeout)
        if self.proc is not None:
            try:
                return self.proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                return None
        return None

    def stop_command(self) -> str:
        if self.backend == "docker":
            return f"docker stop {self.spec.container_name}"
        return f"kill {self.pid}"

    def log_tail(self, lines: int = 20) -> list[str]:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        keep = [t for t in text if t.strip() and "cuda" not in t.lower() and "absl::InitializeLog" not in t]
        return keep[-lines:]


def start(
    backend: str, spec: ServerSpec, *, log_path: Path, detached: bool, env: Optional[dict[str, str]] = None
) -> ServerProcess:
    """Start the server process (not waiting for it to serve). An embedded server that ends with the run (not
    `detached`) forks from the run's zygote when one is named: TensorFlow is imported there already (~3.5 s of a
    core a replica otherwise). Its log gets whole lines as they are written: tfrun-serve flushes each (no
    PYTHONUNBUFFERED, which a forked process could not take from its environment)."""
    argv = command(backend, spec)
    launch = argv
    if backend == "embedded" and not detached:
        launch = forked_module_command(SERVE_MODULE, argv[3:]) or argv
    log_path.parent.mkdir(parents=True, exist_ok=True)
    environment = dict(os.environ if env is None else env)
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    root = str(Path(__file__).resolve().parents[2])  # so `-m tfrun.runner.serve_cli` imports this checkout
    environment["PYTHONPATH"] = root + (os.pathsep + environment["PYTHONPATH"] if environment.get("PYTHONPATH") else "")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            launch,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            close_fds=True,
            start_new_session=detached,
            preexec_fn=None if detached else die_with_parent(),
        )
    return ServerProcess(
        backend=backend, argv=argv, spec=spec, log_path=log_path, detached=detached, proc=proc, pid=proc.pid
    )


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not serving
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def stop_pid(pid: int, timeout: float = 15.0) -> bool:
    """SIGTERM, wait up to `timeout`, then SIGKILL. True if the process is gone."""
    if not pid_alive(pid):
        return True
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        _reap(pid)
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    for _ in range(100):
        _reap(pid)
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_serving(server: ServerProcess, timeout: float) -> None:
    """Wait until both ports accept connections, or raise with the server's log tail."""
    deadline = time.monotonic() + timeout
    spec = server.spec
    while time.monotonic() < deadline:
        if not server.alive():
            tail = "\n".join(server.log_tail())
            raise RuntimeError(f"the {server.backend} server exited before serving:\n{tail}")
        if port_open(spec.client_host, spec.grpc_port) and port_open(spec.client_host, spec.rest_port):
            return
        time.sleep(0.1)
    raise RuntimeError(
        f"the {server.backend} server did not open ports {spec.grpc_port}/{spec.rest_port} within {timeout:g} s"
    )
