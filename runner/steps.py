"""Step names and where they are implemented, imported only when a step runs (in the child)."""

from __future__ import annotations

from typing import Any

# name -> "module:function"; each function is step(cfg, ctx) -> dict
STEPS: dict[str, str] = {
    "hardware": "tasks.hardware:step",
    "strategy": "tasks.strategy:step",
    "data": "tasks.data.step:step",
    "model": "tasks.model:step",
    "train": "tasks.train:step",
    "evaluate": "tasks.evaluate:step",
    "export": "tasks.export:step",
    "tfserving_push": "tasks.tfserving.steps:push_step",
    "tfserving_start": "tasks.tfserving.steps:start_step",
    "tfserving_parity": "tasks.tfserving.steps:parity_step",
    "tfserving_latency": "tasks.tfserving.steps:latency_step",
    "tfserving_report": "tasks.tfserving.steps:report_step",
    "tfserving_serve": "tasks.tfserving.steps:serve_step",
    "tfserving_rollback": "tasks.tfserving.steps:rollback_step",
    "tflite_convert": "tasks.tflite:convert_step",
    "tflite_evaluate": "tasks.tflite:evaluate_step",
    "tflite_gate": "tasks.tflite:gate_step",
    "web_convert": "tasks.web.steps:convert_step",
    "web_bundle": "tasks.web.steps:bundle_step",
    "web_parity": "tasks.web.steps:parity_step",
    "web_serve": "tasks.web.steps:serve_step",
    "web_serve_bundle": "tasks.web.steps:serve_bundle_step",
    "vertex_preflight": "tasks.vertex.preflight:step",
    "vertex_upload": "tasks.vertex.steps:upload_step",
    "vertex_model": "tasks.vertex.steps:model_step",
    "vertex_deploy": "tasks.vertex.endpoint:deploy_step",
    "vertex_parity": "tasks.vertex.endpoint:parity_step",
    "vertex_latency": "tasks.vertex.endpoint:latency_step",
    "vertex_batch_input": "tasks.vertex.batch:input_step",
    "vertex_batch_job": "tasks.vertex.batch:job_step",
    "vertex_batch_read": "tasks.vertex.batch:read_step",
    "vertex_report": "tasks.vertex.steps:report_step",
    "vertex_stage": "tasks.vertex.training:stage_step",
    "vertex_job": "tasks.vertex.training:job_step",
    "vertex_job_result": "tasks.vertex.training:result_step",
    "vertex_register": "tasks.vertex.training:register_step",
    "vertex_tuning_job": "tasks.vertex.tuning:job_step",
    "vertex_trials": "tasks.vertex.tuning:trials_step",
    "vertex_replica_restore": "tasks.vertex.replica:restore_step",
    "vertex_replica_publish": "tasks.vertex.replica:publish_step",
}

def load(name: str) -> Any:
    """Import a step's function (in the child, where TensorFlow may be imported)."""
    import importlib

    module_name, function_name = STEPS[name].split(":")
    return getattr(importlib.import_module(module_name), function_name)
