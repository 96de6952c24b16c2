"""job=k8s through the real `tfrun` command (no TensorFlow): manifests for a served model and for a distributed
training config, each validated here again with kubernetes-validate (strict, its newest Kubernetes); every training
replica's TF_CONFIG compared with what cluster=local gives the same task; bad inputs refused with exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import assert_rejected, offline_tfrun, read_record, tfrun
from tfrun.runner.processes.cluster_layout import local_cluster_tasks
from tfrun.tasks.k8s import check, render

try:
    import kubernetes_validate
except ImportError:  # the k8s extra; the suite's environment has it, so CI must run these tests
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("kubernetes-validate (the k8s extra) is not installed", allow_module_level=True)
IMAGE = "registry.example.com/team/tfrun-training:1.0"


def _source(root: Path) -> Path:
    """A SavedModel folder as job=deploy takes one (job=k8s reads no graph: only the files' presence)."""
    version = root / "models" / "digits_mlp" / "0003"
    (version / "variables").mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"\x08\x01")
    (version / "variables" / "variables.index").write_bytes(b"index")
    return version


def _manifests(run_dir: Path) -> dict[str, dict[str, Any]]:
    """kind/name -> manifest, each validated strictly against the newest Kubernetes schemas."""
    version = kubernetes_validate.latest_version()
    found = {}
    for path in sorted((run_dir / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            kubernetes_validate.validate(doc, version, strict=True)
            found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


def test_served_model_manifests(tmp_path):
    _source(tmp_path)
    run_dir = tmp_path / "runs" / "serve"
    proc = tfrun(
        "job=k8s",
        "source=models/digits_mlp/0003",
        "k8s.replicas=3",
        "k8s.max_replicas=6",
        "k8s.limits.memory=3Gi",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = read_record(run_dir)
    assert record["status"] == "succeeded" and record["plan"] == ["k8s_render", "k8s_validate"]
    validate = next(s for s in record["steps"] if s["name"] == "k8s_validate")["result"]
    assert validate["validated"] is True and validate["strict"] is True
    assert validate["kubernetes_version"] == kubernetes_validate.latest_version()
    assert record["source"]["saved_model"] == "models/digits_mlp/0003"
    assert {a["kind"] for a in record["artifacts"]} == {"k8s_manifest"}

    found = _manifests(run_dir)
    assert set(found) == {
        "ConfigMap/digits-mlp-monitoring",
        "Deployment/digits-mlp",
        "Service/digits-mlp",
        "HorizontalPodAutoscaler/digits-mlp",
    }
    deployment = found["Deployment/digits-mlp"]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["metadata"]["annotations"]["tfrun/model-version"] == "3"
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["image"] == "tensorflow/serving:2.21.0" and container["command"] == ["tensorflow_model_server"]
    assert "--model_name=digits_mlp" in container["args"]
    assert "--model_base_path=/models/digits_mlp" in container["args"]
    assert "--monitoring_config_file=/etc/tfserving/monitoring.config" in container["args"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/v1/models/digits_mlp", "port": "rest"}
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "3Gi"},
    }
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/monitoring/prometheus/metrics"
    claim = pod["spec"]["volumes"][0]["persistentVolumeClaim"]
    assert claim == {"claimName": "tfrun-models", "readOnly": True}
    monitoring = found["ConfigMap/digits-mlp-monitoring"]["data"]["monitoring.config"]
    assert "enable: true" in monitoring and '"/monitoring/prometheus/metrics"' in monitoring
    hpa = found["HorizontalPodAutoscaler/digits-mlp"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 6)
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "digits-mlp"}

    # The same source from Cloud Storage with tfrun's own serving image would need a volume: refused
    proc = tfrun(
        "job=k8s",
        "source=models/digits_mlp/0003",
        "k8s.server=tfrun",
        "k8s.image=registry.example.com/tfrun-serving:1",
        "k8s.model_uri=gs://bucket/models/digits_mlp",
        f"hydra.run.dir={tmp_path / 'runs' / 'gcs'}",
        cwd=tmp_path,
    )
    assert_rejected(proc, ["k8s.model_uri", "k8s.model_claim"], tmp_path / "runs" / "gcs")


def _local_tf_configs(compose_cfg, overrides: list[str]) -> dict[str, tuple[dict[str, Any], bool]]:
    """ "type:index" -> (TF_CONFIG, runs the plan) of every process cluster=local starts for these overrides."""
    cfg = compose_cfg(*overrides)
    tasks, _ = local_cluster_tasks(cfg, b"", {})
    return {t.name: (json.loads(t.env["TF_CONFIG"]), t.runs_plan) for t in tasks}


@pytest.mark.parametrize(
    "overrides",
    [
        ["strategy=multi_worker", "cluster=local", "cluster.workers=3", "cluster.chief=true"],
        ["strategy=multi_worker", "cluster=local", "cluster.workers=2"],
        ["strategy=parameter_server", "cluster=local", "cluster.workers=2", "cluster.ps=2"],
    ],
)
def test_training_replicas_get_cluster_locals_tf_config(tmp_path, compose_cfg, overrides):
    run_dir = tmp_path / "runs" / "train"
    proc = tfrun(
        "job=k8s", *overrides, f"k8s.image={IMAGE}", "train.epochs=3", f"hydra.run.dir={run_dir}", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = read_record(run_dir)
    assert record["status"] == "succeeded"
    assert "cluster" not in record, "job=k8s starts no local cluster: it renders the one the config describes"
    found = _manifests(run_dir)
    local = _local_tf_configs(compose_cfg, overrides)

    k8s: dict[str, tuple[dict[str, Any], bool]] = {}
    for doc in found.values():
        if doc["kind"] != "Job":
            continue
        spec = doc["spec"]
        assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"]
        pod = spec["template"]["spec"]
        service = found[f"Service/{pod['subdomain']}"]["spec"]
        assert service["clusterIP"] == "None" and service["selector"].items() <= doc["metadata"]["labels"].items()
        container = pod["containers"][0]
        env = container["env"]
        assert env[0]["name"] == render.INDEX_VAR  # defined before TF_CONFIG, so the kubelet expands it there
        assert env[0]["valueFrom"]["fieldRef"]["fieldPath"] == render.COMPLETION_INDEX
        template = next(e["value"] for e in env if e["name"] == "TF_CONFIG")
        runs_plan = container["command"] == ["tfrun"]
        if runs_plan:
            assert container["args"][-1] == "cluster=tf_config" and "train.epochs=3" in container["args"]
            assert not any(a.startswith(("job=", "k8s.", "cluster.")) for a in container["args"])
        for index in range(spec["completions"]):
            tf_config = json.loads(render.expand(template, {render.INDEX_VAR: str(index)}))
            kind = tf_config["task"]["type"]
            assert doc["metadata"]["name"].endswith(f"-{kind}")
            # the pod of completion index i is <job name>-<i> under the headless Service: its own address
            assert tf_config["cluster"][kind][index].startswith(
                f"{doc['metadata']['name']}-{index}.{pod['subdomain']}."
            )
            k8s[f"{kind}:{index}"] = (tf_config, runs_plan)
    assert record["steps"][0]["result"]["k8s"]["tf_config"] == {name: c for name, (c, _) in k8s.items()}

    assert set(k8s) == set(local)
    for name, (tf_config, runs_plan) in k8s.items():
        expected, expected_runs_plan = local[name]
        assert runs_plan == expected_runs_plan, name
        assert list(tf_config["cluster"]) == list(expected["cluster"]), name  # same task types, same order
        hosts = {}  # cluster=local's 127.0.0.1:PORT -> the pod's DNS name, position by position
        for kind, addresses in expected["cluster"].items():
            assert len(addresses) == len(tf_config["cluster"][kind])
            hosts.update(zip(addresses, tf_config["cluster"][kind]))
        mapped = {kind: [hosts[a] for a in addresses] for kind, addresses in expected["cluster"].items()}
        assert {"cluster": mapped, "task": expected["task"]} == tf_config, name


@pytest.mark.parametrize(
    "args, words",
    [
        (["source=nowhere/0001"], ["source", "nowhere/0001", "does not exist"]),
        (["source=models/digits_mlp/0003", "k8s.replicas=0"], ["k8s.replicas", "0"]),
        (["source=models/digits_mlp/0003", "k8s.image=tensorflow/Serving:2.21.0"], ["k8s.image", "an image reference"]),
        (["source=models/digits_mlp/0003", "k8s.requests.cpu=lots"], ["k8s.requests.cpu", "lots", "quantity"]),
        (["source=models/digits_mlp/0003", "k8s.limits.memory=1GB"], ["k8s.limits.memory", "1GB", "quantity"]),
        (["source=models/digits_mlp/0003", "~k8s.requests.cpu"], ["k8s.requests", "a cpu request for serving"]),
        (["source=models/digits_mlp/0003", "model_name=../x"], ["model_name", "../x", "'..'"]),
        (["source=models/digits_mlp/0003", "k8s.name=Digits_MLP"], ["k8s.name", "RFC 1123"]),
        (["source=models/digits_mlp/0003", "cluster=local"], ["cluster", "none with job=k8s source="]),
        ([], ["source", "strategy=multi_worker or parameter_server with cluster=local"]),
        (["strategy=multi_worker", "cluster=local"], ["k8s.image", "training image"]),
    ],
)
def test_bad_inputs_exit_2_with_one_line(tmp_path, args, words):
    _source(tmp_path)
    run_dir = tmp_path / "runs" / "bad"
    proc = tfrun("job=k8s", *args, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    message = assert_rejected(proc, words, run_dir)
    assert len([line for line in message.splitlines() if words[0] in line]) >= 1


def test_an_invalid_manifest_is_named_with_its_field(tmp_path):
    bad = tmp_path / "deployment.yaml"
    bad.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n"
        "spec: {replicas: three, selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, "
        "spec: {containers: [{name: c, image: i}]}}}\n"
    )
    with pytest.raises(
        check.ManifestInvalid, match=r"deployment.yaml: Deployment/x is not a valid Deployment at spec.replicas"
    ):
        check.validate_files([bad])
    unknown = tmp_path / "tfjob.yaml"
    unknown.write_text("apiVersion: kubeflow.org/v1\nkind: TFJob\nmetadata: {name: x}\nspec: {}\n")
    with pytest.raises(check.ManifestInvalid, match="no Kubernetes .* schema"):
        check.validate_files([unknown])  # why job=k8s renders Indexed Jobs, not a TFJob


def test_no_tensorflow_and_no_network(tmp_path):
    """job=k8s renders and validates with TensorFlow, the cloud SDKs and every socket blocked (runner and child)."""
    _source(tmp_path)
    log = tmp_path / "blocked.log"
    proc = offline_tfrun(["job=k8s", "source=models/digits_mlp/0003", "hydra.run.dir=runs/offline"], tmp_path, log)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert read_record(tmp_path / "runs" / "offline")["status"] == "succeeded"
    assert not log.exists(), f"blocked imports or connections were attempted:\n{log.read_text()}"
