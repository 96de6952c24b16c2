"""Step names and where they are implemented, imported only when a step runs (in the child)."""

from __future__ import annotations

from typing import Any

# name -> "module:function"; each function is step(cfg, ctx) -> dict
STEPS: dict[str, str] = {
    "hardware": "tfrun.tasks.hardware:step",
    "strategy": "tfrun.tasks.strategy:step",
    "data": "tfrun.tasks.data.step:step",
    "model": "tfrun.tasks.model:step",
    "train": "tfrun.tasks.train:step",
    "evaluate": "tfrun.tasks.evaluate:step",
    "export": "tfrun.tasks.export:step",
    "source": "tfrun.tasks.deploy_source:step",
    "promote": "tfrun.tasks.promote:step",
    "k8s_render": "tfrun.tasks.k8s.steps:render_step",
    "k8s_validate": "tfrun.tasks.k8s.steps:validate_step",
    "tfserving_push": "tfrun.tasks.tfserving.steps:push_step",
    "tfserving_start": "tfrun.tasks.tfserving.steps:start_step",
    "tfserving_parity": "tfrun.tasks.tfserving.steps:parity_step",
    "tfserving_latency": "tfrun.tasks.tfserving.steps:latency_step",
    "tfserving_report": "tfrun.tasks.tfserving.steps:report_step",
    "tfserving_serve": "tfrun.tasks.tfserving.steps:serve_step",
    "tfserving_rollback": "tfrun.tasks.tfserving.steps:rollback_step",
    "tflite_convert": "tfrun.tasks.tflite:convert_step",
    "tflite_evaluate": "tfrun.tasks.tflite:evaluate_step",
    "tflite_gate": "tfrun.tasks.tflite:gate_step",
    "web_convert": "tfrun.tasks.web.steps:convert_step",
    "web_bundle": "tfrun.tasks.web.steps:bundle_step",
    "web_parity": "tfrun.tasks.web.steps:parity_step",
    "web_serve": "tfrun.tasks.web.steps:serve_step",
    "web_serve_bundle": "tfrun.tasks.web.steps:serve_bundle_step",
    "vertex_preflight": "tfrun.tasks.vertex.preflight:step",
    "vertex_upload": "tfrun.tasks.vertex.steps:upload_step",
    "vertex_model": "tfrun.tasks.vertex.steps:model_step",
    "vertex_deploy": "tfrun.tasks.vertex.endpoint:deploy_step",
    "vertex_parity": "tfrun.tasks.vertex.endpoint:parity_step",
    "vertex_latency": "tfrun.tasks.vertex.endpoint:latency_step",
    "vertex_batch_input": "tfrun.tasks.vertex.batch:input_step",
    "vertex_batch_job": "tfrun.tasks.vertex.batch:job_step",
    "vertex_batch_read": "tfrun.tasks.vertex.batch:read_step",
    "vertex_report": "tfrun.tasks.vertex.steps:report_step",
    "vertex_stage": "tfrun.tasks.vertex.training:stage_step",
    "vertex_job": "tfrun.tasks.vertex.training:job_step",
    "vertex_job_result": "tfrun.tasks.vertex.training:result_step",
    "vertex_register": "tfrun.tasks.vertex.training:register_step",
    "vertex_tuning_job": "tfrun.tasks.vertex.tuning:job_step",
    "vertex_trials": "tfrun.tasks.vertex.tuning:trials_step",
    "vertex_replica_restore": "tfrun.tasks.vertex.replica:restore_step",
    "vertex_replica_publish": "tfrun.tasks.vertex.replica:publish_step",
}


def load(name: str) -> Any:
    """Import a step's function (in the child, where TensorFlow may be imported)."""
    import importlib

    module_name, function_name = STEPS[name].split(":")
    return getattr(importlib.import_module(module_name), function_name)
