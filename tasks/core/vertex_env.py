"""Where this process runs on Vertex AI, read from the environment Vertex gives a replica (pure Python).

Shared by the runner (which, inside a replica, trains instead of submitting a job again, and turns a
tuning trial's `--name=value` arguments into Hydra overrides) and by the steps (which write to the
AIP_* folders). Nothing here is a flag the user sets: Vertex sets CLOUD_ML_JOB_ID and CLUSTER_SPEC
for every replica of a CustomJob or tuning trial, and tfrun never sets them itself.
"""

from __future__ import annotations

import os
import re
from typing import Mapping, Optional

from tfrun.tasks.core.tf_config import task  # noqa: F401 (this replica's TF_CONFIG task)

# Hyperparameter ids: Vertex passes each as `--<id>=<value>`; a config key's dots become "__".
PARAMETER_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
KEY_SEPARATOR = "__"
PROJECT_ENV = "TFRUN_PROJECT"  # gs:// URI of a staged user project: a replica unpacks it before Hydra starts


def inside_vertex(env: Mapping[str, str] | None = None) -> bool:
    """True in a replica of a Vertex CustomJob or tuning trial."""
    env = os.environ if env is None else env
    return bool(env.get("CLOUD_ML_JOB_ID")) and bool(env.get("CLUSTER_SPEC") or env.get("TF_CONFIG"))


def in_trial(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return inside_vertex(env) and bool(env.get("CLOUD_ML_TRIAL_ID"))


def parameter_id(key: str) -> str:
    """The Vertex parameter id of a config key: train.learning_rate -> train__learning_rate."""
    return key.replace(".", KEY_SEPARATOR)


def config_key(parameter: str) -> str:
    return parameter.replace(KEY_SEPARATOR, ".")


def trial_overrides(argv: list[str], hydra_flags: set[str], env: Mapping[str, str] | None = None) -> list[str]:
    """argv with a tuning trial's `--train__learning_rate=0.01` as `train.learning_rate=0.01`.

    Only inside a trial, and only for `--name=value` whose name is no Hydra flag: Vertex appends one per
    parameter to the replica's arguments.
    """
    if not in_trial(env):
        return argv
    out = []
    for arg in argv:
        name, sep, value = arg[2:].partition("=")
        if arg.startswith("--") and sep and name not in hydra_flags and PARAMETER_ID_RE.match(name):
            out.append(f"{config_key(name)}={value}")
        else:
            out.append(arg)
    return out


def output_dirs(env: Mapping[str, str] | None = None) -> dict[str, Optional[str]]:
    """The gs:// folders Vertex names for this replica (None when the job has no base output dir)."""
    env = os.environ if env is None else env
    return {
        "model": env.get("AIP_MODEL_DIR"),
        "checkpoints": env.get("AIP_CHECKPOINT_DIR"),
        "tensorboard": env.get("AIP_TENSORBOARD_LOG_DIR"),
    }


def record_uri(model_dir: str) -> str:
    """Where the chief puts its record: beside the model, gs://.../<base>/record.json for <base>/model/."""
    return model_dir.rstrip("/").rsplit("/", 1)[0] + "/record.json"
