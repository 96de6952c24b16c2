"""A group of TF Serving replicas behind nginx: start, change what they serve one replica at a time, stop.

Each replica is one server (embedded, binary or docker: the backend's own process) reading its
own model config file, TF Serving's `model_config_list` with a `specific` version policy and
`version_labels`, re-read every `config_poll_seconds` (`--model_config_file_poll_wait_seconds`).
So the files work for tensorflow_model_server as they are.

Changing what the group serves (a rolling update, a rollback, a label moved by job=promote) is
`ReplicaGroup.apply(versions, labels)`, replica by replica; the next replica is touched only once
the one before it reports, through TF Serving's ModelService, what it was asked:
  1. its file lists the old versions and the new ones: wait until the new ones are AVAILABLE;
  2. the labels move (still with every version loaded): wait until each label resolves to its version;
  3. versions no longer wanted leave the file: wait until they are no longer AVAILABLE.
At every moment each replica answers unlabelled requests with a loaded version (the newest), and
labelled ones with a loaded version, so requests through the balancer do not fail.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional

from tfrun.tasks.tfserving import backends
from tfrun.tasks.tfserving.balancer import Balancer, Counts, Upstream, count

GROUP_FILE = "group.json"  # what job=promote needs to find a kept-running group again
RUNNING = ".groups"  # <model dir>/.groups/<id>.json: the groups serving that model (no server reads a dot folder)


def model_config_text(model_name: str, base_path: str, versions: list[int], labels: dict[str, int]) -> str:
    """A text ModelServerConfig serving `versions` of one model, with `labels`."""
    version_lines = " ".join(f"versions: {v}" for v in sorted(set(versions)))
    label_lines = "".join(f'    version_labels {{ key: "{k}" value: {int(v)} }}\n' for k, v in sorted(labels.items()))
    return (
        "# Written by tfrun (tasks/tfserving/replicas.py); re-read by the server every few seconds.\n"
        "model_config_list {\n"
        "  config {\n"
        f'    name: "{model_name}"\n'
        f'    base_path: "{base_path}"\n'
        '    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ specific {{ {version_lines} }} }}\n"
        f"{label_lines}"
        "  }\n"
        "}\n"
    )


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass
class Replica:
    index: int
    host: str
    grpc_port: int
    rest_port: int
    config_file: Path
    log: Path
    pid: int = 0
    server: Optional[backends.ServerProcess] = field(default=None, repr=False)

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"


class GroupError(RuntimeError):
    """A replica did not reach the state it was asked for; the message names the replica and the state."""

    user_facing = True


@dataclass
class ReplicaGroup:
    """N replicas, their config files and the nginx in front of them."""

    model_name: str
    served_base_path: str  # base_path as the servers see it (inside the container for docker)
    backend: str
    folder: Path
    replicas: list[Replica]
    balancer: Balancer
    versions: list[int]
    labels: dict[str, int]
    model_dir: str = ""  # the model's folder on this machine (its .groups/ lists the groups serving it)
    request_timeout_s: float = 30.0

    # ------------------------------------------------------------------------------------ start
    @classmethod
    def start(
        cls,
        *,
        backend: str,
        template: backends.ServerSpec,
        replicas: int,
        folder: Path,
        versions: list[int],
        labels: dict[str, int],
        split: dict[str, int],
        config_poll_seconds: int,
        balancer_ports: tuple[int, int] = (0, 0),
        detached: bool,
        timeout: float,
    ) -> "ReplicaGroup":
        """Start every replica on free ports, wait until each serves, then nginx in front of them."""
        folder.mkdir(parents=True, exist_ok=True)
        served = f"/models/{template.model_name}" if backend == "docker" else str(Path(template.base_path).resolve())
        text = model_config_text(template.model_name, served, versions, labels)
        members: list[Replica] = []
        rest_port, grpc_port = balancer_ports
        balancer = Balancer(
            folder=folder / "nginx",
            rest_port=rest_port or backends.free_port(),
            grpc_port=grpc_port or backends.free_port(),
            upstreams=[],
            split=dict(split),
        )
        group = cls(
            template.model_name,
            served,
            backend,
            folder,
            members,
            balancer,
            sorted(versions),
            dict(labels),
            model_dir=str(Path(template.base_path).resolve()),
        )
        try:
            for i in range(replicas):
                config = folder / f"replica-{i}.config"
                write_atomic(config, text)
                spec = replace(
                    template,
                    grpc_port=0,
                    rest_port=0,
                    model_config_file=config,
                    config_poll_seconds=config_poll_seconds,
                    container_name="",
                ).with_free_ports()
                taken = {balancer.rest_port, balancer.grpc_port}
                taken |= {p for r in members for p in (r.grpc_port, r.rest_port)}
                while {spec.grpc_port, spec.rest_port} & taken:  # free ports are picked before anything binds them
                    spec.grpc_port = spec.rest_port = 0
                    spec.with_free_ports()
                log = folder / f"replica-{i}.log"
                server = backends.start(backend, spec, log_path=log, detached=detached)
                members.append(
                    Replica(i, spec.client_host, spec.grpc_port, spec.rest_port, config, log, server.pid, server)
                )
            for r in members:
                assert r.server is not None
                backends.wait_serving(r.server, timeout)
            for r in members:
                group.wait_replica(r, versions, labels, timeout)
            balancer.upstreams = [Upstream(r.host, r.grpc_port, r.rest_port) for r in members]
            balancer.start(detached=detached, max_body_bytes=template.max_request_bytes)
            balancer.wait_listening(timeout)
        except BaseException:
            group.stop()
            raise
        group.save()
        return group

    # ------------------------------------------------------------------------------- the record
    def save(self) -> None:
        """group.json beside the config files (ports, files, what it serves), and the group's entry in its model's
        .groups/ folder: how job=promote finds the groups serving a model."""
        write_atomic(self.folder / GROUP_FILE, json.dumps(self.describe(), indent=2))
        running = Path(self.model_dir) / RUNNING
        running.mkdir(exist_ok=True)
        write_atomic(running / f"{self.entry_name}.json", json.dumps({"group": str(self.folder.resolve())}))

    @property
    def entry_name(self) -> str:
        import hashlib

        return hashlib.sha256(str(self.folder.resolve()).encode()).hexdigest()[:16]

    def forget(self) -> None:
        """Take the group off its model's .groups/ (it stopped)."""
        if self.model_dir:
            (Path(self.model_dir) / RUNNING / f"{self.entry_name}.json").unlink(missing_ok=True)

    def describe(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "served_base_path": self.served_base_path,
            "backend": self.backend,
            "versions": self.versions,
            "labels": self.labels,
            "model_dir": self.model_dir,
            "balancer": {
                "rest_url": self.balancer.rest_url,
                "grpc_target": self.balancer.grpc_target,
                "pid": self.balancer.pid,
                "config": self.balancer.conf.name,
                "split": self.balancer.split,
            },
            "replicas": [
                {
                    "index": r.index,
                    "grpc_target": r.grpc_target,
                    "rest_url": r.rest_url,
                    "pid": r.pid,
                    "config_file": r.config_file.name,
                    "log": r.log.name,
                }
                for r in self.replicas
            ],
        }

    @classmethod
    def load(cls, folder: Path) -> "ReplicaGroup":
        """A running group from its group.json (no processes of ours: the files and ports are enough)."""
        doc = json.loads((folder / GROUP_FILE).read_text())
        members = []
        for r in doc["replicas"]:
            host, port = r["grpc_target"].rsplit(":", 1)
            rest_port = int(r["rest_url"].rsplit(":", 1)[1])
            members.append(
                Replica(r["index"], host, int(port), rest_port, folder / r["config_file"], folder / r["log"], r["pid"])
            )
        b = doc["balancer"]
        balancer = Balancer(
            folder=folder / "nginx",
            rest_port=int(b["rest_url"].rsplit(":", 1)[1]),
            grpc_port=int(b["grpc_target"].rsplit(":", 1)[1]),
            upstreams=[Upstream(r.host, r.grpc_port, r.rest_port) for r in members],
            split=dict(b.get("split") or {}),
            pid=int(b["pid"]),
        )
        return cls(
            doc["model_name"],
            doc["served_base_path"],
            doc["backend"],
            folder,
            members,
            balancer,
            [int(v) for v in doc["versions"]],
            {k: int(v) for k, v in doc["labels"].items()},
            model_dir=doc.get("model_dir", ""),
        )

    @classmethod
    def running(cls, model_dir: Path) -> list["ReplicaGroup"]:
        """The groups serving the model of `model_dir` now (their nginx answers to its PID); stale entries dropped."""
        groups = []
        for entry in sorted((model_dir / RUNNING).glob("*.json")):
            try:
                group = cls.load(Path(json.loads(entry.read_text())["group"]))
            except (OSError, ValueError, KeyError):
                entry.unlink(missing_ok=True)
                continue
            if group.alive():
                groups.append(group)
            else:
                entry.unlink(missing_ok=True)
        return groups

    # ------------------------------------------------------------------------------- processes
    @property
    def pid(self) -> int:
        return self.balancer.pid

    @property
    def argv(self) -> list[str]:
        return self.balancer.argv

    @property
    def log_path(self) -> Path:
        return self.balancer.error_log

    @property
    def spec(self) -> backends.ServerSpec:
        """Where clients go: the balancer's ports."""
        return backends.ServerSpec(
            model_name=self.model_name,
            base_path=Path(self.served_base_path),
            host="127.0.0.1",
            grpc_port=self.balancer.grpc_port,
            rest_port=self.balancer.rest_port,
        )

    def pids(self) -> list[int]:
        """Every process of the group: nginx's master and workers, each replica."""
        return [*self.balancer.pids(), *(r.pid for r in self.replicas if r.pid)]

    def alive(self) -> bool:
        if not self.balancer.alive():
            return False
        return all(r.server.alive() if r.server else backends.pid_alive(r.pid) for r in self.replicas)

    def stop(self) -> None:
        """nginx first (no new requests reach a stopping replica), then each replica, by PID."""
        self.forget()
        if self.balancer.pid:
            self.balancer.stop()
        for r in self.replicas:
            if r.server is not None:
                r.server.stop()
            elif r.pid:
                backends.stop_pid(r.pid)

    def stop_command(self) -> str:
        pids = [self.balancer.pid, *(r.pid for r in self.replicas)]
        return "kill " + " ".join(str(p) for p in pids if p)

    def log_tail(self, lines: int = 10) -> list[str]:
        tail = [f"nginx: {t}" for t in self.balancer.log_tail(lines)]
        for r in self.replicas:
            if r.server is not None:
                tail += [f"replica {r.index}: {t}" for t in r.server.log_tail(lines)]
        return tail[-4 * lines :]

    def counts(self) -> Counts:
        """Requests per replica (nginx's access log, by upstream address), REST calls per label, statuses."""
        return count(self.balancer.access_log, self.balancer.upstreams)

    # ---------------------------------------------------------------------------- changing it
    def _client(self, replica: Replica) -> Any:
        from tfrun.tasks.tfserving.clients import GrpcClient

        return GrpcClient(replica.grpc_target, timeout=min(5.0, self.request_timeout_s), retries=2)

    def write(self, replica: Replica, versions: list[int], labels: dict[str, int]) -> None:
        write_atomic(replica.config_file, model_config_text(self.model_name, self.served_base_path, versions, labels))

    def wait_replica(
        self,
        replica: Replica,
        versions: list[int],
        labels: dict[str, int],
        timeout: float,
        gone: tuple[int, ...] = (),
    ) -> float:
        """Seconds until the replica serves every version AVAILABLE, resolves each label to its version and
        serves none of `gone` (its ModelService says so), or GroupError."""
        from tfrun.tasks.tfserving.clients import ServingRequestError

        started = time.monotonic()
        client = self._client(replica)
        last = "no answer yet"
        try:
            while True:
                if replica.server is not None and not replica.server.alive():
                    raise GroupError(
                        f"replica {replica.index} ({replica.grpc_target}) exited: "
                        + " | ".join(replica.server.log_tail(5))
                    )
                try:
                    answer = client.status(self.model_name)
                    states = {s["version"]: s["state"] for s in answer}
                    errors = {s["version"]: s["error_code"] for s in answer if s["state"] == "END"}
                    missing = [v for v in versions if states.get(v) != "AVAILABLE"]
                    lingering = [v for v in gone if states.get(v) == "AVAILABLE"]
                    wrong = {k: v for k, v in labels.items() if self._label_version(client, k) != v}
                    if not missing and not lingering and not wrong:
                        return round(time.monotonic() - started, 3)
                    last = (
                        f"versions {states}"
                        + (f", waiting for {missing}" if missing else "")
                        + (f", still serving {lingering}" if lingering else "")
                        + (f", labels not yet {wrong}" if wrong else "")
                    )
                    failed = [v for v in missing if errors.get(v, "OK") != "OK"]
                    if failed and not lingering:
                        raise GroupError(
                            f"replica {replica.index}: {self.model_name} version {failed[0]} failed to load "
                            f"(see {replica.log.name})"
                        )
                except ServingRequestError as err:
                    last = f"{err.code}: {err.message}"
                if time.monotonic() - started > timeout:
                    raise GroupError(
                        f"replica {replica.index} ({replica.grpc_target}) not ready after {timeout:g} s: {last}"
                    )
                time.sleep(0.05)
        finally:
            client.close()

    def _label_version(self, client: Any, label: str) -> Optional[int]:
        """The version a label resolves to at one replica (GetModelMetadata by label), None if it does not."""
        from tensorflow_serving.apis import get_model_metadata_pb2

        from tfrun.tasks.tfserving.clients import ServingRequestError

        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = self.model_name
        request.model_spec.version_label = label
        request.metadata_field.append("signature_def")
        try:
            return int(client.call(client.prediction.GetModelMetadata, request).model_spec.version.value)
        except ServingRequestError:
            return None

    def apply(
        self,
        versions: list[int],
        labels: dict[str, int],
        *,
        timeout: float,
        on_replica: Optional[Callable[[Replica, dict[str, Any]], None]] = None,
    ) -> list[dict[str, Any]]:
        """Serve `versions` with `labels` on every replica, one replica at a time (see the module's docstring)."""
        wanted = sorted(set(versions) | set(labels.values()))
        steps = []
        for r in self.replicas:
            both = sorted(set(self.versions) | set(wanted))
            done: dict[str, Any] = {"replica": r.index}
            self.write(r, both, self.labels)
            done["loaded_s"] = self.wait_replica(r, wanted, self.labels, timeout)
            if labels != self.labels:
                self.write(r, both, labels)
                done["labels_s"] = self.wait_replica(r, wanted, labels, timeout)
            self.write(r, wanted, labels)
            gone = tuple(v for v in both if v not in wanted)
            done["unloaded_s"] = self.wait_replica(r, wanted, labels, timeout, gone=gone)
            steps.append(done)
            if on_replica is not None:
                on_replica(r, done)
        self.versions, self.labels = wanted, dict(labels)
        self.save()
        return steps

    def roll(self, version: int, *, timeout: float) -> list[dict[str, Any]]:
        """A rolling update to `version` (or a rollback to it): every label moves there too."""
        return self.apply([version], {k: version for k in self.labels}, timeout=timeout)

    def move_label(self, label: str, version: int, *, timeout: float) -> list[dict[str, Any]]:
        """Point one label at `version` on every replica; versions no label names any more are unloaded (a request
        naming neither a version nor a label gets the newest version a label names)."""
        labels = {**self.labels, label: version}
        return self.apply(sorted(set(labels.values())), labels, timeout=timeout)
