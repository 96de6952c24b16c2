"""Vertex's JSON wire conventions: canonical errors, enums as names or ints, timestamps, ids.

Resources are stored with enum values as names; `to_wire` turns them into
ints when the request asked for `$alt=json;enum-encoding=int` (the Python SDK
always does), as the real REST front end does.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from typing import Any

# canonical status name -> (google.rpc.Code, HTTP status), as in google/rpc/code.proto
STATUS: dict[str, tuple[int, int]] = {
    "OK": (0, 200),
    "CANCELLED": (1, 499),
    "UNKNOWN": (2, 500),
    "INVALID_ARGUMENT": (3, 400),
    "DEADLINE_EXCEEDED": (4, 504),
    "NOT_FOUND": (5, 404),
    "ALREADY_EXISTS": (6, 409),
    "PERMISSION_DENIED": (7, 403),
    "RESOURCE_EXHAUSTED": (8, 429),
    "FAILED_PRECONDITION": (9, 400),
    "ABORTED": (10, 409),
    "OUT_OF_RANGE": (11, 400),
    "UNIMPLEMENTED": (12, 501),
    "INTERNAL": (13, 500),
    "UNAVAILABLE": (14, 503),
    "DATA_LOSS": (15, 500),
    "UNAUTHENTICATED": (16, 401),
}
_BY_HTTP = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def status_name(code: int | str) -> str:
    """A canonical status name from a name or an HTTP status (how the control API lets tests name errors)."""
    if isinstance(code, str) and not code.isdigit():
        if code.upper() not in STATUS:
            raise ValueError(f"unknown status {code!r}; one of {sorted(STATUS)}")
        return code.upper()
    http = int(code)
    return _BY_HTTP.get(http, "INTERNAL" if http >= 500 else "INVALID_ARGUMENT")


class ApiError(Exception):
    """An error answered as Google's error JSON (HTTP) or put in an operation / job (`google.rpc.Status`)."""

    def __init__(self, status: str, message: str, http_status: int | None = None):
        super().__init__(message)
        self.status = status_name(status)
        self.message = message
        self.http_status = http_status or STATUS[self.status][1]

    @property
    def rpc_code(self) -> int:
        return STATUS[self.status][0]

    def body(self) -> dict:
        return {"error": {"code": self.http_status, "message": self.message, "status": self.status}}

    def rpc_status(self) -> dict:
        return {"code": self.rpc_code, "message": self.message}


# Enum fields of the resources this fake keeps (aiplatform v1 protos): JSON key -> names by number.
ENUMS: dict[str, dict[str, int]] = {
    "state": {
        "JOB_STATE_UNSPECIFIED": 0,
        "JOB_STATE_QUEUED": 1,
        "JOB_STATE_PENDING": 2,
        "JOB_STATE_RUNNING": 3,
        "JOB_STATE_SUCCEEDED": 4,
        "JOB_STATE_FAILED": 5,
        "JOB_STATE_CANCELLING": 6,
        "JOB_STATE_CANCELLED": 7,
        "JOB_STATE_PAUSED": 8,
        "JOB_STATE_EXPIRED": 9,
        "JOB_STATE_UPDATING": 10,
        "JOB_STATE_PARTIALLY_SUCCEEDED": 11,
    },
    "acceleratorType": {
        "ACCELERATOR_TYPE_UNSPECIFIED": 0,
        "NVIDIA_TESLA_K80": 1,
        "NVIDIA_TESLA_P100": 2,
        "NVIDIA_TESLA_V100": 3,
        "NVIDIA_TESLA_P4": 4,
        "NVIDIA_TESLA_T4": 5,
        "TPU_V2": 6,
        "TPU_V3": 7,
        "NVIDIA_TESLA_A100": 8,
        "NVIDIA_A100_80GB": 9,
        "TPU_V4_POD": 10,
        "NVIDIA_L4": 11,
        "TPU_V5_LITEPOD": 12,
        "NVIDIA_H100_80GB": 13,
        "NVIDIA_H100_MEGA_80GB": 14,
        "NVIDIA_H200_141GB": 15,
        "NVIDIA_B200": 16,
        "NVIDIA_GB200": 17,
        "NVIDIA_RTX_PRO_6000": 18,
    },
    "supportedDeploymentResourcesTypes": {
        "DEPLOYMENT_RESOURCES_TYPE_UNSPECIFIED": 0,
        "DEDICATED_RESOURCES": 1,
        "AUTOMATIC_RESOURCES": 2,
        "SHARED_RESOURCES": 3,
    },
    "sourceType": {
        "MODEL_SOURCE_TYPE_UNSPECIFIED": 0,
        "AUTOML": 1,
        "CUSTOM": 2,
        "BQML": 3,
        "MODEL_GARDEN": 4,
        "GENIE": 5,
        "CUSTOM_TEXT_EMBEDDING": 6,
        "MARKETPLACE": 7,
    },
}
_NAMES = {key: {number: name for name, number in table.items()} for key, table in ENUMS.items()}
# Trial.State (study.proto) shares the JSON key "state" with JobState; its names never clash with JobState's,
# so trials are stored with these names and answered by them (never read from requests: trials are output only)
OUTPUT_ENUMS: dict[str, dict[str, int]] = {
    "state": {"STATE_UNSPECIFIED": 0, "REQUESTED": 1, "ACTIVE": 2, "STOPPING": 3, "SUCCEEDED": 4, "INFEASIBLE": 5},
}
# user-defined maps and payloads: never read as enums (a label may well be called "state")
FREE_FORM = frozenset(
    {
        "labels",
        "modelParameters",
        "instances",
        "parameters",
        "predictions",
        "instance",
        "prediction",
        "metadata",
        "predictSchemata",
        "explanationSpec",
        "env",
        "userMetadata",
    }
)


def enum_name(key: str, value: Any) -> str:
    """Normalise an enum sent as a name or a number; INVALID_ARGUMENT for an unknown value."""
    table = ENUMS[key]
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        name = _NAMES[key].get(int(value))
    else:
        name = value if value in table else None
    if name is None:
        raise ApiError("INVALID_ARGUMENT", f"Invalid value at '{key}': {value!r}")
    return name


def to_wire(value: Any, int_enums: bool) -> Any:
    """Copy a stored resource for the wire: enums as ints when asked, internal keys (leading `_`) dropped."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key.startswith("_"):
                continue
            if key in FREE_FORM:
                out[key] = item
                continue
            if key in ENUMS and int_enums:
                item = [_number(key, v) for v in item] if isinstance(item, list) else _number(key, item)
            out[key] = to_wire(item, int_enums)
        return out
    if isinstance(value, list):
        return [to_wire(item, int_enums) for item in value]
    return value


def _number(key: str, name: str) -> int:
    number = ENUMS[key].get(name)
    return OUTPUT_ENUMS[key][name] if number is None else number


def normalise_enums(value: Any) -> Any:
    """Turn every enum in a request body into its name, whichever encoding the client used."""
    if isinstance(value, dict):
        return {
            key: item
            if key in FREE_FORM
            else ([enum_name(key, v) for v in item] if isinstance(item, list) else enum_name(key, item))
            if key in ENUMS
            else normalise_enums(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [normalise_enums(item) for item in value]
    return value


def camel(name: str) -> str:
    """snake_case -> lowerCamelCase (field masks and filters may use either)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def now() -> str:
    """An RFC 3339 timestamp with microseconds, UTC, as Vertex writes them."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_id() -> str:
    """A 19-digit numeric id, the shape of Vertex's generated resource and operation ids."""
    return str(10**18 + secrets.randbelow(9 * 10**18))


def etag() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("=")


def int64(value: int) -> str:
    """proto3 JSON writes int64 fields as strings."""
    return str(int(value))
