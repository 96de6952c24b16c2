"""The replicas of a running CustomJob or tuning trial as local processes, judged as Vertex judges them.

Rules (one `ReplicaSet.run()` per job or trial):
  * the job SUCCEEDS when the chief (workerpool0-0) exits 0; the other replicas (parameter servers never
    exit by themselves) are then stopped;
  * it FAILS when any replica exits with a non-zero status (error: Vertex's "The replica workerpool1-0
    exited with a non-zero status of 1. Termination reason: Error." with the tail of the replica's log);
  * a replica killed by a signal it did not get from the fake (a VM that went away) is RESTARTED with the
    same argv and environment, up to `max_restarts` times per replica (the fake's setting
    `maxReplicaRestarts`, default 1; 0 when scheduling.disableRetries). With
    scheduling.restartJobOnWorkerRestart every replica is restarted with it (Vertex restarts the whole
    job, which is what TensorFlow's MultiWorkerMirroredStrategy needs to resume from a checkpoint);
  * scheduling.timeout ends the job FAILED with DEADLINE_EXCEEDED; a cancel stops every replica.
Each replica runs in its own session and working directory (`<workdir>/training/<job>/[trial-<id>/]
workerpool<N>-<i>/`, its own disk as on a VM), logs to `workerpool<N>-<i>.log` beside it, and is stopped by
its process group: SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .cluster import ReplicaPlan, process_env
from .wire import ApiError

POLL = 0.05  # seconds between looks at the replicas
GRACE = 5.0  # seconds between SIGTERM and SIGKILL


@dataclass
class Replica:
    plan: ReplicaPlan
    log_path: Path
    job: str
    trial: str | None
    process: subprocess.Popen | None = None
    restarts: int = 0
    stopping: bool = False  # stopped by the fake: its exit is not judged
    pids: list[int] = field(default_factory=list)  # every process it has been, first to last
    started: float = 0.0
    ended: float | None = None

    @property
    def name(self) -> str:
        return self.plan.name

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        self.stopping, self.ended = False, None
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.plan.argv,
                env=process_env(self.plan.env, self.plan.installed),
                cwd=self.plan.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pids.append(self.process.pid)
        self.started = time.time()

    def note(self, text: str) -> None:
        with open(self.log_path, "a") as log:
            log.write(f"--- fake-vertex: {text} ---\n")

    def stop(self, grace: float = GRACE) -> None:
        """SIGTERM the replica's process group, SIGKILL it after `grace`; its exit is not judged."""
        self.stopping = True
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(grace)
        _signal_group(process.pid, signal.SIGKILL)  # children it left behind in its session
        self.ended = self.ended or time.time()

    def log_tail(self, lines: int = 12) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(line for line in text[-lines:] if not line.startswith("--- fake-vertex:"))

    def as_dict(self) -> dict:
        process = self.process
        return {
            "job": self.job,
            "trial": self.trial,
            "name": self.name,
            "pool": self.plan.pool,
            "index": self.plan.index,
            "taskType": self.plan.task_type,
            "address": self.plan.address,
            "pid": process.pid if process else None,
            "alive": self.alive(),
            "pids": list(self.pids),
            "returncode": process.returncode if process else None,
            "restarts": self.restarts,
            "log": str(self.log_path),
            "workdir": str(self.plan.workdir),
            "argv": self.plan.argv,
            "env": self.plan.env,
            "started": self.started,
            "ended": self.ended,
        }


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def failure(replica: Replica, returncode: int) -> ApiError:
    """Vertex's error for a replica that ended the job (code 3), with the tail of its log."""
    if returncode < 0:
        try:
            signame = signal.Signals(-returncode).name
        except ValueError:
            signame = "unknown signal"
        status = f"{128 - returncode} (killed by signal {-returncode}, {signame}, after {replica.restarts} restart(s))"
    else:
        status = str(returncode)
    message = (
        f"The replica {replica.name} exited with a non-zero status of {status}. Termination reason: "
        f"Error.\n{replica.log_tail()}\nTo find out more about why your job exited please check the "
        f"logs: {replica.log_path}"
    )
    return ApiError("INVALID_ARGUMENT", message)


class ReplicaSet:
    """The replicas of one job or trial, started together and judged together."""

    def __init__(
        self,
        plans: list[ReplicaPlan],
        job: str,
        trial: str | None,
        *,
        max_restarts: int,
        restart_all: bool,
        timeout: float | None,
    ) -> None:
        self.replicas = [Replica(plan, plan.workdir.parent / f"{plan.name}.log", job, trial) for plan in plans]
        self.max_restarts = max_restarts
        self.restart_all = restart_all
        self.timeout = timeout
        self.lock = threading.Lock()  # starting a replica and halting the set exclude each other
        self.halted = False  # set when the fake stops or resets: no replica of this set starts again

    @property
    def chief(self) -> Replica:
        return self.replicas[0]

    def _start(self, replica: Replica) -> None:
        """Start one replica; a command that cannot be executed fails the job as a container's exit 127 does."""
        with self.lock:
            if self.halted:
                return
            try:
                replica.start()
            except OSError as exc:
                replica.note(f"cannot execute {replica.plan.argv[0]!r}: {exc}")
                raise ApiError(
                    "INVALID_ARGUMENT",
                    f"The replica {replica.name} exited with a non-zero status of "
                    f"127. Termination reason: Error.\nexec {replica.plan.argv[0]!r} failed: {exc}\n"
                    f"To find out more about why your job exited please check the logs: "
                    f"{replica.log_path}",
                ) from None

    def halt(self) -> None:
        """Stop every replica for good (the fake stops or resets): none starts or restarts after this."""
        with self.lock:
            self.halted = True
        self.stop()

    def stop(self, but: Replica | None = None) -> None:
        """Stop every replica (but one) at once: SIGTERM all, then wait for each."""
        others = [r for r in self.replicas if r is not but]
        for replica in others:
            replica.stopping = True
            if replica.alive():
                _signal_group(replica.process.pid, signal.SIGTERM)
        for replica in others:
            replica.stop()

    def run(self, cancelled: threading.Event) -> tuple[str, ApiError | None]:
        """Start the replicas, watch them until the job ends: ("SUCCEEDED"|"FAILED"|"CANCELLED", error)."""
        deadline = time.monotonic() + self.timeout if self.timeout else None
        try:
            for replica in self.replicas:
                self._start(replica)
        except ApiError as error:
            self.stop()
            return "FAILED", error
        try:
            while True:
                if cancelled.wait(POLL) or self.halted:
                    return "CANCELLED", None
                if deadline is not None and time.monotonic() > deadline:
                    return "FAILED", ApiError(
                        "DEADLINE_EXCEEDED",
                        f"The job ran longer than its timeout of "
                        f"{self.timeout:g} s (scheduling.timeout) and was stopped.",
                    )
                outcome = self._look()
                if outcome is not None:
                    return outcome
        finally:
            self.stop()

    def _look(self) -> tuple[str, ApiError | None] | None:
        ended = []
        for replica in self.replicas:
            code = replica.process.poll() if replica.process else None
            if code is not None and not replica.stopping and replica.ended is None:
                ended.append((replica, code))
        # signal kills first: a peer that fails because a killed replica went away is not the cause
        for replica, code in sorted(ended, key=lambda item: item[1] >= 0):
            replica.ended = time.time()
            if replica is self.chief and code == 0:
                replica.note("exited 0: the job succeeded")
                return "SUCCEEDED", None
            if code == 0:
                replica.note("exited 0")
                continue
            if code < 0 and replica.restarts < self.max_restarts:
                try:
                    self._restart(replica, code)
                except ApiError as error:
                    return "FAILED", error
                if self.restart_all:
                    return None  # every replica was restarted: the other exits seen here are moot
                continue
            replica.note(f"exited with status {code}: the job failed")
            return "FAILED", failure(replica, code)
        return None

    def _restart(self, replica: Replica, code: int) -> None:
        _signal_group(replica.process.pid, signal.SIGKILL)  # what the dead process left in its session
        group = self.replicas if self.restart_all else [replica]
        if self.restart_all:
            self.stop(but=replica)
        _wait_until_free([member.plan.address for member in group])
        for member in group:
            member.restarts += 1
            member.note(
                f"{'the job is' if self.restart_all else 'replica'} restarted ("
                + (f"killed by signal {-code}" if member is replica else f"{replica.name} was killed")
                + f"), restart {member.restarts} of {self.max_restarts}"
            )
            self._start(member)

    def snapshot(self) -> list[dict]:
        return [r.as_dict() for r in self.replicas]


class Training:
    """Every replica set of the fake, for /_fake/state, reset and shutdown."""

    def __init__(self, workdir: Path, max_restarts: int = 1) -> None:
        self.root = workdir / "training"
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.sets: dict[tuple[str, str | None], ReplicaSet] = {}
        self.closed = False
        self.default_restarts = max_restarts
        self.max_restarts = max_restarts

    def folder(self, job_id: str, trial_id: str | None = None) -> Path:
        path = self.root / job_id / (f"trial-{trial_id}" if trial_id else "")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def add(self, job: str, trial: str | None, replicas: ReplicaSet) -> None:
        with self.lock:
            if self.closed:
                raise ApiError("UNAVAILABLE", "fake-vertex is stopping.")
            self.sets[(job, trial)] = replicas

    def forget(self, job: str) -> None:
        with self.lock:
            for key in [k for k in self.sets if k[0] == job]:
                self.sets.pop(key)

    def stop_all(self, close: bool = False, forget: bool = False) -> None:
        with self.lock:
            self.closed = self.closed or close
            sets = list(self.sets.values())
            if forget:
                self.sets.clear()
                self.max_restarts = self.default_restarts
        for replicas in sets:
            replicas.halt()

    def snapshot(self) -> list[dict]:
        with self.lock:
            sets = list(self.sets.values())
        return [replica for replicas in sets for replica in replicas.snapshot()]


def _wait_until_free(addresses: list[str], timeout: float = 15.0) -> None:
    """Wait (bounded) until nothing listens on the replicas' addresses: a restarted replica takes its old address
    (as on Vertex), and the training process of the one it replaces leaves with its runner a moment later."""
    import socket

    deadline = time.monotonic() + timeout
    for address in addresses:
        host, _, port = address.rpartition(":")
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((host, int(port)))
                    break
                except OSError:
                    time.sleep(0.1)
