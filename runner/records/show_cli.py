"""`tfrun-records show RUN [--json]`: one run's summary (who, when, what, steps, metrics, artifacts, error).

A damaged record is one line naming the file and what is wrong, exit 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tfrun.runner.records import cleanup_cli
from tfrun.runner.records.cli_common import (
    EXIT_OK,
    display_status,
    fmt,
    fmt_metric,
    fmt_seconds,
    load_run,
    main_metric,
    overrides,
    pruned_text,
    section,
    short_hash,
)

SHOWN_KEYS = 6  # config keys named in `show` that a record was read with (the rest in --json's config_keys_added)


def _kv(label: str, value: str) -> str:
    return f"{label:<11}{value}"


def header_lines(path: Path, data: dict[str, Any]) -> list[str]:
    """Who/when/what: status, times, command, config hash, code, versions, devices."""
    code, env = section(data, "code"), section(data, "environment")
    repro = section(data, "reproducibility")
    dirty = code.get("git_dirty")
    code_state = "dirty" if dirty else ("clean" if dirty is False else "unknown")
    if dirty and code.get("git_diff_sha256"):
        code_state += f", diff sha256 {short_hash(code['git_diff_sha256'])}"
    packages = ", ".join(f"{k} {v}" for k, v in section(data, "environment", "packages").items() if v)
    devices = section(env, "devices").get("logical") or []
    metric, _ = main_metric(data)
    return [
        _kv("run", f"{data.get('run_id', '?')}  (job {data.get('job', '?')})"),
        _kv("record", str(path)),
        _kv("status", display_status(data)),
        *([_kv("pruned", pruned_text(data["pruned"]))] if pruned_text(data.get("pruned")) else []),
        _kv("started", fmt(data.get("started_at"))),
        _kv("ended", f"{fmt(data.get('ended_at'))}  ({fmt_seconds(data.get('seconds'))} s)"),
        _kv("overrides", " ".join(overrides(data)) or "(none)"),
        _kv("config", f"sha256 {short_hash(written_hash(data))}  optimized metric {metric}"),
        *upgrade_lines(data),
        _kv("code", f"git {short_hash(code.get('git_commit'))} ({code_state})"),
        *user_code_lines(code),
        _kv(
            "python",
            f"{env.get('python', '?')} on {env.get('platform', '?')}, host {env.get('host', '?')}, "
            f"{env.get('cpu_count', '?')} CPUs",
        ),
        _kv("packages", packages or "(not recorded)"),
        _kv("devices", ", ".join(map(str, devices)) or "(not recorded)"),
        _kv("seed", f"{fmt(repro.get('seed'))}, deterministic {fmt(repro.get('deterministic'))}"),
    ]


def written_hash(data: dict[str, Any]) -> Any:
    """The config hash the record's file holds (a record read as today's carries a retaken one)."""
    for name in ("upgraded_from", "config_keys_added"):
        if "config_sha256" in section(data, name):
            return section(data, name)["config_sha256"]
    return data.get("config_sha256")


def upgrade_lines(data: dict[str, Any]) -> list[str]:
    """For a record of an older schema or config: that it was read as today's (tfrun.runner.records.legacy), and the
    config hash a rerun compares when it differs from the written one."""
    before, added = section(data, "upgraded_from"), section(data, "config_keys_added")
    lines = []
    if before:
        lines.append(
            _kv(
                "schema",
                f"{fmt(before.get('schema_version'))}, read as {fmt(data.get('schema_version'))} "
                "(tfrun's old module paths mapped)",
            )
        )
    keys = added.get("keys") if isinstance(added.get("keys"), list) else []
    if written_hash(data) != data.get("config_sha256") or keys:
        named = ", ".join(map(str, keys[:SHOWN_KEYS])) + (", ..." if len(keys) > SHOWN_KEYS else "")
        why = f"{len(keys)} config key(s) added at today's defaults: {named}" if keys else "old module paths mapped"
        lines.append(_kv("", f"read as sha256 {short_hash(data.get('config_sha256'))}, what a rerun compares ({why})"))
    return lines


def user_code_lines(code: dict[str, Any]) -> list[str]:
    """One line per user `_target_`: its file's sha256 and its project's git commit."""
    lines = []
    for key, entry in section(code, "user").items():
        if not isinstance(entry, dict):
            continue
        git = entry.get("git_commit")
        state = f", git {short_hash(git)} ({'dirty' if entry.get('git_dirty') else 'clean'})" if git else ""
        lines.append(
            _kv(
                "user code",
                f"{key}: {entry.get('target')} in {entry.get('file')}, sha256 {short_hash(entry.get('sha256'))}{state}",
            )
        )
    return lines


def _step_seconds(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def step_lines(data: dict[str, Any]) -> list[str]:
    steps = [s for s in data.get("steps") or [] if isinstance(s, dict)]
    lines = ["steps"] if steps else []
    for step in steps:
        result = step.get("result") if isinstance(step.get("result"), dict) else {}
        lines.append(
            f"  {step.get('name', '?'):<10} {step.get('status', '?'):<11} "
            f"{_step_seconds(step.get('seconds')):>7} s  {result.get('summary', '')}".rstrip()
        )
    return lines


def metric_lines(data: dict[str, Any]) -> list[str]:
    final = section(data, "metrics", "final")
    main, _ = main_metric(data)
    width = max((len(k) for k in final), default=0)
    lines = ["final metrics"] if final else []
    lines += [f"  {k:<{width}}  {fmt_metric(v)}{'  (optimized)' if k == main else ''}" for k, v in final.items()]
    return lines


def artifact_lines(data: dict[str, Any]) -> list[str]:
    artifacts = [a for a in data.get("artifacts") or [] if isinstance(a, dict)]
    lines = ["artifacts"] if artifacts else []
    for a in artifacts:
        size = f"{a['bytes']:,} bytes" if isinstance(a.get("bytes"), int) else "? bytes"
        lines.append(
            f"  {a.get('kind', '?')}: {a.get('path', '?')}  version {fmt(a.get('version'))}  {size}  "
            f"sha256 {short_hash(a.get('sha256'))}"
        )
    lines.append(_kv("weights", f"sha256 {fmt(data.get('weights_sha256'))}"))
    source = data.get("source")
    if isinstance(source, dict):  # job=deploy: the model it deployed, and the run that made it
        lines.append(
            _kv(
                "source",
                f"{fmt(source.get('saved_model'))}  sha256 {short_hash(source.get('sha256'))}  "
                f"from run {fmt(source.get('run_id'))} ({fmt(source.get('record'))})",
            )
        )
    registry = source.get("registry") if isinstance(source, dict) else None
    if isinstance(registry, dict):  # job=deploy source=models:/…: what the reference resolved to
        lines.append(
            _kv(
                "  registry",
                f"{fmt(source.get('given'))} → {fmt(registry.get('name'))} version {fmt(registry.get('version'))}",
            )
        )
    registered = data.get("registry")
    if isinstance(registered, dict):  # track.register=true: the version this run's export became
        lines.append(
            _kv(
                "registered",
                f"{fmt(registered.get('reference'))} (version {fmt(registered.get('version'))} of "
                f"{fmt(registered.get('model'))}) at {fmt(registered.get('uri'))}",
            )
        )
    promotion = data.get("promotion")
    if isinstance(promotion, dict):  # job=promote: which alias moved, from which version to which
        lines.append(
            _kv(
                "promotion",
                f"{fmt(promotion.get('model'))}@{fmt(promotion.get('alias'))}: version "
                f"{fmt(promotion.get('previous_version'))} → {fmt(promotion.get('version'))} "
                f"({fmt(promotion.get('registry'))})",
            )
        )
    for d in data.get("deployments") or []:
        scalars = d.items() if isinstance(d, dict) else []
        lines.append(
            "  deployment: " + ", ".join(f"{k}={fmt(v)}" for k, v in scalars if not isinstance(v, (dict, list)))
        )
    return lines


def error_lines(data: dict[str, Any]) -> list[str]:
    error = section(data, "error")
    if not error:
        return []
    where = ", ".join(f"{k} {fmt(error[k])}" for k in ("step", "signal", "exit_code") if error.get(k) is not None)
    lines = ["error", f"  {error.get('type', '?')}: {error.get('message', '')}", f"  ({where})" if where else ""]
    tail = error.get("log_tail") or []
    if tail:
        lines += ["  log tail:", *(f"    {line}" for line in tail)]
    return [line for line in lines if line]


def cmd_show(args: argparse.Namespace) -> int:
    path, data = load_run(args.run)
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return EXIT_OK
    cloud = ["cloud resources:", *cleanup_cli.resource_lines(data)] if data.get("cloud_resources") else []
    for block in (
        header_lines(path, data),
        step_lines(data),
        metric_lines(data),
        artifact_lines(data),
        cloud,
        error_lines(data),
    ):
        if block:
            print("\n".join(block))
    return EXIT_OK


def add_parser(sub: Any) -> None:
    p = sub.add_parser("show", help="summary of one run")
    p.add_argument("run", metavar="RUN", help="run dir or record.json")
    p.add_argument("--json", action="store_true", help="print the whole record")
    p.set_defaults(func=cmd_show)
