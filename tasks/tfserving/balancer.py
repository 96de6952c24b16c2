"""Debian's nginx in front of a group of TF Serving replicas: its config, its process, its access log.

REST goes over HTTP/1.1 to an upstream of the replicas' REST ports (keep-alive), gRPC over HTTP/2
(h2c, `grpc_pass`) to an upstream of their gRPC ports; nginx picks replicas round-robin and retries
a request on the next replica when a connection fails. Everything nginx writes (pid, logs, temp
files) stays in one folder of the run, it listens on 127.0.0.1 only, and it is stopped by its PID.

A split (`{stable: 90, canary: 10}`) is nginx's `split_clients` over each request's random id:
- REST: a predict/classify/regress call that names no version or label is rewritten to
  `/v1/models/NAME/labels/LABEL:...`, which every TF Serving server (the binary too) resolves
  through the `version_labels` of its model config file;
- gRPC: the label travels in the body (ModelSpec), which nginx cannot rewrite; nginx adds the
  header `x-tfrun-version-label`, and the embedded server resolves a request naming no version by
  it (tensorflow_model_server ignores the header: with it, gRPC requests are not split).

Each request is one access-log line (upstream address, status, label), so the record can say how
many requests each replica answered. Imports the standard library only.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from tfrun.tasks.core.processes import die_with_parent
from tfrun.tasks.core.serving_backends import NGINX_SETUP, nginx_path

LABEL_HEADER = "x-tfrun-version-label"  # gRPC metadata the embedded server reads (grpc_api.resolve)
LOG_FORMAT = "$msec $server_port $status $tfrun_label $uri $upstream_addr"


@dataclass
class Upstream:
    """One replica as nginx sees it."""

    host: str
    grpc_port: int
    rest_port: int


def split_lines(split: dict[str, int]) -> list[str]:
    """`split_clients` entries: each positive share as a percentage, the last one `*` (the remainder)."""
    shares = [(label, int(p)) for label, p in split.items() if int(p) > 0]
    lines = [f"        {p}% {label};" for label, p in shares[:-1]]
    lines.append(f"        * {shares[-1][0]};")
    return lines


def config_text(
    folder: Path,
    upstreams: list[Upstream],
    *,
    rest_port: int,
    grpc_port: int,
    split: Optional[dict[str, int]] = None,
    max_body_bytes: int = 64 << 20,
    workers: int = 1,
) -> str:
    """nginx.conf for the group: every path inside `folder`, listening on 127.0.0.1 only."""
    folder = folder.resolve()
    temp = folder / "tmp"
    rest_servers = "\n".join(f"        server {u.host}:{u.rest_port} max_fails=0;" for u in upstreams)
    grpc_servers = "\n".join(f"        server {u.host}:{u.grpc_port} max_fails=0;" for u in upstreams)
    if split:
        label_rule = '    split_clients "${request_id}" $tfrun_label {\n' + "\n".join(split_lines(split)) + "\n    }"
        rest_split = """
        location ~ ^/v1/models/([^/:]+):(predict|classify|regress)$ {
            rewrite ^/v1/models/([^/:]+):(predict|classify|regress)$ /v1/models/$1/labels/$tfrun_label:$2 break;
            proxy_pass http://tfrun_rest;
        }"""
        grpc_split = f"\n            grpc_set_header {LABEL_HEADER} $tfrun_label;"
    else:
        label_rule = '    map $request_id $tfrun_label {\n        default "-";\n    }'
        rest_split = grpc_split = ""
    return f"""# Written by tfrun (tasks/tfserving/balancer.py): nginx -c THIS -p {folder.name}/
daemon off;
worker_processes {workers};
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    client_body_temp_path {temp}/client;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    client_max_body_size {max_body_bytes};
    client_body_buffer_size 1m;
    keepalive_requests 1000000;
    tcp_nodelay on;
{label_rule}
    log_format tfrun '{LOG_FORMAT}';
    access_log {folder}/access.log tfrun;
    upstream tfrun_rest {{
{rest_servers}
        keepalive 64;
    }}
    upstream tfrun_grpc {{
{grpc_servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{rest_port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_next_upstream error timeout http_502 http_503 non_idempotent;
        proxy_read_timeout 300s;{rest_split}
        location / {{
            proxy_pass http://tfrun_rest;
        }}
    }}
    server {{
        listen 127.0.0.1:{grpc_port} http2;
        grpc_read_timeout 300s;
        grpc_next_upstream error timeout http_502 http_503 non_idempotent;
        location / {{
            grpc_pass grpc://tfrun_grpc;{grpc_split}
        }}
    }}
}}
"""


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (nginx's workers), read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


@dataclass
class Balancer:
    """An nginx master started here (`daemon off`, so its PID is ours) and the folder it writes in."""

    folder: Path
    rest_port: int
    grpc_port: int
    upstreams: list[Upstream]
    split: dict[str, int] = field(default_factory=dict)
    proc: Optional[subprocess.Popen] = field(default=None, repr=False)
    pid: int = 0
    argv: list[str] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.folder / "nginx.conf"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def access_log(self) -> Path:
        return self.folder / "access.log"

    @property
    def error_log(self) -> Path:
        return self.folder / "error.log"

    def write(self, max_body_bytes: int) -> None:
        (self.folder / "tmp").mkdir(parents=True, exist_ok=True)
        text = config_text(
            self.folder,
            self.upstreams,
            rest_port=self.rest_port,
            grpc_port=self.grpc_port,
            split=self.split or None,
            max_body_bytes=max_body_bytes,
        )
        tmp = self.conf.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.conf)

    def start(self, *, detached: bool, max_body_bytes: int = 64 << 20) -> None:
        """Write the config and start nginx (not waiting for it: see wait_listening)."""
        binary = nginx_path()
        if binary is None:
            raise RuntimeError(f"nginx is not installed: run {NGINX_SETUP} (apt-get install nginx)")
        self.write(max_body_bytes)
        folder = str(self.folder.resolve())
        self.argv = [binary, "-e", str(self.error_log.resolve()), "-c", str(self.conf.resolve()), "-p", folder + "/"]
        with open(self.folder / "nginx.out", "ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                close_fds=True,
                start_new_session=detached,
                preexec_fn=None if detached else die_with_parent(),
            )
        self.pid = self.proc.pid

    def alive(self) -> bool:
        from tfrun.tasks.tfserving.backends import pid_alive

        if self.proc is not None:
            return self.proc.poll() is None
        return pid_alive(self.pid)

    def wait_listening(self, timeout: float) -> None:
        """Until both ports accept connections, or RuntimeError with nginx's own words."""
        from tfrun.tasks.tfserving.backends import port_open

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError("nginx exited at start: " + " | ".join(self.log_tail()))
            if port_open("127.0.0.1", self.rest_port) and port_open("127.0.0.1", self.grpc_port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"nginx did not open ports {self.rest_port}/{self.grpc_port} within {timeout:g} s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the master (nginx's fast shutdown stops its workers), then any worker left."""
        from tfrun.tasks.tfserving.backends import stop_pid

        workers = _children(self.pid) if self.pid else []
        stop_pid(self.pid, timeout)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        for pid in workers:
            stop_pid(pid, 2.0)

    def pids(self) -> list[int]:
        """The master and its workers (what must be gone once the group is stopped)."""
        return [self.pid, *_children(self.pid)] if self.pid else []

    def log_tail(self, lines: int = 10) -> list[str]:
        text: list[str] = []
        for path in (self.error_log, self.folder / "nginx.out"):
            try:
                text += [t for t in path.read_text(errors="replace").splitlines() if t.strip()]
            except OSError:
                pass
        return text[-lines:]


@dataclass
class LogLine:
    """One request as nginx logged it."""

    port: int  # the balancer port it came in on (REST or gRPC)
    status: int
    label: str  # split_clients' pick ('-' without a split)
    uri: str  # after the rewrite: a REST call's effective label is in it
    upstream: str  # the replica that answered last ('-' if none did)

    @property
    def rest_label(self) -> Optional[str]:
        """The label a REST call was served under (None when it named a version or is not a model call)."""
        m = REST_LABEL_RE.search(self.uri)
        return m.group(1) if m else None


REST_LABEL_RE = re.compile(r"/labels/([^/:]+):(?:predict|classify|regress)$")


def read_access_log(path: Path) -> list[LogLine]:
    rows: list[LogLine] = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return rows
    for line in text.splitlines():
        parts = line.split(" ", 5)
        if len(parts) < 6:
            continue
        _, port, status, label, uri, upstream = parts
        try:
            rows.append(LogLine(int(port), int(status), label, uri, upstream.split(",")[-1].split(" : ")[-1].strip()))
        except ValueError:
            continue
    return rows


@dataclass
class Counts:
    """What the balancer saw: requests per replica and protocol, REST calls per label, statuses."""

    replicas: dict[int, Counter]
    rest_labels: Counter
    statuses: Counter

    def as_record(self) -> dict:
        return {
            "replicas": {str(i): dict(c) for i, c in self.replicas.items()},
            "rest_labels": dict(self.rest_labels),
            "statuses": dict(self.statuses),
        }


def count(path: Path, upstreams: list[Upstream]) -> Counts:
    """Requests each replica answered (by protocol), REST calls per effective label, HTTP statuses."""
    by_address: dict[str, tuple[int, str]] = {}
    for i, u in enumerate(upstreams):
        by_address[f"{u.host}:{u.rest_port}"] = (i, "rest")
        by_address[f"{u.host}:{u.grpc_port}"] = (i, "grpc")
    counts = Counts({i: Counter() for i in range(len(upstreams))}, Counter(), Counter())
    for row in read_access_log(path):
        counts.statuses[str(row.status)] += 1
        label = row.rest_label
        if label is not None:
            counts.rest_labels[label] += 1
        who = by_address.get(row.upstream)
        if who is not None:
            counts.replicas[who[0]][who[1]] += 1
    return counts
