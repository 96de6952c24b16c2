"""Validation of `dedicatedResources` / `machineSpec` as Vertex does it before anything is deployed.

Machine types are checked by family (n1, n2, n2d, e2, c2, c2d, m1, a2, a3, g2); accelerators must come
with a count and be allowed on the family (n1: K80, P4, P100, V100, T4; a2: A100; g2: L4; a3: H100).
The checks answer INVALID_ARGUMENT at once, as Vertex's front end does.
"""

from __future__ import annotations

import re

from .wire import ApiError

_MACHINE = re.compile(
    r"^(?:n1-(?:standard|highmem|highcpu)-(?:1|2|4|8|16|32|64|96)"
    r"|n2d?-(?:standard|highmem|highcpu)-(?:2|4|8|16|32|48|64|80|96|128)"
    r"|e2-(?:standard|highmem|highcpu)-(?:2|4|8|16|32)"
    r"|c2d?-(?:standard|highmem|highcpu)-(?:2|4|8|16|30|32|56|60|112)"
    r"|m1-ultramem-(?:40|80|160)"
    r"|a2-(?:highgpu-(?:1|2|4|8)g|megagpu-16g|ultragpu-(?:1|2|4|8)g)"
    r"|a3-(?:highgpu|megagpu)-(?:1|2|4|8)g"
    r"|g2-standard-(?:4|8|12|16|24|32|48|96))$"
)
_ACCELERATORS = {
    "n1-": {"NVIDIA_TESLA_K80", "NVIDIA_TESLA_P4", "NVIDIA_TESLA_P100", "NVIDIA_TESLA_V100", "NVIDIA_TESLA_T4"},
    "a2-highgpu": {"NVIDIA_TESLA_A100"},
    "a2-megagpu": {"NVIDIA_TESLA_A100"},
    "a2-ultragpu": {"NVIDIA_A100_80GB"},
    "a3-highgpu": {"NVIDIA_H100_80GB"},
    "a3-megagpu": {"NVIDIA_H100_MEGA_80GB"},
    "g2-": {"NVIDIA_L4"},
}
NONE = "ACCELERATOR_TYPE_UNSPECIFIED"


def check_machine_spec(spec: dict, where: str) -> dict:
    """A validated copy of a MachineSpec (acceleratorType defaulted to UNSPECIFIED)."""
    machine = spec.get("machineType", "")
    if not machine:
        raise ApiError("INVALID_ARGUMENT", f"{where}.machine_spec.machine_type is required.")
    if not _MACHINE.match(machine):
        raise ApiError("INVALID_ARGUMENT", f'Machine type "{machine}" is not supported.')
    accelerator = spec.get("acceleratorType", NONE)
    count = int(spec.get("acceleratorCount", 0) or 0)
    if accelerator != NONE:
        if count <= 0:
            raise ApiError(
                "INVALID_ARGUMENT",
                f"{where}.machine_spec.accelerator_count must be greater than 0 "
                f"when accelerator_type is {accelerator}.",
            )
        allowed = next((types for family, types in _ACCELERATORS.items() if machine.startswith(family)), set())
        if accelerator not in allowed:
            raise ApiError(
                "INVALID_ARGUMENT", f'Accelerator "{accelerator}" is not supported for machine type "{machine}".'
            )
    elif count > 0:
        raise ApiError(
            "INVALID_ARGUMENT", f"{where}.machine_spec.accelerator_type is required when accelerator_count is set."
        )
    out = dict(spec, acceleratorType=accelerator)
    if count:
        out["acceleratorCount"] = count
    return out


def check_dedicated(resources: dict | None, where: str = "deployed_model.dedicated_resources") -> dict:
    """A validated DedicatedResources: minReplicaCount >= 1, maxReplicaCount >= min (0 = min)."""
    if not resources or "machineSpec" not in resources:
        raise ApiError("INVALID_ARGUMENT", f"{where}.machine_spec is required.")
    minimum = int(resources.get("minReplicaCount", 0) or 0)
    maximum = int(resources.get("maxReplicaCount", 0) or 0)
    if minimum < 1:
        raise ApiError("INVALID_ARGUMENT", f"{where}.min_replica_count must be greater than or equal to 1.")
    if maximum and maximum < minimum:
        raise ApiError(
            "INVALID_ARGUMENT",
            f"{where}.max_replica_count ({maximum}) must be greater than or equal to min_replica_count ({minimum}).",
        )
    required = int(resources.get("requiredReplicaCount", 0) or 0)
    if required < 0 or required > minimum:
        raise ApiError("INVALID_ARGUMENT", f"{where}.required_replica_count must be between 0 and min_replica_count.")
    return dict(
        resources,
        machineSpec=check_machine_spec(resources["machineSpec"], where),
        minReplicaCount=minimum,
        maxReplicaCount=maximum or minimum,
    )


def check_batch_dedicated(resources: dict | None) -> dict:
    """A validated BatchDedicatedResources: startingReplicaCount / maxReplicaCount default and order."""
    where = "batch_prediction_job.dedicated_resources"
    if not resources or "machineSpec" not in resources:
        raise ApiError(
            "INVALID_ARGUMENT", f"{where}.machine_spec is required: the Model does not support automatic resources."
        )
    starting = int(resources.get("startingReplicaCount", 0) or 0)
    maximum = int(resources.get("maxReplicaCount", 0) or 0)
    if starting < 0 or maximum < 0:
        raise ApiError("INVALID_ARGUMENT", f"{where}: replica counts cannot be negative.")
    if starting and maximum and maximum < starting:
        raise ApiError("INVALID_ARGUMENT", f"{where}.max_replica_count must be >= starting_replica_count.")
    return dict(
        resources,
        machineSpec=check_machine_spec(resources["machineSpec"], where),
        startingReplicaCount=starting or maximum or 1,
        maxReplicaCount=maximum or starting or 10,
    )
