"""TF Serving's request metrics: the MonitoringConfig file, the exposition text in PrometheusExporter's form,
and tfrun-serve's --monitoring_config_file checks (before TensorFlow)."""

from __future__ import annotations

import pytest

from tfrun.runner import serve_cli
from tfrun.tasks.tfserving import metrics
from tfrun.tasks.tfserving.status import Code, ServingError


def test_monitoring_config_text_proto_round_trip(tmp_path):
    path = metrics.write_monitoring_config(tmp_path)
    assert path.name == metrics.MONITORING_FILE
    assert metrics.read_monitoring_config(path) == metrics.MonitoringConfig(True, "/monitoring/prometheus/metrics")
    # TF Serving's text format as users write it: comments, angle brackets, no path (the default path)
    parsed = metrics.parse_monitoring_config("# metrics\nprometheus_config < enable: true >\n")
    assert parsed == metrics.MonitoringConfig(True, metrics.DEFAULT_PATH)
    assert metrics.parse_monitoring_config("") == metrics.MonitoringConfig(False, metrics.DEFAULT_PATH)
    assert metrics.parse_monitoring_config('prometheus_config { enable: true path: "/m" }').path == "/m"


@pytest.mark.parametrize(
    "text, words",
    [
        ("prometheus_config { enable: maybe }", "Invalid protobuf file"),
        ("prometheus { enable: true }", "Invalid protobuf file"),
        ('prometheus_config { enable: true path: "metrics" }', "must start with '/'"),
    ],
)
def test_monitoring_config_errors(text, words):
    with pytest.raises(ValueError, match=words):
        metrics.parse_monitoring_config(text)


def test_buckets_are_tf_servings():
    assert len(metrics.LATENCY_BUCKETS) == 33 and metrics.LATENCY_BUCKETS[:3] == (10.0, 18.0, 32.4)
    assert metrics.EXAMPLE_BUCKETS == tuple(float(2**k) for k in range(15))


def test_exposition_names_labels_and_histograms():
    registry = metrics.Registry()
    registry.request("digits", "Predict", "GRPC", "OK", 15.0)
    registry.request("digits", "Predict", "GRPC", "OK", 10.0)  # on a limit: that bucket (le)
    registry.request("digits", "Predict", "REST", "INVALID_ARGUMENT", 99.0)  # failed: counted, not timed
    registry.request('we"ird', "Classify", "REST", "OK", 1e10)
    registry.examples("digits", 3)
    page = registry.exposition()
    lines = page.splitlines()
    assert page.endswith("\n")
    assert "# TYPE :tensorflow:serving:request_count counter" in lines
    assert ':tensorflow:serving:request_count{model_name="digits",status="OK"} 2' in lines
    assert ':tensorflow:serving:request_count{model_name="digits",status="INVALID_ARGUMENT"} 1' in lines
    assert ':tensorflow:serving:request_count{model_name="we\\"ird",status="OK"} 1' in lines
    assert "# TYPE :tensorflow:serving:request_latency histogram" in lines
    prefix = ':tensorflow:serving:request_latency_bucket{model_name="digits",API="Predict",entrypoint="GRPC",'
    assert f'{prefix}le="10"}} 1' in lines and f'{prefix}le="18"}} 2' in lines and f'{prefix}le="+Inf"}} 2' in lines
    assert ':tensorflow:serving:request_latency_sum{model_name="digits",API="Predict",entrypoint="GRPC"} 25' in lines
    assert ':tensorflow:serving:request_latency_count{model_name="digits",API="Predict",entrypoint="GRPC"} 2' in lines
    assert not any('entrypoint="REST"' in line and 'model_name="digits"' in line for line in lines)
    big = [line for line in lines if 'model_name="we\\"ird"' in line and "le=" in line]
    assert len(big) == 34 and big[-2].endswith(" 0") and big[-1] == big[-1].split("le=")[0] + 'le="+Inf"} 1'
    assert ':tensorflow:serving:request_example_counts_bucket{model="digits",le="4"} 1' in lines
    assert ':tensorflow:serving:request_example_counts_bucket{model="digits",le="2"} 0' in lines


def test_status_names():
    assert metrics.status_name(ServingError(Code.NOT_FOUND, "x")) == "NOT_FOUND"
    assert metrics.status_name(RecursionError()) == "INVALID_ARGUMENT"
    assert metrics.status_name(KeyError("x")) == "INTERNAL"


def test_target_metrics_writes_the_file(tmp_path):
    class Options:
        metrics = True

    assert metrics.monitoring_file(Options(), tmp_path) == tmp_path / metrics.MONITORING_FILE
    Options.metrics = False
    assert metrics.monitoring_file(Options(), tmp_path / "nowhere") is None


@pytest.mark.parametrize(
    "extra, words",
    [
        ([], "give --rest_api_port"),
        (["--rest_api_port=8501", "--monitoring_config_file=missing.config"], "cannot read it"),
        (["--rest_api_port=8501", "--monitoring_config_file=BAD"], "Invalid protobuf file"),
    ],
)
def test_serve_cli_rejects_bad_monitoring_flags(tmp_path, capsys, monkeypatch, extra, words):
    monkeypatch.chdir(tmp_path)
    good = metrics.write_monitoring_config(tmp_path)
    (tmp_path / "BAD").write_text("prometheus_config { enable: 7 }")
    argv = ["--model_base_path=models/x", f"--monitoring_config_file={good}", *extra]
    assert serve_cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_every_backend_gets_the_monitoring_file(tmp_path, monkeypatch):
    from tfrun.tasks.tfserving import backends

    monkeypatch.setattr(backends, "binary_path", lambda: "/opt/tensorflow_model_server")
    file = metrics.write_monitoring_config(tmp_path)
    spec = backends.ServerSpec(
        model_name="m", base_path=tmp_path / "m", grpc_port=1, rest_port=2, monitoring_config_file=file
    )
    for backend in ("embedded", "binary"):
        assert f"--monitoring_config_file={file.resolve()}" in backends.command(backend, spec)
    docker = backends.command("docker", spec)
    assert f"type=bind,source={file.resolve()},target=/config/monitoring.config,readonly" in docker
    assert docker[-1] == "--monitoring_config_file=/config/monitoring.config"
    spec.monitoring_config_file = None
    assert not any("monitoring" in a for a in backends.command("embedded", spec))
