"""Put this folder first on PYTHONPATH to run a command with no network and no heavy imports.

Every socket connection, and every import of TensorFlow or a Google Cloud SDK, raises and is
written to $TFRUN_OFFLINE_LOG, so a test can prove a command did neither (a dry run, a
validation error). Loopback connections are blocked too: a plan must not need any server.
"""

import importlib.abc
import os
import socket
import sys

_LOG = os.environ.get("TFRUN_OFFLINE_LOG", "")
_BLOCKED = ("tensorflow", "tf_keras", "google.cloud.aiplatform", "google.cloud.storage", "google.auth", "grpc")


def _note(what: str) -> None:
    if _LOG:
        with open(_LOG, "a") as f:
            f.write(what + "\n")


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in _BLOCKED):
            _note(f"import {name}")
            raise ImportError(f"{name} is blocked in this test (offline, no SDK)")
        return None


def _no_connect(self, address):  # noqa: ANN001
    _note(f"connect {address}")
    raise OSError(f"network blocked in this test: connect to {address}")


sys.meta_path.insert(0, _Blocker())
socket.socket.connect = _no_connect
socket.socket.connect_ex = _no_connect
socket.create_connection = lambda address, *a, **k: _no_connect(None, address)
