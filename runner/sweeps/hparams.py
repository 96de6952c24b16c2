"""TensorBoard's HParams dashboard for a sweep: `tensorboard --logdir SWEEP_DIR` compares its jobs.

Written when a multirun ends, from its summary (tfrun.runner.sweeps.summary): the experiment (the swept keys and the
optimized metric) in an event file at the sweep dir's root, and one session per job in an event file in the
job's own dir, beside its TensorBoard logs: its parameter values, its metric, and how it ended. The events are
TensorBoard's own protos (`tensorboard.plugins.hparams`, the format `hp.hparams()` writes), written by
TensorBoard's own record framing, so the runner never imports TensorFlow.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

# TensorBoard's statuses are UNKNOWN, SUCCESS, FAILURE and RUNNING: an interrupted job is neither a success nor a
# failure of its settings, so UNKNOWN (there is no STATUS_ABORTED: naming it broke every summary with such a job).
# A pruned job (stopped early by the sweep's pruner) is no failure either, nor a completed training whose metric
# compares with the others': UNKNOWN too, so the dashboard's "Success" filter shows finished jobs alone.
STATUS = {
    "succeeded": "STATUS_SUCCESS",
    "failed": "STATUS_FAILURE",
    "interrupted": "STATUS_UNKNOWN",
    "pruned": "STATUS_UNKNOWN",
}


def _value(text: Any) -> Any:
    """A parameter as TensorBoard types it: a number when it reads as one, else its text."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    try:
        return float(str(text))
    except ValueError:
        return str(text)


def _summary(tag: str, plugin_data: Any) -> Any:
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import metadata

    summary = summary_pb2.Summary()
    summary.value.add(tag=tag, metadata=metadata.create_summary_metadata(plugin_data), tensor=metadata.NULL_TENSOR)
    return summary


def _write(folder: Path, summaries: list[Any], suffix: str) -> Path:
    """One event file, as TensorBoard's EventFileWriter writes it (that class imports TensorFlow when it is
    installed, for its file I/O; its record framing, used here, does not)."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    for old in folder.glob(f"events.out.tfevents.*{suffix}"):
        old.unlink()  # a resumed sweep writes its dashboard again
    now = time.time()
    path = folder / f"events.out.tfevents.{int(now)}.tfrun{suffix}"
    with open(path, "wb") as f:
        writer = RecordWriter(f)
        writer.write(event_pb2.Event(wall_time=now, file_version="brain.Event:2").SerializeToString())
        for step, summary in enumerate(summaries):
            writer.write(event_pb2.Event(wall_time=now, step=step, summary=summary).SerializeToString())
    return path


def write(summary: Any, suffix: str = ".tfrun-hparams") -> list[Path]:
    """The experiment at the sweep dir, a session per job in its dir; the event files written."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    from tfrun.runner.sweeps.summary import swept

    rows = summary.rows
    keys = sorted(swept(rows)) or sorted({k for r in rows for k in r.params})  # the swept keys: the columns
    if not rows or not keys:
        return []
    infos = []
    for key in keys:
        values = [_value(r.params[key]) for r in rows if key in r.params]
        numeric = all(isinstance(v, float) for v in values)
        infos.append(
            api_pb2.HParamInfo(name=key, type=api_pb2.DATA_TYPE_FLOAT64 if numeric else api_pb2.DATA_TYPE_STRING)
        )
    metric = summary.metric_name
    experiment = api_pb2.Experiment(
        description=f"tfrun sweep {summary.sweep_dir.name}: {metric} over {', '.join(keys)}",
        time_created_secs=time.time(),
        hparam_infos=infos,
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=metric), display_name=metric)],
    )
    written = [
        _write(
            summary.sweep_dir,
            [_summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment))],
            suffix,
        )
    ]
    for row in rows:
        start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
        for key, text in row.params.items():
            if key not in keys:
                continue
            value = _value(text)
            if isinstance(value, float) and next(i for i in infos if i.name == key).type == api_pb2.DATA_TYPE_FLOAT64:
                start.hparams[key].number_value = value
            else:
                start.hparams[key].string_value = str(text)
        events = [
            _summary(metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start))
        ]
        if isinstance(row.metric, (int, float)):
            scalar = summary_pb2.Summary()
            scalar.value.add(tag=metric, simple_value=float(row.metric))
            events.append(scalar)
        end = plugin_data_pb2.SessionEndInfo(
            status=getattr(api_pb2, STATUS.get(row.status, "STATUS_UNKNOWN"), api_pb2.STATUS_UNKNOWN),
            end_time_secs=time.time(),
        )
        events.append(_summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end)))
        written.append(_write(summary.sweep_dir / row.run_dir, events, suffix))
    return written
