"""A multirun as an object (what `tfrun.sweep` returns): its jobs' records, the best job, the summary table.

The table is the one the command writes as sweep.csv (tfrun.runner.sweeps.summary), read from the job
records, best job first; `str(sweep.table())` is the text the command prints.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from tfrun.runner.api.records import Record
from tfrun.runner.sweeps.summary import Summary, collect, render, table


class Sweep:
    """`.jobs` (Records, in launch order), `.best` (the best job's Record, None if none succeeded), `.rows` (the
    summary table: one dict per job, best first, with sweep.csv's columns), `.dir` (the sweep folder)."""

    def __init__(self, jobs: list[Record]):
        self.jobs = jobs
        parents = {job.run_dir.parent for job in jobs}
        self.dir: Path | None = parents.pop() if len(parents) == 1 else None  # the sweep dir holds one dir per job
        self.summary: Summary | None = collect(self.dir) if self.dir is not None else None

    @property
    def metric(self) -> str | None:
        """The optimized metric the best job is chosen by."""
        return self.summary.metric_name if self.summary else None

    @property
    def best(self) -> Record | None:
        best = self.summary.best if self.summary else None
        return next((job for job in self.jobs if best is not None and job.run_dir.name == best.job), None)

    @property
    def rows(self) -> list[dict[str, Any]]:
        if self.summary is None:
            return []
        rows = self.summary.sorted_rows()
        params = sorted({k for r in rows for k in r.params})
        metrics = sorted({k for r in rows for k in r.metrics})
        return [
            {
                "job": r.job,
                "status": r.status,
                **{p: r.params.get(p) for p in params},
                **{m: r.metrics.get(m) for m in metrics},
                "seconds": r.seconds,
                "overrides": " ".join(r.overrides),
                "error": r.error,
            }
            for r in rows
        ]

    def table(self) -> str:
        """The table the command prints after a sweep (swept parameters, the metric, the best job's command)."""
        return render(self.summary) if self.summary else "no jobs"

    def _repr_html_(self) -> str:
        """Jupyter's view: the swept parameters and the metric per job, best first."""
        if self.summary is None:
            return "<p>tfrun sweep: no jobs</p>"
        header, body = table(self.summary)
        cells = "".join(
            "<tr>" + "".join(f"<{tag}>{html.escape(str(v))}</{tag}>" for v in line) + "</tr>"
            for tag, line in [("th", header)] + [("td", line) for line in body]
        )
        return f"<p>tfrun sweep {html.escape(str(self.dir))}</p><table>{cells}</table>"

    def __repr__(self) -> str:
        return f"Sweep({len(self.jobs)} jobs, dir={str(self.dir)!r}, best={self.best!r})"
