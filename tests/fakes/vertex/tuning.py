"""JobService for HyperparameterTuningJobs (create, get, list, cancel, delete): the trials really run.

create validates the study (study.py), the counts and the trial job spec (cluster.py) and answers the job
JOB_STATE_PENDING; a thread moves it to RUNNING and runs trials: at most parallelTrialCount at once,
maxTrialCount in all, each the trialJobSpec's replicas (replicas.py) with the trial's parameters appended
to every replica's args as `--<parameterId>=<value>` and CLOUD_ML_TRIAL_ID / CLOUD_ML_HP_METRIC_FILE /
CLOUD_ML_HP_METRIC_TAG in their environment (cluster.py). The next trial's parameters are drawn when a
slot frees (study.py: seeded random search or grid; Vertex's default is Bayesian). A trial is
  SUCCEEDED   when its chief exits 0 having reported the study's metric through cloudml-hypertune
              (finalMeasurement and measurements read from the chief's metric file);
  INFEASIBLE  when a replica fails (infeasibleReason = the replica's error with its log tail), when it ends
              without a measurement (Vertex's rule), or when the fake stops it (cancel, job failure).
  STOPPING    while the study's median automated stopping rule (study.py `should_stop`) stops it: the chief's
              measurements are read as it reports them (they show on the trial while it runs) and, once the rule
              says so, its replicas are stopped; it then ends SUCCEEDED with the final measurement chosen from
              those it reported (Vertex's rule: a trial with a final measurement succeeded), or INFEASIBLE
              without any. No trial field says it was stopped early (REST v1 has none): it shows as fewer
              measurements than the trial would have reported.
Failed trials: with maxFailedTrialCount N > 0 the job fails at the N-th failure (running trials are
stopped, no new one starts). With 0 "Vertex AI decides", undocumented; the fake follows AI Platform
Training's documented rule (the job fails when the first trial fails) and also fails the job once half
of maxTrialCount (rounded up) has failed. A job whose trials all failed ends FAILED; otherwise SUCCEEDED.
Trials carry id ("1", "2", ...), state, parameters, finalMeasurement, measurements, startTime, endTime,
infeasibleReason; not `customJob` (the fake creates no CustomJob resource per trial).
"""

from __future__ import annotations

import math
import queue
import random
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cluster import check_job_spec
from .custom_jobs import TrainingJobService
from .study import check_study, measurements, should_stop, suggestions
from .wire import ApiError, now

if TYPE_CHECKING:
    from .server import Fake, Request


class TuningJobService(TrainingJobService):
    collection = "hyperparameterTuningJobs"
    noun = "HyperparameterTuningJob"
    snake = "hyperparameter_tuning_job"
    thread_prefix = "tuning"
    bug_label = "tuning"

    def __init__(self, fake: "Fake") -> None:
        super().__init__(fake)
        self.reseed()

    def reseed(self) -> None:
        """Start the stream of per-job seeds again (a fresh fake with the same --seed suggests the same)."""
        seed = self.fake.seed
        self.seeds = random.Random(f"tuning:{seed}") if seed is not None else random.Random()

    def create(self, req: "Request", project: str, location: str) -> dict:
        body = req.json()
        self._display_name(body)
        study = check_study(body.get("studySpec"))
        counts = {}
        for key, snake in (
            ("maxTrialCount", "max_trial_count"),
            ("parallelTrialCount", "parallel_trial_count"),
            ("maxFailedTrialCount", "max_failed_trial_count"),
        ):
            counts[key] = int(body.get(key, 0) or 0)
            if counts[key] < (0 if key == "maxFailedTrialCount" else 1):
                raise ApiError(
                    "INVALID_ARGUMENT",
                    f"{self.snake}.{snake} must be greater than "
                    f"{'or equal to 0' if key == 'maxFailedTrialCount' else '0'}.",
                )
        if counts["parallelTrialCount"] > counts["maxTrialCount"]:
            raise ApiError(
                "INVALID_ARGUMENT",
                f"{self.snake}.parallel_trial_count ({counts['parallelTrialCount']}) "
                f"must be less than or equal to max_trial_count ({counts['maxTrialCount']}).",
            )
        if counts["maxFailedTrialCount"] > counts["maxTrialCount"]:
            raise ApiError(
                "INVALID_ARGUMENT",
                f"{self.snake}.max_failed_trial_count must be less than or equal to max_trial_count.",
            )
        spec = check_job_spec(body.get("trialJobSpec"), f"{self.snake}.trial_job_spec")
        with self.store.lock:
            rng = random.Random(self.seeds.getrandbits(64))
        return self._launch(
            *self._new(
                req,
                project,
                location,
                {**body, **counts, "trialJobSpec": spec, "trials": [], "_study": study, "_rng": rng},
            )
        )

    # the run ------------------------------------------------------------------------------------------
    def _work(self, job: dict, cancelled: threading.Event) -> None:
        self._mark_running(job)
        self._end(job, *self._trials(job, cancelled))

    def _trials(self, job: dict, cancelled: threading.Event) -> tuple[str, ApiError | None]:
        study, job_id = job["_study"], job["name"].rsplit("/", 1)[-1]
        suggest = suggestions(study, job["_rng"])
        finished: queue.Queue = queue.Queue()
        active: dict[str, tuple[dict, threading.Event]] = {}
        launched = failed = succeeded = 0
        stop: ApiError | None = None
        while True:
            while (
                not cancelled.is_set()
                and stop is None
                and len(active) < job["parallelTrialCount"]
                and launched < job["maxTrialCount"]
            ):
                launched += 1
                trial = {"id": str(launched), "state": "ACTIVE", "parameters": next(suggest), "startTime": now()}
                with self.store.lock:
                    job["trials"].append(trial)
                    self._set(job, job["state"])
                active[trial["id"]] = (trial, threading.Event())
                threading.Thread(
                    target=self._trial,
                    args=(job, job_id, trial, active[trial["id"]][1], finished),
                    name=f"trial-{job_id}-{launched}",
                    daemon=True,
                ).start()
            if not active:
                break
            try:
                trial, state, error, metric_file = finished.get(timeout=0.05)
                active.pop(trial["id"])
                ok = self._finish_trial(job, trial, state, error, metric_file)
                succeeded, failed = succeeded + ok, failed + (not ok)
                if not ok and stop is None and not cancelled.is_set():
                    stop = self._too_many_failures(job, trial, failed)
            except queue.Empty:
                pass
            if stop is not None or cancelled.is_set():  # stop the trials still running
                for _trial, event in active.values():
                    event.set()
        if cancelled.is_set():
            return "JOB_STATE_CANCELLED", None
        if stop is not None:
            return "JOB_STATE_FAILED", stop
        if not succeeded:
            return "JOB_STATE_FAILED", ApiError(
                "INVALID_ARGUMENT",
                f"All {failed} trials failed. Trial 1: {job['trials'][0].get('infeasibleReason', '')}",
            )
        return "JOB_STATE_SUCCEEDED", None

    def _trial(self, job: dict, job_id: str, trial: dict, stop: threading.Event, finished: queue.Queue) -> None:
        ended = threading.Event()

        def watch() -> None:  # the study's automated stopping, on the chief's measurements as they come
            replicas = self.fake.training.sets.get((job["name"], trial["id"]))
            if replicas is not None and job["_study"].get("medianAutomatedStoppingSpec") is not None:
                metric_file = Path(replicas.chief.plan.env["CLOUD_ML_HP_METRIC_FILE"])
                threading.Thread(target=self._watch, args=(job, trial, metric_file, stop, ended), daemon=True).start()

        try:
            state, error, replicas = self.run_replicas(
                job["trialJobSpec"],
                job["name"],
                job_id,
                stop,
                trial=trial,
                metric_tag=job["_study"]["metrics"][0]["metricId"],
                on_start=watch,
            )
            ended.set()
            metric_file = Path(replicas.chief.plan.env["CLOUD_ML_HP_METRIC_FILE"]) if replicas else None
            finished.put((trial, state, error, metric_file))
        except Exception as exc:  # a bug of the fake: the trial fails visibly
            ended.set()
            finished.put((trial, "FAILED", ApiError("INTERNAL", f"fake-vertex trial error: {exc!r}"), None))

    def _watch(self, job: dict, trial: dict, metric_file: Path, stop: threading.Event, ended: threading.Event) -> None:
        """Read a running trial's measurements every 0.1 s; stop it when the median rule says so."""
        study, started, seen = job["_study"], _epoch(trial["startTime"]), 0
        while not ended.wait(0.1) and not stop.is_set():
            found, _ = measurements(metric_file, study, started)
            if len(found) <= seen:
                continue
            seen = len(found)
            with self.store.lock:
                completed = [
                    t["measurements"] for t in job["trials"] if t["state"] == "SUCCEEDED" and t.get("measurements")
                ]
                trial["measurements"] = found
                if should_stop(study, found, completed):
                    trial.update(state="STOPPING", _stoppedEarly=True)
                self._set(job, job["state"])
            if trial.get("_stoppedEarly"):
                stop.set()  # its replicas are stopped: run_replicas answers CANCELLED
                return

    def _finish_trial(
        self, job: dict, trial: dict, state: str, error: ApiError | None, metric_file: Path | None
    ) -> bool:
        """Record a trial's end in the job; whether it succeeded."""
        fields: dict[str, Any] = {"endTime": now()}
        ok = False
        if state == "SUCCEEDED" and metric_file is not None:
            found, final = measurements(metric_file, job["_study"], _epoch(trial["startTime"]))
            if found:
                fields["measurements"] = found
            if final is not None:
                fields.update(state="SUCCEEDED", finalMeasurement=final)
                ok = True
            else:
                metric = job["_study"]["metrics"][0]["metricId"]
                fields.update(
                    state="INFEASIBLE",
                    infeasibleReason=f"The trial ended without reporting the metric "
                    f"{metric!r} (cloudml-hypertune writes it to CLOUD_ML_HP_METRIC_FILE).",
                )
        elif state == "CANCELLED" and trial.get("_stoppedEarly") and metric_file is not None:
            found, final = measurements(metric_file, job["_study"], _epoch(trial["startTime"]))
            fields.update(measurements=found)
            if final is not None:
                fields.update(state="SUCCEEDED", finalMeasurement=final)
                ok = True
            else:
                fields.update(state="INFEASIBLE", infeasibleReason="Stopped early before it reported a measurement.")
        elif state == "CANCELLED":
            fields.update(
                state="INFEASIBLE",
                infeasibleReason="The trial was stopped before it ended: the tuning job was cancelled or failed.",
            )
        else:
            fields.update(state="INFEASIBLE", infeasibleReason=error.message if error else "The trial failed.")
        with self.store.lock:
            trial.update(fields)
            self._set(job, job["state"])
        return ok

    @staticmethod
    def _too_many_failures(job: dict, trial: dict, failed: int) -> ApiError | None:
        limit = job["maxFailedTrialCount"]
        reason = trial.get("infeasibleReason", "")
        if limit > 0 and failed >= limit:
            return ApiError(
                "INVALID_ARGUMENT",
                f"{failed} trials failed, the maximum allowed "
                f"(max_failed_trial_count {limit}). Trial {trial['id']}: {reason}",
            )
        if limit == 0 and trial["id"] == "1":
            return ApiError(
                "INVALID_ARGUMENT",
                f"The first trial failed, so the job was stopped (a failure in "
                f"the first trial suggests a problem in the training code). Trial 1: {reason}",
            )
        if limit == 0 and failed >= math.ceil(job["maxTrialCount"] / 2):
            return ApiError(
                "INVALID_ARGUMENT",
                f"{failed} of {job['maxTrialCount']} trials failed, too many "
                f"(fake-vertex's rule when max_failed_trial_count is 0). Trial {trial['id']}: {reason}",
            )
        return None


def _epoch(stamp: str) -> float:
    import datetime as dt

    return dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc).timestamp()
