"""JobService for CustomJobs (create, get, list, cancel, delete), whose replicas really run (replicas.py).

create validates the job (display name, worker pools, machines: cluster.py) and answers it
JOB_STATE_PENDING; a thread then works out every replica's command and environment (a pythonPackageSpec
whose package is not in the GCS emulator, or an image the fake cannot run, ends the job FAILED), starts
them (JOB_STATE_RUNNING) and ends the job SUCCEEDED, FAILED (`error` names the replica and its log tail)
or, after `:cancel` (JOB_STATE_CANCELLING), CANCELLED once every replica has stopped. An injected `job`
fault (control.py) ends the job FAILED with the fault's error and starts no replica. get, list, cancel and
delete are jobs.py's. `TrainingJobService` holds what CustomJobs and HyperparameterTuningJobs share;
tuning.py adds the latter.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable

from .cluster import check_job_spec, plan_replicas
from .jobs import JobService
from .replicas import ReplicaSet
from .wire import ApiError

if TYPE_CHECKING:
    from .control import FaultRule
    from .server import Request


def seconds(duration: Any) -> float | None:
    """A proto Duration as JSON ("30s", "1.5s") in seconds; None when unset."""
    if not duration:
        return None
    try:
        return float(str(duration).rstrip("s"))
    except ValueError:
        raise ApiError("INVALID_ARGUMENT", f"Invalid duration {duration!r}.") from None


class TrainingJobService(JobService):
    """A JobService whose jobs run replicas; the job thread (`_run`) calls the subclass's `_work`."""

    thread_prefix = ""  # the job thread's name: <prefix>-<job name>
    bug_label = ""  # "fake-vertex <label> error: ..." when the fake fails

    def _remove(self, name: str) -> None:
        super()._remove(name)
        self.fake.training.forget(name)

    def _launch(self, job: dict, cancelled: threading.Event, rule: "FaultRule | None") -> dict:
        """Start the job's thread; the job as create answers it."""
        with self.store.lock:
            answer = dict(job)
        threading.Thread(
            target=self._run, args=(job, rule, cancelled), name=f"{self.thread_prefix}-{job['name']}", daemon=True
        ).start()
        return answer

    def _run(self, job: dict, rule: "FaultRule | None", cancelled: threading.Event) -> None:
        try:
            if rule is not None:
                self._end_faulted(job, rule, cancelled)
                return
            self._work(job, cancelled)
        except Exception as exc:  # a bug of the fake: fail the job visibly
            self._end(job, "JOB_STATE_FAILED", {"code": 13, "message": f"fake-vertex {self.bug_label} error: {exc!r}"})

    def _work(self, job: dict, cancelled: threading.Event) -> None:
        raise NotImplementedError

    def _restart_policy(self, spec: dict) -> tuple[int, bool, float | None]:
        """(restarts allowed per replica, restart the whole job on one, timeout in seconds) of a job spec."""
        scheduling = spec.get("scheduling") or {}
        restarts = 0 if scheduling.get("disableRetries") else self.fake.training.max_restarts
        return restarts, bool(scheduling.get("restartJobOnWorkerRestart")), seconds(scheduling.get("timeout"))

    def run_replicas(
        self,
        spec: dict,
        job_name: str,
        job_id: str,
        cancelled: threading.Event,
        *,
        trial: dict | None = None,
        metric_tag: str = "",
        on_start: Callable[[], None] | None = None,
    ) -> tuple[str, ApiError | None, ReplicaSet | None]:
        """Plan, start and watch one set of replicas (a job or a trial): (state, error, the replicas)."""
        trial_id = trial["id"] if trial else None
        if cancelled.is_set():
            return "CANCELLED", None, None
        try:
            plans = plan_replicas(
                spec,
                job_id,
                self.fake.training.folder(job_id, trial_id),
                self.fake.gcs,
                self.fake.storage_endpoint,
                trial=trial,
                metric_tag=metric_tag,
            )
        except ApiError as error:
            return "FAILED", error, None
        restarts, restart_all, timeout = self._restart_policy(spec)
        replicas = ReplicaSet(
            plans, job_name, trial_id, max_restarts=restarts, restart_all=restart_all, timeout=timeout
        )
        self.fake.training.add(job_name, trial_id, replicas)
        if on_start is not None:
            on_start()
        state, error = replicas.run(cancelled)
        return state, error, replicas


class CustomJobService(TrainingJobService):
    collection = "customJobs"
    noun = "CustomJob"
    snake = "custom_job"
    thread_prefix = "custom-job"
    bug_label = "training"

    def create(self, req: "Request", project: str, location: str) -> dict:
        body = req.json()
        self._display_name(body)
        spec = check_job_spec(body.get("jobSpec"))
        return self._launch(*self._new(req, project, location, {**body, "jobSpec": spec}))

    def _work(self, job: dict, cancelled: threading.Event) -> None:
        state, error, _ = self.run_replicas(
            job["jobSpec"],
            job["name"],
            job["name"].rsplit("/", 1)[-1],
            cancelled,
            on_start=lambda: self._mark_running(job),
        )
        self._end(job, "JOB_STATE_CANCELLED" if cancelled.is_set() else f"JOB_STATE_{state}", error)
