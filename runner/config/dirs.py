"""The Hydra flags that choose where configs come from, kept so a rerun composes the same config.

A user's own options live in their folder (`tfrun --config-dir my_conf model=tiny`). The record's
`command.overrides` hold `model=tiny` but not the flag, so `tfrun-records rerun` and `resume` take
`--config-dir` / `--config-name` / `--config-path` (and their short forms) from the recorded argv
(a sweep's multirun.yaml, for `resume`), as written: relative paths are relative to the directory
the rerun is started from, as for the original.
"""

from __future__ import annotations

from typing import Any

FLAGS = {
    "--config-dir": "--config-dir",
    "-cd": "--config-dir",
    "--config-name": "--config-name",
    "-cn": "--config-name",
    "--config-path": "--config-path",
    "-cp": "--config-path",
}


def from_argv(argv: list[str]) -> list[str]:
    """`--config-dir X`-style arguments found in a recorded argv, in long `--flag=value` form."""
    found: list[str] = []
    args = iter(argv[1:] if argv and not str(argv[0]).startswith("-") else argv)
    for arg in args:
        arg = str(arg)
        flag, eq, value = arg.partition("=")
        if flag in FLAGS:
            if not eq:
                value = str(next(args, ""))
            if value:
                found.append(f"{FLAGS[flag]}={value}")
    return found


def from_multirun(manifest: Any) -> list[str]:
    """`--config-dir` for each config folder a sweep was given on its command line (multirun.yaml)."""
    sources = manifest.get("hydra", {}).get("runtime", {}).get("config_sources", []) or []
    dirs = [s.get("path") for s in sources if s.get("provider") == "command-line" and s.get("schema") == "file"]
    return [f"--config-dir={d}" for d in dirs if d]


def command_line_dirs(hydra_cfg: Any) -> list[str]:
    """Config folders a run was given with --config-dir (its `hydra` node; a Vertex replica would not have them)."""
    return [s.path for s in hydra_cfg.runtime.config_sources if s.provider == "command-line" and s.schema == "file"]


def searchpath_dirs(hydra_cfg: Any) -> list[str]:
    """Folders added with hydra.searchpath (file://), which a Vertex job does not stage."""
    return [
        s.path
        for s in hydra_cfg.runtime.config_sources
        if str(s.provider).startswith("hydra.searchpath") and s.schema == "file"
    ]
