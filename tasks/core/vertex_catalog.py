"""What Vertex AI accepts, in pure Python: machines, accelerators, regions, images, names, links.

Shared by the runner (validation and the dry-run plan, where no SDK may be imported) and by
the steps (which pass the same values to the SDK), so a plan and a run never disagree. The
tables follow Google's documentation for prediction and custom training (read 2026-11-29);
`tests/unit/test_vertex_catalog.py` checks the image table against the SDK's own.
"""

from __future__ import annotations

import re
from typing import Any, Iterator, Optional

# Prebuilt TensorFlow prediction images (aiplatform/constants/prediction.py): newest is 2.15.
PREBUILT_TF_PREDICTION_VERSION = "2.15"
TRAINED_WITH_TF = "2.21"
IMAGE_PREFIXES = ("us", "europe", "asia")  # the Artifact Registry multi-regions the images live in
DEFAULT_TFRUN_IMAGE = "{region}-docker.pkg.dev/{project}/tfrun/tfrun-serving:0.1.0"

TERMINAL_JOB_STATES = (
    "JOB_STATE_SUCCEEDED",
    "JOB_STATE_FAILED",
    "JOB_STATE_CANCELLED",
    "JOB_STATE_EXPIRED",
    "JOB_STATE_PARTIALLY_SUCCEEDED",
)
RESERVED_LABELS = ("tfrun-run-id", "tfrun-model")  # tfrun's own: clean-up finds a run's resources by them

REGION_RE = re.compile(r"^[a-z]+(?:-[a-z]+)+\d+$")
MACHINE_RE = re.compile(r"^(?P<family>[a-z]\d[a-z]?)-(?P<kind>[a-z]+)-(?P<size>\d+)(?P<suffix>[a-z]*)$")

# Accelerator -> the machine families (and, for fixed-GPU machines, exact counts) that take it.
N1_GPU_COUNTS: dict[str, tuple[int, ...]] = {  # GPUs an n1 machine takes, per type (Compute Engine's limits)
    "NVIDIA_TESLA_T4": (1, 2, 4),
    "NVIDIA_TESLA_P4": (1, 2, 4),
    "NVIDIA_TESLA_P100": (1, 2, 4),
    "NVIDIA_TESLA_V100": (1, 2, 4, 8),
    "NVIDIA_TESLA_K80": (1, 2, 4, 8),
}
N1_GPUS = tuple(N1_GPU_COUNTS)
FIXED_GPU_MACHINES: dict[str, tuple[str, int]] = {  # machine type -> (accelerator, count it comes with)
    **{f"a2-highgpu-{n}g": ("NVIDIA_TESLA_A100", n) for n in (1, 2, 4, 8)},
    "a2-megagpu-16g": ("NVIDIA_TESLA_A100", 16),
    **{f"a2-ultragpu-{n}g": ("NVIDIA_A100_80GB", n) for n in (1, 2, 4, 8)},
    "a3-highgpu-8g": ("NVIDIA_H100_80GB", 8),
    **{
        f"g2-standard-{cpus}": ("NVIDIA_L4", n)
        for cpus, n in ((4, 1), (8, 1), (12, 1), (16, 1), (24, 2), (32, 1), (48, 4), (96, 8))
    },
}
CPU_ONLY_FAMILIES = ("e2", "n2", "n2d", "c2", "c2d", "c3", "m1")
ACCELERATORS = tuple(sorted(set(N1_GPUS) | {a for a, _ in FIXED_GPU_MACHINES.values()}))


def machine_problem(machine_type: str) -> Optional[str]:
    """None when the machine type is one Vertex serves/trains on, else what is allowed."""
    if machine_type in FIXED_GPU_MACHINES:
        return None
    m = MACHINE_RE.match(machine_type or "")
    if not m or m["family"] not in ("n1", *CPU_ONLY_FAMILIES) or m["kind"] not in ("standard", "highmem", "highcpu"):
        return (
            "a Vertex machine type such as n1-standard-4, e2-standard-4, n1-highmem-8, a2-highgpu-1g or g2-standard-8"
        )
    return None


def accelerator_problem(machine_type: str, accelerator: Optional[str], count: int) -> Optional[str]:
    """None when (machine, accelerator, count) is a combination Vertex accepts, else what is."""
    if machine_type in FIXED_GPU_MACHINES:
        gpu, n = FIXED_GPU_MACHINES[machine_type]
        if accelerator != gpu or count != n:
            return f"{gpu} x {n} with machine_type={machine_type} (the machine comes with them)"
        return None
    if accelerator is None:
        return None if count == 0 else "0 when accelerator_type is null"
    family = machine_type.split("-", 1)[0]
    if family != "n1":
        return f"null with machine_type={machine_type} ({family} machines take no accelerators; use n1-*, a2-*, g2-*)"
    if accelerator not in N1_GPUS:
        return f"one of {', '.join(N1_GPUS)} on n1 machines"
    if count not in N1_GPU_COUNTS[accelerator]:
        return f"a count in {list(N1_GPU_COUNTS[accelerator])} for {accelerator} on n1 machines"
    return None


# TPU machines of custom training (Google's docs, "Use TPUs for custom training"): machine -> (accelerator, counts)
TPU_MACHINES: dict[str, tuple[str, tuple[int, ...]]] = {
    "cloud-tpu": ("TPU_V3", (8,)),  # TPU_V2 also, with 8 cores
    "ct5lp-hightpu-1t": ("TPU_V5_LITEPOD", (1,)),
    "ct5lp-hightpu-4t": ("TPU_V5_LITEPOD", (4,)),
    "ct5lp-hightpu-8t": ("TPU_V5_LITEPOD", (8,)),
}
TPU_ACCELERATORS = {"cloud-tpu": ("TPU_V2", "TPU_V3")}

# Prebuilt TensorFlow training images (aiplatform's list of training containers): newest is 2.17.
PREBUILT_TF_TRAINING_VERSION = "2.17"
PREBUILT_TRAINING_PYTHON = "py310"


def training_accelerator_problem(machine_type: str, accelerator: Optional[str], count: int) -> Optional[str]:
    """accelerator_problem for training machines, TPU machines included."""
    if machine_type in TPU_MACHINES:
        default, counts = TPU_MACHINES[machine_type]
        allowed = TPU_ACCELERATORS.get(machine_type, (default,))
        if accelerator not in allowed or count not in counts:
            return f"{' or '.join(allowed)} x {' or '.join(map(str, counts))} with machine_type={machine_type}"
        return None
    if accelerator is not None and accelerator.startswith("TPU"):
        return f"a GPU type or null with machine_type={machine_type} (TPUs come with {', '.join(TPU_MACHINES)})"
    return accelerator_problem(machine_type, accelerator, count)


def prebuilt_training_image(region: str, gpu: bool) -> str:
    """The newest prebuilt TensorFlow training image for this region and hardware kind (tfrun goes on top)."""
    prefix = region.split("-", 1)[0]
    kind = "gpu" if gpu else "cpu"
    version = PREBUILT_TF_TRAINING_VERSION.replace(".", "-")
    return f"{prefix}-docker.pkg.dev/vertex-ai/training/tf-{kind}.{version}.{PREBUILT_TRAINING_PYTHON}:latest"


def region_problem(region: str) -> Optional[str]:
    if not REGION_RE.match(region or ""):
        return "a region such as us-central1, europe-west4 or asia-east1"
    if region.split("-", 1)[0] not in IMAGE_PREFIXES:
        return (
            "a region in the us, europe or asia multi-regions (the prebuilt TensorFlow images are served "
            "only there), or target.serving_container=<image URI> of your own"
        )
    return None


BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")


def bucket_problem(name: str) -> Optional[str]:
    """Cloud Storage's bucket naming rules, checked before anything is created."""
    rules = (
        "3-63 characters (222 with dots, 63 per dot-separated part) of lowercase letters, digits, '-', "
        "'_' and '.', starting and ending with a letter or digit, not an IP address, not starting with "
        "'goog' nor containing 'google', without the gs:// prefix"
    )
    if not name or not BUCKET_RE.match(name) or name.startswith("goog") or "google" in name:
        return rules
    parts = name.split(".")
    if len(name) > (222 if len(parts) > 1 else 63) or len(name) < 3 or any(len(p) > 63 or not p for p in parts):
        return rules
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        return rules
    return None


LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")


def label_problems(labels: dict[str, str]) -> Iterator[tuple[str, str, str]]:
    """(key, value, allowed) for every label Google would refuse."""
    for key, value in labels.items():
        if not LABEL_KEY_RE.match(str(key)):
            yield (
                str(key),
                str(value),
                "label keys of 1-63 lowercase letters, digits, '_' or '-', starting with a letter",
            )
        elif not LABEL_VALUE_RE.match(str(value)):
            yield (str(key), str(value), "label values of 0-63 lowercase letters, digits, '_' or '-'")
        if key in RESERVED_LABELS:
            yield (
                str(key),
                str(value),
                f"a key other than {', '.join(RESERVED_LABELS)} (tfrun sets them: "
                "clean-up finds a run's resources by them)",
            )
    if len(labels) > 62:
        yield ("labels", str(len(labels)), "at most 62 labels (tfrun adds 2 of its own)")


def label_value(text: str) -> str:
    """Any text as a valid label value (lowercase, [a-z0-9_-], at most 63 characters)."""
    return re.sub(r"[^a-z0-9_-]", "-", text.lower())[:63]


def prebuilt_prediction_image(region: str, gpu: bool) -> str:
    """The newest prebuilt TensorFlow prediction image for this region and hardware kind."""
    prefix = region.split("-", 1)[0]
    kind = "gpu" if gpu else "cpu"
    return f"{prefix}-docker.pkg.dev/vertex-ai/prediction/tf2-{kind}.{PREBUILT_TF_PREDICTION_VERSION.replace('.', '-')}:latest"


def serving_image(choice: str, *, region: str, project: str, gpu: bool, tfrun_image: Optional[str]) -> str:
    """target.serving_container: prebuilt | tfrun | an image URI -> the image Model.upload gets."""
    if choice == "prebuilt":
        return prebuilt_prediction_image(region, gpu)
    if choice == "tfrun":
        return tfrun_image or DEFAULT_TFRUN_IMAGE.format(region=region, project=project)
    return choice


def console_link(kind: str, *, project: str, region: str, resource_id: str) -> str:
    """The Google Cloud console page of a resource (what a user clicks to see or stop it)."""
    base = "https://console.cloud.google.com"
    pages = {
        "model": f"{base}/vertex-ai/locations/{region}/models/{resource_id}?project={project}",
        "endpoint": f"{base}/vertex-ai/locations/{region}/endpoints/{resource_id}?project={project}",
        "batch_job": f"{base}/vertex-ai/locations/{region}/batch-predictions/{resource_id}?project={project}",
        "bucket": f"{base}/storage/browser/{resource_id}?project={project}",
        # the SDK's own links (jobs.py _dashboard_uri)
        "custom_job": f"{base}/agent-platform/locations/{region}/training/{resource_id}?project={project}",
        "tuning_job": f"{base}/agent-platform/locations/{region}/training/{resource_id}?project={project}",
    }
    return pages[kind]


# Model Registry aliases (REST v1 Model.version_aliases): distinct from version ids, so never all digits
VERSION_ALIAS_RE = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]$")


def version_alias_problem(alias: Any) -> Optional[str]:
    """Why `alias` is not a Vertex model version alias, or None when it is one (`default` is tfrun's to move:
    target.default_version)."""
    if not isinstance(alias, str) or not VERSION_ALIAS_RE.match(alias):
        return (
            "a Vertex version alias: a lowercase letter, then letters, digits or '-', ending in a lowercase "
            "letter or digit, 2-128 characters, e.g. champion"
        )
    if alias == "default":
        return "an alias other than default (target.default_version=true gives the version the default alias)"
    return None
