"""The plan of a run: the ordered step names it executes (what `job` and the cluster choice decide).

Pure data and list arithmetic, so validation and the dry run compute the same plan the child runs. Where
each step is implemented is tfrun.runner.steps.STEPS.
"""

from __future__ import annotations

JOB_STEPS: dict[str, list[str]] = {
    "train": ["hardware", "strategy", "data", "model", "train", "evaluate", "export"],
    "serve": ["tfserving_serve"],  # no training: target steps are not appended (tfrun.runner.processes.execute.plan_of)
    "rollback": ["tfserving_rollback"],
    "serve_web": ["web_serve_bundle"],  # a target=web bundle already written
    "tune": [],  # cluster=vertex plans it (VertexCluster.machine_steps)
    "deploy": ["hardware", "data", "source"],  # no training: the target's steps follow, on the source SavedModel
    "promote": ["promote"],  # an alias moves to the source's version (tfrun.tasks.promote.PROMOTERS); no target steps
    "k8s": ["k8s_render", "k8s_validate"],  # manifests only: a cluster=local config describes, never starts, a cluster
}
# Jobs whose cluster config describes what they render: one process, no cluster formed (tfrun.runner.processes.execute)
DESCRIBING_JOBS = ("k8s",)


def replica_plan() -> list[str]:
    """Inside a replica of a Vertex job: train as one task of the job's cluster, then publish to AIP_* dirs.

    Checkpoints come down from AIP_CHECKPOINT_DIR before training, so a restarted replica resumes.
    """
    train = JOB_STEPS["train"]
    at = train.index("train")
    return [*train[:at], "vertex_replica_restore", *train[at:], "vertex_replica_publish"]


def plan(job: str, target_steps: list[str], preflight: list[str] | None = None) -> list[str]:
    """The ordered step names of one job: checks first, then the job's steps, then the target's."""
    return list(preflight or []) + JOB_STEPS[job] + list(target_steps)
