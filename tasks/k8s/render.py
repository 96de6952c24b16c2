"""Plans -> Kubernetes manifests (plain dicts) -> the YAML files of <run dir>/k8s/ that `kubectl apply -f` takes.

Serving: a Deployment of TF Serving pods (readiness, startup and liveness probes on /v1/models/NAME, resources,
the model from gs:// or a PersistentVolumeClaim, TF Serving's monitoring config from a ConfigMap), a Service and a
HorizontalPodAutoscaler (autoscaling/v2, CPU).

Training: one Indexed Job per task type (chief, worker, ps) and one headless Service. Kubernetes' own kinds, not
Kubeflow's TFJob: they need no operator in the cluster, and kubernetes-validate checks them against the API's
schemas offline (a TFJob is a custom resource it has no schema for). Each pod's TF_CONFIG names every task by its
pod's DNS name under the Service; its own index is the pod's completion index, which the downward API puts in
TASK_INDEX and the kubelet expands into TF_CONFIG (`$(TASK_INDEX)`), so task k of a type gets the same
TF_CONFIG as cluster=local's task k, host names aside.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tfrun.tasks.core import tf_config
from tfrun.tasks.k8s.config import GRPC_PORT, REST_PORT, ServingPlan, TrainingPlan
from tfrun.tasks.tfserving.metrics import DEFAULT_PATH, monitoring_config_text

INDEX_VAR = "TASK_INDEX"
COMPLETION_INDEX = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
MONITORING_DIR = "/etc/tfserving"
MONITORING_FILE = "monitoring.config"
MANAGED_BY = {"app.kubernetes.io/managed-by": "tfrun"}


def _meta(name: str, namespace: str, labels: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": dict(labels), **extra}


def _resources(requests: dict[str, str], limits: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = dict(requests)
    if limits:
        out["limits"] = dict(limits)
    return out


# ------------------------------------------------------------------------------------------ serving
def serving_manifests(plan: ServingPlan) -> dict[str, list[dict[str, Any]]]:
    """File name -> the manifests in it, for a served model."""
    labels = {"app.kubernetes.io/name": plan.name, "app.kubernetes.io/component": "serving", **MANAGED_BY}
    selector = {"app.kubernetes.io/name": plan.name, "app.kubernetes.io/component": "serving"}
    files: dict[str, list[dict[str, Any]]] = {}
    monitoring = f"{plan.name}-monitoring"
    if plan.metrics:
        files["configmap.yaml"] = [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": _meta(monitoring, plan.namespace, labels),
                "data": {MONITORING_FILE: monitoring_config_text(DEFAULT_PATH)},
            }
        ]
    files["deployment.yaml"] = [_deployment(plan, labels, selector, monitoring)]
    files["service.yaml"] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(plan.name, plan.namespace, labels),
            "spec": {
                "type": plan.service_type,
                "selector": selector,
                "ports": [
                    {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"},
                    {"name": "rest", "port": REST_PORT, "targetPort": "rest", "protocol": "TCP"},
                ],
            },
        }
    ]
    files["hpa.yaml"] = [
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": _meta(plan.name, plan.namespace, labels),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": plan.name},
                "minReplicas": plan.replicas,
                "maxReplicas": plan.max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": plan.target_cpu_percent},
                        },
                    }
                ],
            },
        }
    ]
    return files


def server_command(plan: ServingPlan) -> tuple[list[str], list[str]]:
    """The container's command and args: tensorflow_model_server's flags, which tfrun-serve shares."""
    args = [
        f"--port={GRPC_PORT}",
        f"--rest_api_port={REST_PORT}",
        f"--model_name={plan.model_name}",
        f"--model_base_path={plan.model_base_path}",
    ]
    if plan.metrics:
        args.append(f"--monitoring_config_file={MONITORING_DIR}/{MONITORING_FILE}")
    if plan.server == "tfrun":  # tfrun-serve binds 127.0.0.1 unless told: the kubelet's probes come from outside
        return ["tfrun-serve"], ["--host=0.0.0.0", *args]
    return ["tensorflow_model_server"], args


def _deployment(plan: ServingPlan, labels: dict[str, str], selector: dict[str, str], monitoring: str) -> dict[str, Any]:
    command, args = server_command(plan)
    status = f"/v1/models/{plan.model_name}"
    probe = {"httpGet": {"path": status, "port": "rest"}, "periodSeconds": 10, "timeoutSeconds": 5}
    mounts: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    if plan.model_uri is None:
        mounts.append({"name": "models", "mountPath": "/models", "readOnly": True})
        volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": plan.model_claim, "readOnly": True}})
    if plan.metrics:
        mounts.append({"name": "monitoring", "mountPath": MONITORING_DIR, "readOnly": True})
        volumes.append({"name": "monitoring", "configMap": {"name": monitoring}})
    container: dict[str, Any] = {
        "name": "serving",
        "image": plan.image,
        "command": command,
        "args": args,
        "ports": [
            {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
            {"name": "rest", "containerPort": REST_PORT, "protocol": "TCP"},
        ],
        # loading may take minutes: the startup probe holds liveness off until the model answers once
        "startupProbe": {**probe, "failureThreshold": 60},
        "readinessProbe": {**probe, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**probe, "failureThreshold": 6},
        "resources": _resources(plan.requests, plan.limits),
        "volumeMounts": mounts,
    }
    pod_annotations = (
        {"prometheus.io/scrape": "true", "prometheus.io/port": str(REST_PORT), "prometheus.io/path": DEFAULT_PATH}
        if plan.metrics
        else {}
    )
    annotations = {"tfrun/model-name": plan.model_name}
    if plan.version is not None:
        annotations["tfrun/model-version"] = str(plan.version)
    for key in ("run_id", "saved_model", "sha256"):
        if plan.source.get(key):
            annotations[f"tfrun/source-{key.replace('_', '-')}"] = str(plan.source[key])
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(plan.name, plan.namespace, labels, annotations=annotations),
        "spec": {
            "replicas": plan.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels, **({"annotations": pod_annotations} if pod_annotations else {})},
                "spec": {"containers": [container], "volumes": volumes},
            },
        },
    }


# ------------------------------------------------------------------------------------------ training
def tf_config_template(plan: TrainingPlan, kind: str) -> str:
    """The TF_CONFIG of every pod of `kind`: its index is `$(TASK_INDEX)`, which the kubelet expands."""
    marker = "__tfrun_task_index__"
    return tf_config.compose(plan.cluster(), kind, marker).replace(json.dumps(marker), f"$({INDEX_VAR})")


def training_manifests(plan: TrainingPlan) -> dict[str, list[dict[str, Any]]]:
    """File name -> the manifests in it, for a distributed training config."""
    labels = {"app.kubernetes.io/name": plan.name, "app.kubernetes.io/component": "training", **MANAGED_BY}
    selector = {"app.kubernetes.io/name": plan.name, "app.kubernetes.io/component": "training"}
    files: dict[str, list[dict[str, Any]]] = {
        "service.yaml": [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": _meta(plan.name, plan.namespace, labels),
                "spec": {
                    "clusterIP": "None",  # headless: one DNS name per pod, <hostname>.<service>
                    "publishNotReadyAddresses": True,  # the tasks must find each other before any is ready
                    "selector": selector,
                    "ports": [{"name": "tf", "port": plan.port, "targetPort": plan.port, "protocol": "TCP"}],
                },
            }
        ]
    }
    for kind, count in plan.counts.items():
        files[f"job-{kind}.yaml"] = [_job(plan, kind, count, labels)]
    return files


def _job(plan: TrainingPlan, kind: str, count: int, labels: dict[str, str]) -> dict[str, Any]:
    pod_labels = {**labels, "tfrun/task-type": kind}
    container: dict[str, Any] = {
        "name": "tensorflow",
        "image": plan.image,
        "env": [
            {"name": INDEX_VAR, "valueFrom": {"fieldRef": {"fieldPath": COMPLETION_INDEX}}},
            {"name": "TF_CONFIG", "value": tf_config_template(plan, kind)},
        ],
        "ports": [{"name": "tf", "containerPort": plan.port, "protocol": "TCP"}],
        "resources": _resources(plan.requests, plan.limits),
    }
    if plan.runs_plan(kind):
        container["command"] = ["tfrun"]
        container["args"] = list(plan.args)
    else:  # a parameter-server cluster's ps and worker tasks: a TensorFlow server the chief dispatches to
        container["command"] = ["python", "-m", "tfrun.tasks.cluster_server"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(f"{plan.name}-{kind}", plan.namespace, pod_labels),
        "spec": {
            "completionMode": "Indexed",
            "completions": count,
            "parallelism": count,  # every task runs at once: the cluster forms only when all have joined
            "backoffLimit": 0,  # a failed task fails the run, as with cluster=local
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {"subdomain": plan.name, "restartPolicy": "Never", "containers": [container]},
            },
        },
    }


# ------------------------------------------------------------------------------------------ files
def write(folder: Path, files: dict[str, list[dict[str, Any]]]) -> list[Path]:
    """Write each file's manifests as YAML documents; the paths written, in order."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, docs in files.items():
        path = folder / name
        path.write_text(
            "# Rendered by tfrun job=k8s (nothing was applied). Apply this folder with: kubectl apply -f <folder>/\n"
            + yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, width=1_000_000)
        )
        written.append(path)
    return written


def expand(template: str, env: dict[str, str]) -> str:
    """The kubelet's expansion of `$(VAR)` in an env value from the variables defined before it."""
    out = template
    for name, value in env.items():
        out = out.replace(f"$({name})", value)
    return out
