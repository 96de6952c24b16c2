"""A sweep's HParams dashboard, read back with TensorBoard's own event reader (the multiplexer its server uses)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfrun.runner.sweeps import hparams
from tfrun.runner.sweeps.summary import summarise


def _job(sweep: Path, job: str, status: str, overrides: list[str], metric: float | None) -> None:
    (sweep / job).mkdir(parents=True)
    record = {
        "status": status,
        "seconds": 1.0,
        "command": {"overrides": overrides},
        "config": {"optimized_metric": "holdout_accuracy"},
        "metrics": {"final": {} if metric is None else {"holdout_accuracy": metric}},
        "error": None,
    }
    (sweep / job / "record.json").write_text(json.dumps(record))


def test_tensorboard_reads_the_experiment_and_one_session_per_job(tmp_path: Path):
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
    from tensorboard.plugins.hparams import api_pb2, metadata
    from tensorboard.util import tensor_util

    jobs = {"0": ("0.001", "adam", 0.91), "1": ("0.01", "adam", 0.97), "2": ("0.01", "sgd", 0.88)}
    for job, (lr, opt, acc) in jobs.items():
        _job(tmp_path, job, "succeeded", [f"train.learning_rate={lr}", f"train.optimizer={opt}"], acc)
    _job(tmp_path, "3", "failed", ["train.learning_rate=0.1", "train.optimizer=sgd"], None)
    (tmp_path / "0" / "tensorboard").mkdir()  # a job's own logs stay where they are
    written = hparams.write(summarise(tmp_path))
    assert len(written) == 5

    mux = EventMultiplexer().AddRunsFromDirectory(str(tmp_path))
    mux.Reload()
    content = mux.PluginRunToTagToContent(metadata.PLUGIN_NAME)
    experiment = metadata.parse_experiment_plugin_data(content["."][metadata.EXPERIMENT_TAG])
    assert {i.name: i.type for i in experiment.hparam_infos} == {
        "train.learning_rate": api_pb2.DATA_TYPE_FLOAT64,
        "train.optimizer": api_pb2.DATA_TYPE_STRING,
    }
    assert [m.name.tag for m in experiment.metric_infos] == ["holdout_accuracy"]
    for job, (lr, opt, acc) in jobs.items():
        start = metadata.parse_session_start_info_plugin_data(content[job][metadata.SESSION_START_INFO_TAG])
        assert start.hparams["train.learning_rate"].number_value == float(lr)
        assert start.hparams["train.optimizer"].string_value == opt
        (event,) = mux.Tensors(job, "holdout_accuracy")  # a scalar, as TensorBoard's scalars plugin reads it
        assert float(tensor_util.make_ndarray(event.tensor_proto)) == pytest.approx(acc)
        end = metadata.parse_session_end_info_plugin_data(content[job][metadata.SESSION_END_INFO_TAG])
        assert end.status == api_pb2.STATUS_SUCCESS
    failed = metadata.parse_session_end_info_plugin_data(content["3"][metadata.SESSION_END_INFO_TAG])
    assert failed.status == api_pb2.STATUS_FAILURE

    hparams.write(summarise(tmp_path))  # written again (a resumed sweep): one file per folder, not two
    assert len(list(tmp_path.glob("0/events.out.tfevents.*"))) == 1
