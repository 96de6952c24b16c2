"""What the JobService collections share (BatchPredictionJobs, CustomJobs, HyperparameterTuningJobs).

A job is stored JOB_STATE_PENDING with a cancel event its thread watches; get and list answer it; `:cancel`
moves a job that has not ended to JOB_STATE_CANCELLING and sets the event; delete is a long-running
operation and refuses a job that has not ended. An injected `job` fault (control.py), taken when the job
is created, ends it FAILED with the fault's error shortly after (CANCELLED when cancelled meanwhile).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .wire import ApiError, now

if TYPE_CHECKING:
    from .control import FaultRule
    from .server import Fake, Request

FILTER_FIELDS = {"displayName", "labels", "state", "name", "createTime", "updateTime", "startTime", "endTime"}
TERMINAL = {
    "JOB_STATE_SUCCEEDED",
    "JOB_STATE_FAILED",
    "JOB_STATE_CANCELLED",
    "JOB_STATE_EXPIRED",
    "JOB_STATE_PARTIALLY_SUCCEEDED",
}
CANCELLED_ERROR = {"code": 1, "message": "CANCELED"}


class JobService:
    """get, list, cancel, delete and the job thread's bookkeeping of one job collection."""

    collection = ""
    noun = ""
    snake = ""  # the request field, for error messages
    filter_fields = FILTER_FIELDS

    def __init__(self, fake: "Fake") -> None:
        self.fake = fake
        self.store = fake.store
        self.cancel_events: dict[str, threading.Event] = {}

    def _new(
        self, req: "Request", project: str, location: str, fields: dict
    ) -> tuple[dict, threading.Event, "FaultRule | None"]:
        """Store a new PENDING job; its cancel event and the injected `job` fault of this call, if any."""
        stamp = now()
        job = {
            **fields,
            "name": self.store.name(project, location, self.collection, self.fake.new_id()),
            "state": "JOB_STATE_PENDING",
            "createTime": stamp,
            "updateTime": stamp,
        }
        with self.store.lock:
            self.store.put(self.collection, job)
            self.cancel_events[job["name"]] = cancelled = threading.Event()
        return job, cancelled, req.take_fault("job")

    def _display_name(self, body: dict) -> None:
        if not body.get("displayName"):
            raise ApiError(
                "INVALID_ARGUMENT",
                f"List of found errors:\t1.Field: {self.snake}.display_name; Message: Required field is not set.",
            )

    def _job(self, project: str, location: str, job: str) -> dict:
        return self.store.get(self.collection, self.store.name(project, location, self.collection, job), self.noun)

    def _filter_view(self, job: dict) -> dict:
        """The job as filters see it (a collection may add fields it can be filtered by)."""
        return job

    def get(self, req: "Request", project: str, location: str, job: str) -> dict:
        with self.store.lock:
            return dict(self._job(project, location, job))

    def list(self, req: "Request", project: str, location: str) -> dict:
        with self.store.lock:
            page, token = self.store.list(
                self.collection,
                self.store.parent(project, location),
                req.query.get("filter"),
                self.filter_fields,
                req.int_query("pageSize"),
                req.query.get("pageToken"),
                view=self._filter_view,
            )
        out: dict = {self.collection: page} if page else {}
        if token:
            out["nextPageToken"] = token
        return out

    def cancel(self, req: "Request", project: str, location: str, job: str) -> dict:
        with self.store.lock:
            stored = self._job(project, location, job)
            if stored["state"] in TERMINAL:
                raise ApiError(
                    "FAILED_PRECONDITION",
                    f'{self.noun} "{stored["name"]}" is in state {stored["state"]} and cannot be cancelled.',
                )
            if stored["state"] != "JOB_STATE_CANCELLING":
                self._set(stored, "JOB_STATE_CANCELLING")
                self.cancel_events[stored["name"]].set()
        return {}

    def delete(self, req: "Request", project: str, location: str, job: str) -> dict:
        with self.store.lock:
            stored = self._job(project, location, job)
            if stored["state"] not in TERMINAL:
                raise ApiError(
                    "FAILED_PRECONDITION",
                    f'{self.noun} "{stored["name"]}" is in state {stored["state"]}: cancel it before deleting it.',
                )
            return self.fake.quick_operation(
                req,
                self.store.parent(project, location),
                "DeleteOperationMetadata",
                lambda: self._remove(stored["name"]),
            )

    def _remove(self, name: str) -> None:
        self.store.delete(self.collection, name)
        self.cancel_events.pop(name, None)

    def cancel_all(self) -> None:
        with self.store.lock:
            for event in self.cancel_events.values():
                event.set()
            self.cancel_events.clear()

    # the job thread's state changes ----------------------------------------------------------------------
    def _set(self, job: dict, state: str, **fields: Any) -> None:
        with self.store.lock:
            job.update(fields, state=state, updateTime=now())
            self.store.changed.notify_all()

    def _mark_running(self, job: dict) -> None:
        with self.store.lock:
            if job["state"] == "JOB_STATE_PENDING":
                self._set(job, "JOB_STATE_RUNNING", startTime=now())

    def _end(self, job: dict, state: str, error: ApiError | dict | None = None) -> None:
        fields: dict[str, Any] = {"endTime": now()}
        if state == "JOB_STATE_CANCELLED":
            fields["error"] = CANCELLED_ERROR
        elif error is not None:
            fields["error"] = error.rpc_status() if isinstance(error, ApiError) else error
        self._set(job, state, **fields)

    def _end_faulted(self, job: dict, rule: "FaultRule", cancelled: threading.Event) -> None:
        """End a job that drew a `job` fault: FAILED with its error shortly after, CANCELLED if cancelled first."""
        if cancelled.wait(0.2):
            self._end(job, "JOB_STATE_CANCELLED")
        else:
            self._end(job, "JOB_STATE_FAILED", rule.error())
