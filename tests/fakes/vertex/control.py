"""Test control of the fake: injected failures and the log of calls, served under `/_fake/` (never a Vertex path).

A fault rule matches a call by HTTP method and a regular expression searched in the URL path, and fires
`times` times. Modes:
  http       the call is answered at once with Google's error JSON and does nothing;
  operation  the call answers a running operation that then fails with the error (no work is done);
  job        a batch prediction, custom or tuning job created by the call ends JOB_STATE_FAILED with the
             error shortly after (a custom or tuning job starts no replica).
"""

from __future__ import annotations

import collections
import itertools
import re
import threading
from dataclasses import asdict, dataclass, field

from .wire import ApiError, status_name

MODES = ("http", "operation", "job")


@dataclass
class FaultRule:
    method: str
    path: str  # regex, re.search on the URL path
    mode: str = "http"
    times: int = 1
    status: str = "INTERNAL"
    message: str = "Injected failure (fake-vertex control API)."
    id: int = 0
    fired: int = 0
    _pattern: re.Pattern = field(default=None, repr=False)  # type: ignore[assignment]

    def error(self) -> ApiError:
        return ApiError(self.status, self.message)

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


class Control:
    def __init__(self, max_calls: int = 20000) -> None:
        self.lock = threading.Lock()
        self.rules: list[FaultRule] = []
        self.calls: collections.deque[dict] = collections.deque(maxlen=max_calls)
        self._ids = itertools.count(1)

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()
            self.calls.clear()

    def add_rule(self, spec: dict) -> FaultRule:
        mode = spec.get("mode", "http")
        if mode not in MODES:
            raise ApiError("INVALID_ARGUMENT", f"mode must be one of {MODES}, got {mode!r}")
        try:
            pattern = re.compile(spec["path"])
            status = status_name(spec.get("code", "INTERNAL"))
        except KeyError:
            raise ApiError("INVALID_ARGUMENT", "a fault rule needs 'method' and 'path'") from None
        except (re.error, ValueError) as exc:
            raise ApiError("INVALID_ARGUMENT", f"bad fault rule: {exc}") from None
        rule = FaultRule(
            method=str(spec.get("method", "*")).upper(),
            path=spec["path"],
            mode=mode,
            times=int(spec.get("times", 1)),
            status=status,
            message=spec.get("message") or FaultRule.message,
            _pattern=pattern,
        )
        if status == "OK":
            raise ApiError("INVALID_ARGUMENT", "a fault needs an error status, not OK")
        with self.lock:
            rule.id = next(self._ids)
            self.rules.append(rule)
        return rule

    def take(self, method: str, path: str, mode: str) -> FaultRule | None:
        """The first live rule of `mode` matching this call, consumed once."""
        with self.lock:
            for rule in self.rules:
                if rule.mode == mode and rule.method in ("*", method) and rule._pattern.search(path):
                    rule.fired += 1
                    rule.times -= 1
                    if rule.times <= 0:
                        self.rules.remove(rule)
                    return rule
        return None

    def log(self, method: str, path: str, query: str, status: int, started: float, seconds: float) -> None:
        with self.lock:
            self.calls.append(
                {
                    "method": method,
                    "path": path,
                    "query": query,
                    "status": status,
                    "time": round(started, 6),
                    "ms": round(seconds * 1000, 3),
                }
            )

    def snapshot(self) -> dict:
        with self.lock:
            return {"calls": list(self.calls), "rules": [r.as_dict() for r in self.rules]}
