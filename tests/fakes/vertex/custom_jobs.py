"""JobService for CustomJobs (create, get, list, cancel, delete), whose replicas really run (replicas.py).

create validates the job (display name, worker pools, machines: cluster.py) and answers it
JOB_STATE_PENDING; a thread then works out every replica's command and environment (a pythonPackageSpec
whose package is not in the GCS emulator, or an image the fake cannot run, ends the job FAILED), starts
them (JOB_STATE_RUNNING) and ends the job SUCCEEDED, FAILED (`error` names the replica and its log tail)
or, after `:cancel` (JOB_STATE_CANCELLING), CANCELLED once every replica has stopped. An injected `job`
fault (control.py) ends the job FAILED with the fault's error and starts no replica. delete is a
long-running operation and refuses a job that has not ended. `TrainingJobService` holds what CustomJobs and
HyperparameterTuningJobs share; tuning.py adds the latter.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable

from .cluster import check_job_spec, plan_replicas
from .replicas import ReplicaSet
from .wire import ApiError, now

if TYPE_CHECKING:
    from .control import FaultRule
    from .server import Fake, Request

FILTER_FIELDS = {"displayName", "labels", "state", "name", "createTime", "updateTime", "startTime", "endTime"}
TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED",
            "JOB_STATE_PARTIALLY_SUCCEEDED"}
CANCELLED_ERROR = {"code": 1, "message": "CANCELED"}


def seconds(duration: Any) -> float | None:
    """A proto Duration as JSON ("30s", "1.5s") in seconds; None when unset."""
    if not duration:
        return None
    try:
        return float(str(duration).rstrip("s"))
    except ValueError:
        raise ApiError("INVALID_ARGUMENT", f"Invalid duration {duration!r}.") from None


class TrainingJobService:
    """get, list, cancel, delete and the job thread's bookkeeping of one job collection."""

    collection = ""
    noun = ""
    snake = ""  # the request field, for error messages

    def __init__(self, fake: "Fake") -> None:
        self.fake = fake
        self.store = fake.store
        self.cancel_events: dict[str, threading.Event] = {}

    def _new(self, req: "Request", project: str, location: str, fields: dict) -> tuple[dict, threading.Event,
                                                                                    "FaultRule | None"]:
        """Store a new PENDING job; its cancel event and the injected `job` fault of this call, if any."""
        stamp = now()
        job = {**fields, "name": self.store.name(project, location, self.collection, self.fake.new_id()),
               "state": "JOB_STATE_PENDING", "createTime": stamp, "updateTime": stamp}
        with self.store.lock:
            self.store.put(self.collection, job)
            self.cancel_events[job["name"]] = cancelled = threading.Event()
        return job, cancelled, req.take_fault("job")

    def _display_name(self, body: dict) -> None:
        if not body.get("displayName"):
            raise ApiError("INVALID_ARGUMENT", f"List of found errors:\t1.Field: {self.snake}.display_name; "
                           "Message: Required field is not set.")

    def _job(self, project: str, location: str, job: str) -> dict:
        return self.store.get(self.collection, self.store.name(project, location, self.collection, job), self.noun)

    def get(self, req: "Request", project: str, location: str, job: str) -> dict:
        with self.store.lock:
            return dict(self._job(project, location, job))

    def list(self, req: "Request", project: str, location: str) -> dict:
        with self.store.lock:
            page, token = self.store.list(self.collection, self.store.parent(project, location),
                                          req.query.get("filter"), FILTER_FIELDS, req.int_query("pageSize"),
                                          req.query.get("pageToken"))
        out: dict = {self.collection: page} if page else {}
        if token:
            out["nextPageToken"] = token
        return out

    def cancel(self, req: "Request", project: str, location: str, job: str) -> dict:
        with self.store.lock:
            stored = self._job(project, location, job)
            if stored["state"] in TERMINAL:
                raise ApiError("FAILED_PRECONDITION", f'{self.noun} "{stored["name"]}" is in state '
                               f'{stored["state"]} and cannot be cancelled.')
            if stored["state"] != "JOB_STATE_CANCELLING":
                self._set(stored, "JOB_STATE_CANCELLING")
                self.cancel_events[stored["name"]].set()
        return {}

    def delete(self, req: "Request", project: str, location: str, job: str) -> dict:
        with self.store.lock:
            stored = self._job(project, location, job)
            if stored["state"] not in TERMINAL:
                raise ApiError("FAILED_PRECONDITION", f'{self.noun} "{stored["name"]}" is in state '
                               f"{stored['state']}: cancel it before deleting it.")
            op = self.fake.ops.start(self.store.parent(project, location), "DeleteOperationMetadata")
            if (rule := req.take_fault("operation")) is not None:
                self.fake.fail_later(op, rule.error())
                return op
            self.store.delete(self.collection, stored["name"])
            self.cancel_events.pop(stored["name"], None)
            self.fake.training.forget(stored["name"])
            return self.fake.ops.succeed(op, None)

    def cancel_all(self) -> None:
        with self.store.lock:
            for event in self.cancel_events.values():
                event.set()
            self.cancel_events.clear()

    def _set(self, job: dict, state: str, **fields: Any) -> None:
        with self.store.lock:
            job.update(fields, state=state, updateTime=now())
            self.store.changed.notify_all()

    def _end(self, job: dict, state: str, error: ApiError | dict | None = None) -> None:
        fields: dict[str, Any] = {"endTime": now()}
        if state == "JOB_STATE_CANCELLED":
            fields["error"] = CANCELLED_ERROR
        elif error is not None:
            fields["error"] = error.rpc_status() if isinstance(error, ApiError) else error
        self._set(job, state, **fields)

    def _restart_policy(self, spec: dict) -> tuple[int, bool, float | None]:
        """(restarts allowed per replica, restart the whole job on one, timeout in seconds) of a job spec."""
        scheduling = spec.get("scheduling") or {}
        restarts = 0 if scheduling.get("disableRetries") else self.fake.training.max_restarts
        return restarts, bool(scheduling.get("restartJobOnWorkerRestart")), seconds(scheduling.get("timeout"))

    def run_replicas(self, spec: dict, job_name: str, job_id: str, cancelled: threading.Event, *,
                     trial: dict | None = None, metric_tag: str = "",
                     on_start: Callable[[], None] | None = None) -> tuple[str, ApiError | None, ReplicaSet | None]:
        """Plan, start and watch one set of replicas (a job or a trial): (state, error, the replicas)."""
        trial_id = trial["id"] if trial else None
        if cancelled.is_set():
            return "CANCELLED", None, None
        try:
            plans = plan_replicas(spec, job_id, self.fake.training.folder(job_id, trial_id), self.fake.gcs,
                                  self.fake.storage_endpoint, trial=trial, metric_tag=metric_tag)
        except ApiError as error:
            return "FAILED", error, None
        restarts, restart_all, timeout = self._restart_policy(spec)
        replicas = ReplicaSet(plans, job_name, trial_id, max_restarts=restarts, restart_all=restart_all,
                              timeout=timeout)
        self.fake.training.add(job_name, trial_id, replicas)
        if on_start is not None:
            on_start()
        state, error = replicas.run(cancelled)
        return state, error, replicas


class CustomJobService(TrainingJobService):
    collection = "customJobs"
    noun = "CustomJob"
    snake = "custom_job"

    def create(self, req: "Request", project: str, location: str) -> dict:
        body = req.json()
        self._display_name(body)
        spec = check_job_spec(body.get("jobSpec"))
        job, cancelled, rule = self._new(req, project, location, {**body, "jobSpec": spec})
        with self.store.lock:
            answer = dict(job)
        threading.Thread(target=self._run, args=(job, rule, cancelled), name=f"custom-job-{job['name']}",
                         daemon=True).start()
        return answer

    def _run(self, job: dict, rule: "FaultRule | None", cancelled: threading.Event) -> None:
        job_id = job["name"].rsplit("/", 1)[-1]
        try:
            if rule is not None:
                state, error = ("JOB_STATE_CANCELLED", None) if cancelled.wait(0.2) else ("JOB_STATE_FAILED",
                                                                                          rule.error())
                self._end(job, state, error)
                return
            state, error, _ = self.run_replicas(job["jobSpec"], job["name"], job_id, cancelled,
                                                on_start=lambda: self._mark_running(job))
            self._end(job, "JOB_STATE_CANCELLED" if cancelled.is_set() else f"JOB_STATE_{state}", error)
        except Exception as exc:  # a bug of the fake: fail the job visibly
            self._end(job, "JOB_STATE_FAILED", {"code": 13, "message": f"fake-vertex training error: {exc!r}"})

    def _mark_running(self, job: dict) -> None:
        with self.store.lock:
            if job["state"] == "JOB_STATE_PENDING":
                self._set(job, "JOB_STATE_RUNNING", startTime=now())
