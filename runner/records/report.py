"""`tfrun-records report DIR... -o report.html`: one self-contained page of runs and sweeps, from their records.

The records stay the source of truth; the page is a view a person can open or send: a sortable, filterable
table of runs (status, key overrides, metrics, duration), one section per sweep (its plot, best job and
reproduce line, its jobs), each run's deployments and parity results, and links to records and artifacts by
relative path. Everything is inline (data as JSON, CSS, script, the sweep plots as data: URIs): the page
asks no host for anything, so it opens from a file, a static server or an e-mail attachment alike.
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import Any

from tfrun.runner.records import reading
from tfrun.runner.records import record as records

METRIC_ORDER = ("holdout_accuracy", "holdout_loss")  # the sortable metric columns, with each run's optimized
#                                                     metric; the other final metrics share one "more" column


def _rel(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def _parity(deployment: dict[str, Any]) -> str:
    """One line per deployment: kind, status, and what its parity check said."""
    parity = deployment.get("parity") or {}
    said = []
    for key in ("rest", "grpc", "online", "offline"):
        part = parity.get(key)
        if isinstance(part, dict) and "passed" in part:
            diff = part.get("max_abs_diff")
            said.append(
                f"{key} {'passed' if part['passed'] else 'FAILED'}"
                + (f" (max |diff| {diff:.1e})" if isinstance(diff, (int, float)) else "")
            )
    if not said and isinstance(parity, dict) and "passed" in parity:
        said.append("passed" if parity["passed"] else "FAILED")
    return f"{deployment.get('kind', '?')}: {deployment.get('status', '?')}" + (f" — {', '.join(said)}" if said else "")


def run_row(path: Path, data: dict[str, Any], base: Path) -> dict[str, Any]:
    final = (data.get("metrics") or {}).get("final") or {}
    error = data.get("error") or {}
    return {
        "run_id": data.get("run_id"),
        "started": data.get("started_at"),
        "status": data.get("status"),
        "job": data.get("job"),
        "overrides": " ".join(str(o) for o in (data.get("command") or {}).get("overrides") or []),
        "metrics": {k: v for k, v in final.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
        "optimized_metric": (data.get("config") or {}).get("optimized_metric"),
        "seconds": data.get("seconds"),
        "record": _rel(path, base),
        "run_dir": _rel(path.parent, base),
        "error": f"{error.get('type')}: {error.get('message')}" if error else "",
        "deployments": [_parity(d) for d in data.get("deployments") or []],
        "artifacts": [
            {
                "kind": a.get("kind"),
                "path": _rel(Path(str(a["path"])), base)
                if a.get("path") and not str(a["path"]).startswith("gs://")
                else a.get("path"),
            }
            for a in data.get("artifacts") or []
            if isinstance(a, dict)
        ],
    }


def sweep_section(sweep_json: Path, base: Path) -> dict[str, Any] | None:
    """A sweep's part of the page; None (and one line on stderr) for a damaged sweep.json."""
    try:
        summary = json.loads(sweep_json.read_text())
    except (OSError, ValueError) as err:
        summary = err
    if not isinstance(summary, dict) or not isinstance(summary.get("jobs") or [], list):
        why = f"not valid JSON ({summary})" if isinstance(summary, Exception) else "not a sweep summary"
        reading.say_skipped(reading.BadRecord(sweep_json, why))
        return None
    plot = sweep_json.with_name("sweep.png")
    return {
        "dir": _rel(sweep_json.parent, base),
        "metric": summary.get("metric"),
        "best": summary.get("best"),
        "jobs": summary.get("jobs") or [],
        "plot": "data:image/png;base64," + base64.b64encode(plot.read_bytes()).decode() if plot.is_file() else None,
    }


def collect(directories: list[str], base: Path) -> dict[str, Any]:
    runs = [run_row(path, data, base) for path, data in reading.read_all(records.find_all(directories))]
    runs.sort(key=lambda r: str(r["started"] or ""))
    found = [sweep_section(p, base) for d in directories for p in sorted(Path(d).rglob("sweep.json"))]
    sweeps = [s for s in found if s is not None]
    optimized = {r.pop("optimized_metric") for r in runs}
    columns = [m for m in METRIC_ORDER if any(m in r["metrics"] for r in runs)]
    columns += sorted(m for m in optimized if m and m not in columns and any(m in r["metrics"] for r in runs))
    return {"runs": runs, "sweeps": sweeps, "metrics": columns}


def render(data: dict[str, Any], title: str) -> str:
    payload = json.dumps(data).replace("</", "<\\/")  # no </script> inside the inline JSON
    return PAGE.replace("__TITLE__", html.escape(title)).replace("__DATA__", payload)


def write(directories: list[str], out: Path) -> dict[str, Any]:
    out = out.resolve()
    data = collect(directories, out.parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(render(data, f"tfrun report: {', '.join(directories)}"))
    tmp.replace(out)
    return data


PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 1rem; color: #222; }
 table { border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; }
 th, td { border-bottom: 1px solid #ddd; padding: .25rem .4rem; text-align: left; vertical-align: top; }
 th { cursor: pointer; background: #f3f5f8; white-space: nowrap; user-select: none; }
 th.sorted::after { content: " \25BE"; } th.sorted.up::after { content: " \25B4"; }
 td.num { text-align: right; font-variant-numeric: tabular-nums; }
 td .muted { display: inline-block; max-width: 22rem; } td:first-child { white-space: nowrap; }
 .failed, .interrupted { color: #a00; } .succeeded { color: #060; } .muted { color: #666; font-size: .85rem; }
 .pruned { color: #8a5a00; font-style: italic; } /* stopped early by the sweep's pruner: not a failure */
 code { background: #f3f3f3; padding: 0 .2rem; } img { max-width: 100%; border: 1px solid #ddd; }
 input { font-size: 1rem; padding: .2rem .4rem; width: 24rem; }
</style></head><body>
<h1>__TITLE__</h1>
<p class="muted" id="counts"></p>
<p><input id="filter" placeholder="filter: status, override, run id, error…" aria-label="filter runs"></p>
<table id="runs"><thead><tr id="head"></tr></thead><tbody></tbody></table>
<div id="sweeps"></div>
<script id="data" type="application/json">__DATA__</script>
<script>
const data = JSON.parse(document.getElementById("data").textContent);
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
const num = (v) => typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : "";
const columns = [
  {key: "run_id", label: "run", get: (r) => r.run_id, html: (r) => `<a href="${esc(r.record)}">${esc(r.run_id)}</a>`},
  {key: "started", label: "started", get: (r) => r.started || "",
   html: (r) => esc((r.started || "").slice(0, 19).replace("T", " "))},
  {key: "status", label: "status", get: (r) => r.status, html: (r) => `<span class="${esc(r.status)}">${esc(r.status)}</span>`},
  {key: "overrides", label: "overrides", get: (r) => r.overrides, html: (r) => `<code>${esc(r.overrides)}</code>`},
  ...data.metrics.map((m) => ({key: "m:" + m, label: m, numeric: true, get: (r) => r.metrics[m]})),
  {key: "seconds", label: "seconds", numeric: true, get: (r) => r.seconds},
  {key: "more", label: "other final metrics", get: (r) => Object.entries(r.metrics)
     .filter(([k]) => !data.metrics.includes(k)).map(([k, v]) => `${k}=${num(v)}`).join(" "),
   html: (r) => `<span class="muted">${esc(Object.entries(r.metrics).filter(([k]) => !data.metrics.includes(k))
     .map(([k, v]) => `${k}=${num(v)}`).join(" "))}</span>`},
  {key: "deployments", label: "deployments and parity", get: (r) => r.deployments.join("; "),
   html: (r) => r.deployments.map(esc).join("<br>") + (r.error ? `<div class="failed">${esc(r.error)}</div>` : "")},
  {key: "artifacts", label: "artifacts", get: (r) => r.artifacts.map((a) => a.path).join(" "),
   html: (r) => r.artifacts.map((a) => /^gs:\/\//.test(a.path || "") ? esc(a.path)
                : `<a href="${esc(a.path)}">${esc(a.kind)}</a>`).join(" ")},
];
let sortKey = "started", ascending = true;
const head = document.getElementById("head");
head.innerHTML = columns.map((c) => `<th data-key="${esc(c.key)}">${esc(c.label)}</th>`).join("");
head.querySelectorAll("th").forEach((th) => th.addEventListener("click", () => {
  const key = th.dataset.key;
  ascending = sortKey === key ? !ascending : !columns.find((c) => c.key === key).numeric;
  sortKey = key; draw();
}));
document.getElementById("filter").addEventListener("input", draw);
function draw() {
  const column = columns.find((c) => c.key === sortKey);
  const words = document.getElementById("filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  const shown = data.runs.filter((r) => {
    const text = columns.map((c) => String(c.get(r) ?? "")).join(" ").toLowerCase() + " " + (r.error || "").toLowerCase();
    return words.every((w) => text.includes(w));
  });
  shown.sort((a, b) => {
    const x = column.get(a), y = column.get(b);
    if (x === undefined || x === null) return 1;
    if (y === undefined || y === null) return -1;
    const order = column.numeric ? x - y : String(x).localeCompare(String(y));
    return ascending ? order : -order;
  });
  document.querySelector("#runs tbody").innerHTML = shown.map((r) =>
    `<tr data-run="${esc(r.run_id)}">` + columns.map((c) =>
      `<td class="${c.numeric ? "num" : ""}">${c.html ? c.html(r) : c.numeric ? num(c.get(r)) : esc(c.get(r))}</td>`).join("")
    + "</tr>").join("");
  head.querySelectorAll("th").forEach((th) => {
    th.classList.toggle("sorted", th.dataset.key === sortKey); th.classList.toggle("up", th.dataset.key === sortKey && ascending);
  });
  const byStatus = {};
  shown.forEach((r) => { byStatus[r.status] = (byStatus[r.status] || 0) + 1; });
  const tally = Object.entries(byStatus).sort().map(([k, n]) => `${n} ${k}`).join(", ");
  document.getElementById("counts").textContent =
    `${shown.length} of ${data.runs.length} runs (${tally}) · ${data.sweeps.length} sweep(s)`;
}
document.getElementById("sweeps").innerHTML = data.sweeps.map((s) => `
  <h2>Sweep <a href="${esc(s.dir)}/sweep.json">${esc(s.dir)}</a></h2>
  ${s.best ? `<p>best: job ${esc(s.best.job)} · ${esc(s.metric)} = ${num(s.best.metric)} · reproduce: <code>${esc(s.best.command)}</code></p>`
           : "<p>best: no job succeeded</p>"}
  ${s.plot ? `<img alt="${esc(s.metric)} against each swept parameter" src="${s.plot}">` : ""}
  <table><thead><tr><th>job</th><th>status</th><th>parameters</th><th>${esc(s.metric)}</th></tr></thead><tbody>
  ${s.jobs.map((j) => `<tr><td>${esc(j.job)}</td><td class="${esc(j.status)}">${esc(j.status)}</td>
    <td><code>${esc(Object.entries(j.params || {}).map(([k, v]) => k + "=" + v).join(" "))}</code></td>
    <td class="num">${num(j.metric)}</td></tr>`).join("")}
  </tbody></table>`).join("");
draw();
</script></body></html>
"""
