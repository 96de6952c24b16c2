"""job=k8s's steps: render the manifests into <run dir>/k8s/, then validate them offline. No TensorFlow.

`k8s_render` writes a served model's manifests when the run names a `source`, else the training cluster's; the
record lists each file (an artifact with its sha256) and, for training, every replica's TF_CONFIG as its pod will
read it. `k8s_validate` checks every manifest against the Kubernetes schemas when kubernetes-validate is installed
(and says so in the record either way).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tfrun.tasks.core import sources
from tfrun.tasks.core.files import sha256_file
from tfrun.tasks.core.record_io import relative
from tfrun.tasks.k8s import check, config, render

FOLDER = "k8s"
STATE = "k8s_files"


def replica_tf_configs(plan: config.TrainingPlan) -> dict[str, dict[str, Any]]:
    """ "type:index" -> the TF_CONFIG that pod reads (its template with the completion index expanded)."""
    out = {}
    for kind, count in plan.counts.items():
        template = render.tf_config_template(plan, kind)
        for index in range(count):
            out[f"{kind}:{index}"] = json.loads(render.expand(template, {render.INDEX_VAR: str(index)}))
    return out


def render_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    folder = Path(ctx.run_dir) / FOLDER
    result: dict[str, Any] = {}
    if cfg.get("source"):
        source = sources.resolve(str(cfg.source))
        plan = config.serving_plan(cfg, source)
        files = render.serving_manifests(plan)
        what = (
            f"model {plan.model_name}"
            + (f" version {plan.version}" if plan.version is not None else "")
            + f": Deployment ({plan.replicas} replicas, {plan.image}), Service, HorizontalPodAutoscaler"
            + (" and monitoring ConfigMap" if plan.metrics else "")
        )
        result["source"] = plan.source
        result["k8s"] = {"kind": "serving", "name": plan.name, "namespace": plan.namespace, "image": plan.image}
    else:
        plan = config.training_plan(cfg, list(ctx.overrides))
        files = render.training_manifests(plan)
        counts = ", ".join(f"{n} {kind}" for kind, n in plan.counts.items())
        what = f"training ({plan.strategy}: {counts}): Indexed Jobs and a headless Service, image {plan.image}"
        result["k8s"] = {
            "kind": "training",
            "name": plan.name,
            "namespace": plan.namespace,
            "image": plan.image,
            "tf_config": replica_tf_configs(plan),
        }
    written = render.write(folder, files)
    ctx.state[STATE] = written
    result["k8s"]["apply"] = f"kubectl apply -f {relative(folder)}/"
    result["k8s"]["files"] = [relative(p) for p in written]
    return {
        "summary": f"{len(written)} manifest files in {relative(folder)}/ for {what}",
        "artifacts": [
            {"kind": "k8s_manifest", "path": relative(p), "sha256": sha256_file(p), "reproducible": True}
            for p in written
        ],
        **result,
    }


def validate_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    written: list[Path] = ctx.need(STATE)
    version = check.available()
    if not cfg.k8s.validate:
        return {"summary": "not validated (k8s.validate=false)", "validated": False}
    if version is None:
        return {
            "summary": "not validated: kubernetes-validate is not installed (pip install 'tfrun[k8s]')",
            "validated": False,
        }
    report = check.validate_files(written, None)
    return {
        "summary": f"{len(report['checked'])} manifests valid against the Kubernetes {report['kubernetes_version']} "
        f"schemas (kubernetes-validate {version}, strict)",
        "validated": True,
        "validator": f"kubernetes-validate {version}",
        **report,
    }
