"""Long-running operations (`google.longrunning.Operation`) as Vertex's REST API returns them.

An operation is `{"name", "metadata": {"@type": ...}, "done", "response": {"@type": ...}}` or, when it
failed, `"error": {"code", "message"}`. Quick work (upload, create, undeploy, delete) completes before
the call answers (`done: true` at once, which the LRO contract allows); a deploy stays `done: false`
until its container is healthy, and clients poll `GET /ui/{name}` (the Python SDK's REST transport) or
`/v1/{name}`.
"""

from __future__ import annotations

import threading
from typing import Any

from .store import Store
from .wire import ApiError, new_id, now

TYPE_PREFIX = "type.googleapis.com/google.cloud.aiplatform.v1."
EMPTY = {"@type": "type.googleapis.com/google.protobuf.Empty"}


class Operations:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.ops: dict[str, dict] = {}
        self.cancel_events: dict[str, threading.Event] = {}

    def clear(self) -> None:
        with self.store.lock:
            for event in self.cancel_events.values():
                event.set()
            self.ops.clear()
            self.cancel_events.clear()

    def start(self, under: str, metadata_type: str) -> dict:
        """A new, running operation named `<under>/operations/<id>`."""
        stamp = now()
        op = {
            "name": f"{under}/operations/{new_id()}",
            "metadata": {
                "@type": TYPE_PREFIX + metadata_type,
                "genericMetadata": {"createTime": stamp, "updateTime": stamp},
            },
            "done": False,
        }
        with self.store.lock:
            self.ops[op["name"]] = op
            self.cancel_events[op["name"]] = threading.Event()
        return op

    def cancel_event(self, op: dict) -> threading.Event:
        """The event a running operation's work watches; an operation forgotten by a reset counts as cancelled."""
        with self.store.lock:
            event = self.cancel_events.get(op["name"])
        if event is None:
            event = threading.Event()
            event.set()
        return event

    def succeed(self, op: dict, response_type: str | None, response: dict[str, Any] | None = None) -> dict:
        """Finish `op` with a response message (`response_type` None = google.protobuf.Empty)."""
        body = dict(EMPTY) if response_type is None else {"@type": TYPE_PREFIX + response_type, **(response or {})}
        return self._finish(op, response=body)

    def fail(self, op: dict, error: ApiError) -> dict:
        return self._finish(op, error=error.rpc_status())

    def _finish(self, op: dict, **result: Any) -> dict:
        with self.store.lock:
            if op.get("done"):
                return op
            op.update(result, done=True)
            op["metadata"]["genericMetadata"]["updateTime"] = now()
            self.store.changed.notify_all()
        return op

    def get(self, name: str) -> dict:
        with self.store.lock:
            op = self.ops.get(self.store.normalise(name))
            if op is None:
                raise ApiError("NOT_FOUND", f"Operation {name} not found.")
            return op

    def wait(self, name: str, timeout: float) -> dict:
        """`:wait`: block until the operation is done or `timeout` passes, then answer it as it is."""
        with self.store.lock:
            op = self.get(name)
            self.store.changed.wait_for(lambda: op["done"], timeout=max(0.0, timeout))
            return op

    def cancel(self, name: str) -> None:
        """`:cancel`: best effort, as on Vertex; the work notices the event and fails the operation CANCELLED."""
        with self.store.lock:
            op = self.get(name)
            if not op["done"]:
                self.cancel_events[op["name"]].set()

    def delete(self, name: str) -> None:
        with self.store.lock:
            op = self.get(name)
            self.ops.pop(op["name"], None)
            self.cancel_events.pop(op["name"], None)

    def list(self, under: str) -> list[dict]:
        prefix = self.store.normalise(under) + "/operations/"
        with self.store.lock:
            return [op for name, op in self.ops.items() if name.startswith(prefix)]
