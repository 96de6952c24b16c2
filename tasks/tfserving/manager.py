"""Versions on disk -> loaded servables, the way TF Serving's manager does it.

Every `poll_wait_seconds` each model's base path is listed; numeric folders are versions; the
model's version policy (latest N | all | specific) says which are aspired. TF Serving's
AvailabilityPreservingPolicy then decides one action at a time: unload a non-aspired version
when no version is aspired, or an aspired version is AVAILABLE, or more than one non-aspired
version is still serving; else load the highest new aspired version. So a new version is
loaded (and warmed up) while the old one still answers, the serving map is swapped in one
assignment, and only then is the old version unloaded; deleting the newest folder reloads
the previous version the same way (rollback). A version that fails to load is END with its
error and the old one keeps serving.

States and messages are ModelService's: START, LOADING, AVAILABLE, UNLOADING, END.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from tfrun.tasks.tfserving.config import BatchingParameters, ModelConfig, validate_configs
from tfrun.tasks.tfserving.repository import versions_on_disk
from tfrun.tasks.tfserving.servable import Servable
from tfrun.tasks.tfserving.status import Code, ServingError, invalid, not_found

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


@dataclass
class VersionState:
    version: int
    path: Path
    state: str = START
    error: Optional[ServingError] = None
    aspired: bool = True
    servable: Optional[Servable] = None
    changed_at: float = field(default_factory=time.time)

    def is_new(self) -> bool:
        """Never loaded in this aspiration (TF Serving's kNew harness)."""
        return self.state == START


class ModelManager:
    def __init__(
        self,
        *,
        poll_wait_seconds: float = 1.0,
        batching: Optional[BatchingParameters] = None,
        enable_warmup: bool = True,
        allow_labels_for_unavailable: bool = False,
        max_load_retries: int = 5,
        load_retry_interval_s: float = 60.0,
        log: Callable[[str], None] = print,
    ):
        self.poll_wait_seconds = poll_wait_seconds
        self.batching = batching
        self.enable_warmup = enable_warmup
        self.allow_labels_for_unavailable = allow_labels_for_unavailable
        self.max_load_retries = max_load_retries
        self.load_retry_interval_s = load_retry_interval_s
        self.log = log
        self.configs: dict[str, ModelConfig] = {}
        self.states: dict[str, dict[int, VersionState]] = {}
        self.labels: dict[str, dict[str, int]] = {}
        self._serving: dict[str, dict[int, Servable]] = {}  # replaced whole on every change: readers never lock
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._loads: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._reload_lock = threading.Lock()

    # ------------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        for target, name in ((self._loader, "loader"), (self._poller, "fs-poller")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._loads.put(None)
        with self._lock:
            for states in self.states.values():
                for st in states.values():
                    if st.servable is not None:
                        self._log_batching(st.servable)
                        st.servable.unload()

    def _poller(self) -> None:
        while not self._stop.wait(self.poll_wait_seconds if self.poll_wait_seconds > 0 else 3600):
            try:
                self.poll()
            except Exception as err:  # a bad folder must not stop version watching
                self.log(f"file system poll failed: {err!r}")

    # ------------------------------------------------------------------------------ config
    def set_configs(self, configs: list[ModelConfig], *, wait_s: Optional[float] = None) -> None:
        """Apply a model config list (start-up or HandleReloadConfigRequest): load, wait, then labels."""
        validate_configs(configs)
        with self._reload_lock:
            with self._lock:
                self.configs = {c.name: c for c in configs}
                for c in configs:
                    self.states.setdefault(c.name, {})
                    if not Path(c.base_path).is_dir():
                        self.log(
                            f"File system storage path source: base path {c.base_path} for servable {c.name} "
                            "does not exist (yet); watching it"
                        )
            self.poll()
            self._wait_settled([c.name for c in configs], wait_s)
            self._apply_labels(configs)

    def _wait_settled(self, names: list[str], wait_s: Optional[float]) -> None:
        deadline = None if wait_s is None else time.monotonic() + wait_s
        with self._changed:
            while True:
                pending = [n for n in names if not self._settled(n)]
                if not pending:
                    return
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise ServingError(
                        Code.UNKNOWN,
                        "Some models did not become available: {" + ", ".join(f"Latest({n})" for n in pending) + "}",
                    )
                self._changed.wait(0.2 if left is None else min(left, 0.2))

    def _settled(self, name: str) -> bool:
        config = self.configs.get(name)
        if config is None:
            return True
        states = self.states.get(name, {})
        aspired = [s for s in states.values() if s.aspired]
        # Nothing on disk yet counts as settled (TF Serving would wait here; the ports open instead and
        # ModelService answers NOT_FOUND until a version appears).
        return all(s.state in (AVAILABLE, END) for s in aspired)

    def _apply_labels(self, configs: list[ModelConfig]) -> None:
        labels: dict[str, dict[str, int]] = {}
        for c in configs:
            for version in c.labels.values():
                st = self.states.get(c.name, {}).get(version)
                if not self.allow_labels_for_unavailable and (st is None or st.state != AVAILABLE):
                    raise ServingError(
                        Code.FAILED_PRECONDITION,
                        f"Request to assign label to version {version} of model {c.name}, which is "
                        "not currently available for inference",
                    )
            labels[c.name] = dict(c.labels)
        with self._lock:
            self.labels = labels

    # ------------------------------------------------------------------------------ polling
    def poll(self) -> None:
        """Scan every model's base path and act on the differences."""
        with self._lock:
            configs = list(self.configs.values())
            known = set(self.configs)
            for c in configs:
                on_disk = versions_on_disk(c.base_path)
                aspired = c.policy.aspired(on_disk)
                states = self.states.setdefault(c.name, {})
                for version in aspired:
                    st = states.get(version)
                    if st is None or (st.state == END and not st.aspired):  # new, or back after leaving
                        states[version] = VersionState(version, on_disk[version])
                    else:
                        st.aspired = True
                for version, st in states.items():
                    if version not in aspired:
                        st.aspired = False
            for name, states in self.states.items():  # models dropped from the config: nothing aspired
                if name not in known:
                    for st in states.values():
                        st.aspired = False
            self._act()

    def _act(self) -> None:
        """AvailabilityPreservingPolicy, one action at a time until there is nothing to do."""
        changed = True
        while changed:
            changed = False
            for name, states in self.states.items():
                aspired = [s for s in states.values() if s.aspired]
                serving_unaspired = [s for s in states.values() if not s.aspired and s.state == AVAILABLE]
                aspired_serving = any(s.state == AVAILABLE for s in aspired)
                if serving_unaspired and (not aspired or aspired_serving or len(serving_unaspired) > 1):
                    self._unload(name, min(serving_unaspired, key=lambda s: s.version))
                    changed = True
                    continue
                new = [s for s in aspired if s.is_new()]
                if new:
                    st = max(new, key=lambda s: s.version)
                    self._set(st, LOADING)
                    self._loads.put((name, st))
                    changed = True

    def _set(self, st: VersionState, state: str, error: Optional[ServingError] = None) -> None:
        st.state, st.error, st.changed_at = state, error, time.time()
        self._changed.notify_all()

    def _publish(self) -> None:
        """Swap in a new serving map (one assignment: requests see the old or the new, never a mix)."""
        self._serving = {
            name: {v: s.servable for v, s in states.items() if s.state == AVAILABLE and s.servable}
            for name, states in self.states.items()
        }

    def _log_batching(self, servable: Servable) -> None:
        for signature, summary in servable.batching_summaries().items():
            self.log(
                f"Batching {{name: {servable.model_name} version: {servable.version} signature: {signature}}}: "
                f"{summary}"
            )

    def _unload(self, name: str, st: VersionState) -> None:
        self._set(st, UNLOADING)
        servable = st.servable
        st.servable = None
        self._publish()
        if servable is not None:
            self._log_batching(servable)
            servable.unload()
        self._set(st, END)
        self.log(f"Successfully unloaded servable version {{name: {name} version: {st.version}}}")

    # ------------------------------------------------------------------------------ loading
    def _loader(self) -> None:
        while True:
            job = self._loads.get()
            if job is None:
                return
            name, st = job
            self._load(name, st)

    def _load(self, name: str, st: VersionState) -> None:
        attempts = 0
        while True:
            attempts += 1
            servable = Servable(name, st.version, st.path, self.batching)
            try:
                started = time.perf_counter()
                servable.load()
                warm = servable.warmup() if self.enable_warmup else 0
                seconds = time.perf_counter() - started
                error = None
            except ServingError as err:
                error = err
            except Exception as err:  # anything a broken export raises
                error = ServingError(Code.UNKNOWN, f"{type(err).__name__}: {err}")
            with self._lock:
                if error is None:
                    st.servable = servable
                    self._set(st, AVAILABLE)
                    self._publish()
                    extra = f", {warm} warm-up record(s) replayed" if warm else ""
                    self.log(
                        f"Successfully loaded servable version {{name: {name} version: {st.version}}} "
                        f"in {seconds:.2f} s{extra}"
                    )
                    self._act()
                    return
                servable.unload()
                retry = attempts <= self.max_load_retries and st.aspired and not self._stop.is_set()
                self.log(
                    f"Loading servable: {{name: {name} version: {st.version}}} failed: {error.code.name}: "
                    f"{error.message}" + (f"; retrying in {self.load_retry_interval_s:g} s" if retry else "")
                )
                if not retry:
                    self._set(st, END, error)
                    self._act()
                    return
            if self._stop.wait(self.load_retry_interval_s):
                return

    # ------------------------------------------------------------------------------ queries
    def resolve(self, name: str, version: Optional[int] = None, label: Optional[str] = None) -> Servable:
        """ServerCore::GetServableHandle: a label, a specific version, or the latest available one."""
        serving = self._serving.get(name, {})
        if label:
            labels = self.labels.get(name, {})
            if label not in labels:
                raise invalid(f"Unrecognized servable version label: {label}")
            version = labels[label]
        if version is not None:
            servable = serving.get(version)
            if servable is None:
                raise not_found(f"Servable not found for request: Specific({name}, {version})")
            return servable
        if not serving:
            raise not_found(f"Servable not found for request: Latest({name})")
        return serving[max(serving)]

    def status(self, name: str, version: Optional[int] = None) -> list[tuple[int, str, Optional[ServingError]]]:
        """GetModelStatus: (version, state, error) newest first."""
        with self._lock:
            states = dict(self.states.get(name, {}))
        if version is not None:
            st = states.get(version)
            if st is None:
                raise not_found(f"Could not find version {version} of model {name}")
            return [(version, st.state, st.error)]
        if not states:
            raise not_found(f"Could not find any versions of model {name}")
        return [(v, states[v].state, states[v].error) for v in sorted(states, reverse=True)]
