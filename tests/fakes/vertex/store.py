"""Resources kept by the fake: models, endpoints, batch prediction, custom and tuning jobs, under one lock.

Names are Vertex's: `projects/<number>/locations/<region>/<collection>/<id>`. Vertex answers with the
project *number* even when called with the project id, so the fake maps every project id to a stable
12-digit number and accepts either form in a path (code that compares names against the project id
fails here as it would on Vertex).
"""

from __future__ import annotations

import base64
import hashlib
import threading
from typing import Callable, Iterable

from .filters import compile_filter
from .wire import ApiError

COLLECTIONS = ("models", "endpoints", "batchPredictionJobs", "customJobs", "hyperparameterTuningJobs")


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # notified when an operation or job changes
        self.resources: dict[str, dict[str, dict]] = {kind: {} for kind in COLLECTIONS}
        self.projects: dict[str, str] = {}  # project number -> project id as first seen

    def clear(self) -> None:
        with self.lock:
            for table in self.resources.values():
                table.clear()

    # names -------------------------------------------------------------------------------------------
    def project_number(self, project: str) -> str:
        if project.isdigit():
            return project
        number = str(int(hashlib.sha256(project.encode()).hexdigest(), 16) % (9 * 10**11) + 10**11)
        self.projects.setdefault(number, project)
        return number

    def parent(self, project: str, location: str) -> str:
        return f"projects/{self.project_number(project)}/locations/{location}"

    def name(self, project: str, location: str, collection: str, resource_id: str) -> str:
        return f"{self.parent(project, location)}/{collection}/{resource_id}"

    def normalise(self, name: str) -> str:
        """A resource name given by a client (project id or number) in the stored form."""
        parts = name.split("/")
        if len(parts) >= 4 and parts[0] == "projects" and parts[2] == "locations":
            parts[1] = self.project_number(parts[1])
        return "/".join(parts)

    # access ------------------------------------------------------------------------------------------
    def get(self, collection: str, name: str, noun: str) -> dict:
        resource = self.resources[collection].get(self.normalise(name))
        if resource is None:
            raise ApiError("NOT_FOUND", f'{noun} "{self.normalise(name)}" not found.')
        return resource

    def put(self, collection: str, resource: dict) -> dict:
        self.resources[collection][resource["name"]] = resource
        return resource

    def delete(self, collection: str, name: str) -> None:
        self.resources[collection].pop(self.normalise(name), None)

    def list(
        self,
        collection: str,
        parent: str,
        filter_text: str | None,
        allowed: set[str],
        page_size: int | None,
        page_token: str | None,
        view: Callable[[dict], dict] = lambda r: r,
    ) -> tuple[list[dict], str | None]:
        """One page of the resources under `parent` that pass the filter, and the next page token."""
        predicate = compile_filter(filter_text, allowed)
        prefix = self.normalise(parent) + f"/{collection}/"
        matches = [view(r) for name, r in self.resources[collection].items() if name.startswith(prefix)]
        matches = [r for r in matches if predicate(r)]
        start = _decode_token(page_token)
        size = page_size if page_size and page_size > 0 else 100
        page = matches[start : start + size]
        next_token = _encode_token(start + size) if start + size < len(matches) else None
        return page, next_token

    def all(self, collection: str) -> Iterable[dict]:
        return list(self.resources[collection].values())


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        if text.startswith("offset:"):
            return int(text[len("offset:") :])
    except (ValueError, UnicodeDecodeError):
        pass
    raise ApiError("INVALID_ARGUMENT", f"Invalid page token {token!r}.")
