"""sweep=vertex tuning.early_stopping without TensorFlow: the study spec the SDK sends, the dry run, each epoch's
report through cloudml-hypertune, the test server's median rule, and the summary's pruned trials."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.fakes.vertex.study import should_stop
from tests.helpers import offline_tfrun
from tfrun.tasks.core.schema.vertex import EarlyStopping, stopping_spec

GCP = ["cloud=gcp", "cloud.project=my-project", "cloud.bucket=my-models"]


def test_each_choice_is_one_study_spec_field():
    assert stopping_spec("none") == {}
    assert stopping_spec("median") == {"medianAutomatedStoppingSpec": {"useElapsedDuration": False}}
    assert stopping_spec(EarlyStopping.decay_curve) == {"decayCurveStoppingSpec": {"useElapsedDuration": False}}


@pytest.mark.parametrize("choice", ["median", "decay_curve"])
def test_the_sdk_request_carries_the_stopping_spec(choice: str):
    """The StudySpec the SDK's HyperparameterTuningJob builds, with the field set as tuning.py sets it."""
    from google.cloud.aiplatform.compat.types import hyperparameter_tuning_job, study

    from tfrun.tasks.vertex.tuning import set_stopping

    gca = hyperparameter_tuning_job.HyperparameterTuningJob(study_spec=study.StudySpec())
    job = SimpleNamespace(_gca_resource=gca)
    assert set_stopping(job, choice) == next(iter(stopping_spec(choice)))
    sent = json.loads(type(gca).to_json(gca))["studySpec"]
    assert sent[next(iter(stopping_spec(choice)))] == {"useElapsedDuration": False}
    assert set_stopping(SimpleNamespace(_gca_resource=None), "none") is None


def test_the_dry_run_shows_the_stopping_spec(tmp_path: Path):
    args = ["-m", "sweep=vertex", *GCP, "cloud.dry_run=true", "hydra.sweep.dir=multi"]
    median = offline_tfrun([*args, "tuning.early_stopping=median"], tmp_path, tmp_path / "median.log")
    assert median.returncode == 0, median.stdout + median.stderr
    assert (
        'automated stopping (tuning.early_stopping=median): studySpec {"medianAutomatedStoppingSpec": '
        '{"useElapsedDuration": false}}, on the holdout_accuracy each trial reports every epoch' in median.stdout
    ), median.stdout
    plain = offline_tfrun(args, tmp_path, tmp_path / "none.log")
    assert "automated stopping (tuning.early_stopping=none): none" in plain.stdout, plain.stdout
    wrong = offline_tfrun([*args, "tuning.early_stopping=sometimes"], tmp_path, tmp_path / "wrong.log")
    assert wrong.returncode == 2 and "tuning.early_stopping" in wrong.stderr and "median" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_each_epoch_then_the_holdout_value_reach_the_metric_file(tmp_path: Path, monkeypatch):
    """One reporter per process: the final report (replica.py) keeps the epochs' reports in the file."""
    from tfrun.tasks.vertex import trial_reports

    metric_file = tmp_path / "hypertune" / "output.metrics"
    monkeypatch.setenv("CLOUD_ML_HP_METRIC_FILE", str(metric_file))
    monkeypatch.setenv("CLOUD_ML_HP_METRIC_TAG", "holdout_accuracy")
    monkeypatch.setenv("CLOUD_ML_TRIAL_ID", "3")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    trial_reports.reporter.cache_clear()
    keras = SimpleNamespace(callbacks=SimpleNamespace(Callback=object))
    cfg = SimpleNamespace(optimized_metric="holdout_accuracy")
    callback = trial_reports.epoch_report_callback(keras, cfg)
    for epoch, value in enumerate((0.5, 0.7)):
        callback.on_epoch_end(epoch, {"loss": 1.0, "accuracy": 0.9, "val_accuracy": value})
    callback.on_epoch_end(2, {"loss": 1.0})  # nothing that estimates the metric: no report
    trial_reports.reporter().report_hyperparameter_tuning_metric("holdout_accuracy", 0.75, global_step=3)
    reports = [json.loads(line) for line in metric_file.read_text().splitlines()]
    assert [(r["global_step"], r["holdout_accuracy"], r["trial"]) for r in reports] == [
        ("1", "0.5", "3"),
        ("2", "0.7", "3"),
        ("3", "0.75", "3"),
    ]
    trial_reports.reporter.cache_clear()


def test_epoch_value_estimates_the_optimized_metric():
    from tfrun.tasks.core.schema.sweep import epoch_value

    assert epoch_value("holdout_loss", {"loss": 0.3, "val_loss": 0.4}) == ("val_loss", 0.4)
    assert epoch_value("holdout_accuracy", {"accuracy": 0.8}) == ("accuracy", 0.8)  # no validation split
    assert epoch_value("holdout_auc", {"loss": 0.3}) is None
    # a training metric is told as the training data's value each epoch, as its final value is (the pruner's too)
    assert epoch_value("accuracy", {"accuracy": 0.8, "val_accuracy": 0.7}) == ("accuracy", 0.8)
    assert epoch_value("val_loss", {"loss": 0.3, "val_loss": 0.4}) == ("val_loss", 0.4)
    assert epoch_value("val_loss", {"loss": 0.3}) is None


def _measurements(*values: float, metric: str = "m") -> list[dict]:
    return [
        {"stepCount": str(step), "elapsedDuration": f"{step}.0s", "metrics": [{"metricId": metric, "value": v}]}
        for step, v in enumerate(values, 1)
    ]


STUDY = {"metrics": [{"metricId": "m", "goal": "MAXIMIZE"}], "medianAutomatedStoppingSpec": {}}


def test_the_servers_median_rule():
    done = [_measurements(0.8, 0.9, 0.95), _measurements(0.6, 0.7, 0.8), _measurements(0.7, 0.8, 0.9)]
    # at step 1 the completed trials' running averages are 0.8, 0.6, 0.7: median 0.7
    assert should_stop(STUDY, _measurements(0.65), done)
    assert not should_stop(STUDY, _measurements(0.7), done)  # strictly below, not equal
    # at step 2: averages 0.85, 0.65, 0.75 -> median 0.75; the trial's best so far counts
    assert not should_stop(STUDY, _measurements(0.76, 0.5), done)
    assert not should_stop(STUDY, _measurements(0.1), [])  # nothing completed: no median
    assert not should_stop({**STUDY, "medianAutomatedStoppingSpec": None}, _measurements(0.1), done)
    minimize = {"metrics": [{"metricId": "m", "goal": "MINIMIZE"}], "medianAutomatedStoppingSpec": {}}
    assert should_stop(minimize, _measurements(0.75), done) and not should_stop(minimize, _measurements(0.6), done)


def _trial(state: int, *values: float) -> SimpleNamespace:
    return SimpleNamespace(
        id="2",
        state=state,
        measurements=[
            SimpleNamespace(step_count=step, metrics=[SimpleNamespace(metric_id="holdout_accuracy", value=v)])
            for step, v in enumerate(values, 1)
        ],
    )


def test_a_trial_vertex_stopped_is_pruned_and_a_finished_or_failed_one_is_not():
    from tfrun.tasks.vertex.tuning import stopped_early

    cfg = SimpleNamespace(
        tuning=SimpleNamespace(early_stopping="median"),
        optimized_metric="holdout_accuracy",
        train=SimpleNamespace(epochs=8),
    )
    pruned = stopped_early(cfg, _trial(4, 0.1, 0.12), {"status": "interrupted"})
    assert pruned == {
        "epoch": 2,
        "of_epochs": 8,
        "monitor": "holdout_accuracy",
        "value": 0.12,
        "reported": [0.1, 0.12],
        "pruner": "vertex median",
        "trial": "2",
    }
    assert stopped_early(cfg, _trial(3, 0.1), None)["epoch"] == 1  # STOPPING, no record yet
    assert stopped_early(cfg, _trial(4, 0.9), {"status": "succeeded"}) is None  # it ran to its end
    assert stopped_early(cfg, _trial(5, 0.1), None) is None  # INFEASIBLE: a failure
    assert stopped_early(cfg, _trial(4, 0.1), {"status": "failed"}) is None
    cfg.tuning.early_stopping = "none"
    assert stopped_early(cfg, _trial(4, 0.1), {"status": "interrupted"}) is None


def test_the_server_keeps_one_stopping_spec_and_refuses_two():
    from tests.fakes.vertex.study import check_study
    from tests.fakes.vertex.wire import ApiError

    spec = {
        "metrics": [{"metricId": "m", "goal": "MAXIMIZE"}],
        "parameters": [{"parameterId": "p", "doubleValueSpec": {"minValue": 0.1, "maxValue": 1.0}}],
        "medianAutomatedStoppingSpec": {},
    }
    assert check_study(spec)["medianAutomatedStoppingSpec"] == {}
    with pytest.raises(ApiError, match="at most one of"):
        check_study({**spec, "decayCurveStoppingSpec": {"useElapsedDuration": True}})
