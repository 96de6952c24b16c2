"""One line in a Jupyter cell, updated in place while tfrun runs: the run (or sweep job), its step, epoch k/N
and the latest metrics; at the end its status, time and optimized metric.

It reads the record, which the runner rewrites after every step and epoch (whole files, renamed into place),
so it shows what the record keeps and does not depend on how Keras prints. Outside a Jupyter kernel it shows
nothing: the command's own lines (streamed as they come) say the same in a terminal.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HIDDEN = ("epoch_seconds",)  # per-epoch values that are not metrics
MAX_ERROR = 160


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def describe(data: dict[str, Any], job: str | None = None) -> str:
    """The line for a record: `tfrun run ID · train · epoch 2/3 · loss 1.1937 · ...`, then its outcome."""
    parts = [f"tfrun job {job}" if job is not None else f"tfrun run {data.get('run_id')}"]
    status = data.get("status")
    metrics = data.get("metrics") or {}
    if status == "running":
        running = [s.get("name") for s in data.get("steps") or [] if s.get("status") == "running"]
        parts += running[-1:]
        history = metrics.get("history") or {}
        done = max((len(v) for v in history.values() if isinstance(v, list)), default=0)
        if done and running[-1:] in ([], ["train"]):  # after training, the step under way says enough
            epochs = ((data.get("config") or {}).get("train") or {}).get("epochs")
            parts.append(f"epoch {done}/{epochs}" if epochs else f"epoch {done}")
            parts += [
                f"{key} {values[-1]:.4f}"
                for key, values in history.items()
                if key not in HIDDEN and isinstance(values, list) and values and _number(values[-1])
            ]
        return " · ".join(parts)
    seconds = data.get("seconds")
    parts.append(f"{status} in {seconds:.1f} s" if _number(seconds) else str(status))
    metric = (data.get("config") or {}).get("optimized_metric")
    value = (metrics.get("final") or {}).get(metric) if metric else None
    if _number(value):
        parts.append(f"{metric} {value:.4f}")
    error = data.get("error")
    if isinstance(error, dict):
        text = f"{error.get('type')}: {error.get('message')}"
        parts.append(text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…")
    return " · ".join(parts)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _display_handle() -> Any:
    """A display in the running Jupyter cell, or None outside a kernel (IPython is not imported for this)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or getattr(shell, "kernel", None) is None:
        return None
    from IPython.display import display

    return display({"text/plain": "tfrun: starting"}, raw=True, display_id=True)


class Progress:
    """The progress line of one `tfrun.run` or `tfrun.sweep` call."""

    def __init__(self, sweep: bool = False):
        self.sweep = sweep
        self.handle = _display_handle()
        self.paths: list[Path] = []
        self.shown: str | None = None

    def update(self, paths: list[Path]) -> None:
        """Show the latest record the command started (called while it runs, and once after)."""
        self.paths = paths or self.paths
        if self.handle is None or not self.paths:
            return
        data = _read(self.paths[-1])
        if data is None:
            return
        line = describe(data, self.paths[-1].parent.name if self.sweep else None)
        if line != self.shown:
            self.handle.update({"text/plain": line}, raw=True)
            self.shown = line

    def finish(self) -> None:
        self.update(self.paths)
