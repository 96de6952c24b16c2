"""What steps share: the run dir, the event channel, and objects made by earlier steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass
class Context:
    run_dir: Path
    emit: Callable[[dict[str, Any]], None]
    state: dict[str, Any] = field(default_factory=dict)  # e.g. "strategy", "data", "model"
    run_id: str = ""  # the record's run id (labels cloud resources with it)
    overrides: list[str] = field(default_factory=list)  # the command line's overrides (a Vertex job runs them)
    config_dirs: list[str] = field(default_factory=list)  # its --config-dir folders (a Vertex job stages them)
    sweep_job: bool = False  # one job of a multirun: its export leaves out the Keras layer traces (tfrun.tasks.export)

    def need(self, key: str) -> Any:
        """An object an earlier step must have produced (a clear error if the plan is wrong)."""
        if key not in self.state:
            raise RuntimeError(f"step needs {key!r}, which no earlier step produced (have: {sorted(self.state)})")
        return self.state[key]
