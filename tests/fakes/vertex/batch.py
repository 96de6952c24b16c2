"""JobService for BatchPredictionJobs: create, get, list, cancel, delete; the job really runs.

create validates the job (model, formats the model supports, a gs:// destination, dedicated resources:
custom models do not support automatic resources) and answers it JOB_STATE_PENDING. A thread then moves
it to RUNNING, reads every input (gs:// URIs, `*` wildcards allowed) from the GCS emulator, starts the
model's container as a deploy does (routes `/v1/endpoints/<job id>/deployedModels/<job id>[:predict]`),
POSTs the instances in chunks of manualBatchTuningParameters.batchSize (default 64) with the job's
modelParameters as "parameters", and writes under
`<outputUriPrefix>/prediction-<model display name>-<create time as YYYY_MM_DDThh_mm_ss_mmmZ>/`:
  prediction.results-0000N-of-0000M   one file per input file, one JSON line per instance, in input order:
                                      {"instance": ..., "prediction": ...} or {"instance": ..., "error":
                                      {"code", "message"}} when its chunk failed (the whole chunk fails,
                                      as the container answers one status per request)
  prediction.errors_stats-00000-of-00001  one JSON line per distinct error: {"errorMessage", "count"}
                                      (empty when nothing failed; the line format is this fake's own)
then sets outputInfo.gcsOutputDirectory, completionStats and JOB_STATE_SUCCEEDED, or JOB_STATE_FAILED with
`error` when inputs cannot be read or the container does not start. Input formats: jsonl (one JSON
instance per line), tf-record and tf-record-gzip (each record sent as {"b64": <base64 of the record>}, as
Vertex does: a record is opaque bytes, e.g. a serialized tf.Example). csv, file-list, bigquery input and
bigquery output end the job FAILED with UNIMPLEMENTED (not emulated).
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

from .gcsio import tfrecords
from .jobs import FILTER_FIELDS, JobService
from .machines import check_batch_dedicated
from .wire import ApiError, etag, int64, now

if TYPE_CHECKING:
    from .control import FaultRule
    from .server import Request

EMULATED_INPUTS = {"jsonl", "tf-record", "tf-record-gzip"}
DEFAULT_BATCH_SIZE = 64


class _Cancelled(Exception):
    pass


class BatchService(JobService):
    collection = "batchPredictionJobs"
    noun = "BatchPredictionJob"
    snake = "batch_prediction_job"
    filter_fields = FILTER_FIELDS | {"model", "modelDisplayName"}

    def create(self, req: "Request", project: str, location: str) -> dict:
        body = req.json()
        self._display_name(body)
        if not body.get("model"):
            raise ApiError(
                "INVALID_ARGUMENT",
                "List of found errors:\t1.Field: batch_prediction_job.model; Message: Required field is not set.",
            )
        inputs = body.get("inputConfig") or {}
        outputs = body.get("outputConfig") or {}
        with self.store.lock:
            model = self.fake.model_service.resolve(body["model"])
            fmt = inputs.get("instancesFormat", "")
            if fmt not in model["supportedInputStorageFormats"]:
                raise ApiError(
                    "INVALID_ARGUMENT",
                    f'Model "{model["name"]}" does not support instances format '
                    f'"{fmt}"; supported: {", ".join(model["supportedInputStorageFormats"])}.',
                )
            if not ((inputs.get("gcsSource") or {}).get("uris") or inputs.get("bigquerySource")):
                raise ApiError(
                    "INVALID_ARGUMENT", "batch_prediction_job.input_config needs gcs_source.uris or bigquery_source."
                )
            out_fmt = outputs.get("predictionsFormat", "")
            if out_fmt not in model["supportedOutputStorageFormats"]:
                raise ApiError(
                    "INVALID_ARGUMENT", f'Model "{model["name"]}" does not support predictions format "{out_fmt}".'
                )
            prefix = (outputs.get("gcsDestination") or {}).get("outputUriPrefix", "")
            if not prefix and not outputs.get("bigqueryDestination"):
                raise ApiError(
                    "INVALID_ARGUMENT",
                    "batch_prediction_job.output_config needs gcs_destination or bigquery_destination.",
                )
            if prefix and not prefix.startswith("gs://"):
                raise ApiError("INVALID_ARGUMENT", f"output_uri_prefix {prefix!r} must be a gs:// URI.")
            dedicated = check_batch_dedicated(body.get("dedicatedResources"))
            batch_size = int((body.get("manualBatchTuningParameters") or {}).get("batchSize", 0) or 0)
            if batch_size < 0:
                raise ApiError("INVALID_ARGUMENT", "manual_batch_tuning_parameters.batch_size cannot be negative.")
            job, cancelled, rule = self._new(
                req,
                project,
                location,
                {
                    **body,
                    "model": model["name"],
                    "modelVersionId": model["versionId"],
                    "dedicatedResources": dedicated,
                    "etag": etag(),
                    "_batch_size": batch_size or DEFAULT_BATCH_SIZE,
                },
            )
            answer = dict(job)
        job_id = job["name"].rsplit("/", 1)[-1]
        threading.Thread(
            target=self._run, args=(job, model, rule, cancelled), name=f"batch-{job_id}", daemon=True
        ).start()
        return answer

    def _filter_view(self, job: dict) -> dict:
        model = self.fake.model_service.version_of(job["model"], job["modelVersionId"]) or {}
        return {**job, "modelDisplayName": model.get("displayName", "")}

    # the run -----------------------------------------------------------------------------------------
    def _run(self, job: dict, model: dict, rule: "FaultRule | None", cancelled: threading.Event) -> None:
        job_id = job["name"].rsplit("/", 1)[-1]
        self._mark_running(job)
        try:
            if rule is not None:
                self._end_faulted(job, rule, cancelled)
                return
            results = self._predict_all(job, job_id, model, cancelled)
            self.fake.launcher.stop(job_id)  # the container is gone before the job says it has ended
            self._write(job, model, results)
        except _Cancelled:
            self.fake.launcher.stop(job_id)
            self._end(job, "JOB_STATE_CANCELLED")
        except ApiError as error:
            self.fake.launcher.stop(job_id)
            self._end(job, "JOB_STATE_CANCELLED" if cancelled.is_set() else "JOB_STATE_FAILED", error)
        except Exception as exc:  # a bug of the fake: fail the job visibly
            self._end(job, "JOB_STATE_FAILED", {"code": 13, "message": f"fake-vertex batch error: {exc!r}"})
        finally:
            self.fake.launcher.stop(job_id)

    def _read_inputs(self, job: dict) -> list[tuple[str, list[Any]]]:
        config = job.get("inputConfig") or {}
        fmt = config.get("instancesFormat")
        if fmt not in EMULATED_INPUTS or config.get("bigquerySource"):
            raise ApiError(
                "UNIMPLEMENTED",
                f'fake-vertex does not emulate instances format "{fmt}" '
                f"(emulated: {', '.join(sorted(EMULATED_INPUTS))}).",
            )
        outputs = job.get("outputConfig") or {}
        if outputs.get("predictionsFormat") != "jsonl" or not outputs.get("gcsDestination"):
            raise ApiError("UNIMPLEMENTED", "fake-vertex emulates jsonl predictions written to Cloud Storage only.")
        files: list[str] = []
        for uri in config["gcsSource"]["uris"]:
            matched = self.fake.gcs.expand(uri)
            if not matched:
                raise ApiError("INVALID_ARGUMENT", f"No files match the input pattern {uri}.")
            files.extend(matched)
        out = []
        for uri in files:
            data = self.fake.gcs.read(uri)
            if fmt == "jsonl":
                instances = [_json_line(line) for line in data.decode("utf-8").splitlines() if line.strip()]
            else:
                if fmt == "tf-record-gzip":
                    data = gzip.decompress(data)
                instances = [{"b64": base64.b64encode(record).decode()} for record in tfrecords(data, uri)]
            out.append((uri, instances))
        return out

    def _predict_all(self, job: dict, job_id: str, model: dict, cancelled: threading.Event) -> list[list[dict]]:
        inputs = self._read_inputs(job)
        container = self.fake.launcher.start(
            job_id,
            "batch",
            model,
            project_number=job["name"].split("/")[1],
            endpoint_id=job_id,
            machine_spec=job["dedicatedResources"]["machineSpec"],
        )
        self.fake.launcher.wait_healthy(container, self.fake.deploy_timeout, cancelled)
        parameters = job.get("modelParameters")
        results = []
        for _uri, instances in inputs:
            lines: list[dict] = []
            for start in range(0, len(instances), job["_batch_size"]):
                if cancelled.is_set():
                    raise _Cancelled()
                chunk = instances[start : start + job["_batch_size"]]
                lines.extend(self._predict_chunk(container, chunk, parameters))
            results.append(lines)
        return results

    def _predict_chunk(self, container, chunk: list[Any], parameters: Any) -> list[dict]:
        bad = [item for item in chunk if isinstance(item, _BadLine)]
        if bad:  # lines that are not JSON fail alone; the others are still sent
            good = [item for item in chunk if not isinstance(item, _BadLine)]
            answered = iter(self._predict_chunk(container, good, parameters) if good else [])
            return [
                {"instance": item.text, "error": {"code": 3, "message": item.error}}
                if isinstance(item, _BadLine)
                else next(answered)
                for item in chunk
            ]
        payload: dict = {"instances": chunk}
        if parameters is not None:
            payload["parameters"] = parameters
        try:
            status, data, _ = self.fake.launcher.call(
                container,
                "POST",
                container.predict_route,
                json.dumps(payload).encode(),
                {"Content-Type": "application/json"},
                timeout=self.fake.predict_timeout,
            )
        except OSError as exc:
            return [
                {"instance": item, "error": {"code": 14, "message": f"The model server did not answer: {exc}"}}
                for item in chunk
            ]
        if status != 200:
            message = data.decode(errors="replace")
            return [{"instance": item, "error": {"code": _rpc_code(status), "message": message}} for item in chunk]
        try:
            predictions = json.loads(data)["predictions"]
            if not isinstance(predictions, list) or len(predictions) != len(chunk):
                raise ValueError(
                    f"{len(predictions) if isinstance(predictions, list) else 'no'} predictions for "
                    f"{len(chunk)} instances"
                )
        except (ValueError, KeyError, TypeError) as exc:
            return [
                {"instance": item, "error": {"code": 13, "message": f"Invalid model server response: {exc}"}}
                for item in chunk
            ]
        return [{"instance": item, "prediction": prediction} for item, prediction in zip(chunk, predictions)]

    def _write(self, job: dict, model: dict, results: list[list[dict]]) -> None:
        created = dt.datetime.strptime(job["createTime"], "%Y-%m-%dT%H:%M:%S.%fZ")
        stamp = created.strftime("%Y_%m_%dT%H_%M_%S_") + f"{created.microsecond // 1000:03d}Z"
        prefix = job["outputConfig"]["gcsDestination"]["outputUriPrefix"].rstrip("/")
        folder = f"{prefix}/prediction-{model.get('displayName', 'model')}-{stamp}"
        total = len(results)
        errors: Counter[str] = Counter()
        succeeded = failed = 0
        for index, lines in enumerate(results):
            text = "".join(json.dumps(line) + "\n" for line in lines)
            self.fake.gcs.write(
                f"{folder}/prediction.results-{index:05d}-of-{total:05d}", text.encode(), "application/jsonl"
            )
            for line in lines:
                if "error" in line:
                    failed += 1
                    errors[line["error"]["message"]] += 1
                else:
                    succeeded += 1
        stats = "".join(json.dumps({"errorMessage": m, "count": n}) + "\n" for m, n in errors.most_common())
        self.fake.gcs.write(f"{folder}/prediction.errors_stats-00000-of-00001", stats.encode(), "application/jsonl")
        self._set(
            job,
            "JOB_STATE_SUCCEEDED",
            endTime=now(),
            outputInfo={"gcsOutputDirectory": folder},
            completionStats={
                "successfulCount": int64(succeeded),
                "failedCount": int64(failed),
                "incompleteCount": int64(0),
            },
        )


class _BadLine:
    """A jsonl line that is not JSON: it becomes an error line of the output, not a request."""

    def __init__(self, text: str, error: str) -> None:
        self.text, self.error = text, error


def _json_line(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError as exc:
        return _BadLine(line, f"Invalid JSON instance: {exc}")


def _rpc_code(http_status: int) -> int:
    from .wire import STATUS, status_name

    return STATUS[status_name(http_status)][0]
