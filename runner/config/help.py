"""`tfrun --help`: the config groups, their options and the `job` key, from `runner/config/reference.py`.

Hydra's own help composes and lists every group of every installed plugin, which takes seconds; this reads
file names and header comments only (the same source as the documentation's reference page). `tfrun
--hydra-help` still shows Hydra's flags.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tfrun.runner.config import reference

HELP_FLAGS = ("-h", "--help")

HEADER = """tfrun: train, export, deploy and record a TensorFlow model from configs.

Usage: tfrun [GROUP=OPTION ...] [KEY=VALUE ...]      one run
       tfrun -m KEY=V1,V2 ... [hydra/launcher=joblib]  a sweep (one job per combination)
       tfrun --cfg job [overrides]                    print the composed config, run nothing
       tfrun --version                                tfrun's version
       tfrun --hydra-help                             Hydra's own flags

Config groups (GROUP=OPTION; the default comes first):"""

FOOTER = """
Change any value with KEY=VALUE, e.g. train.epochs=5 model.n_hidden=3 hardware.logical_devices=2.
Each run writes runs/DATE/TIME/record.json; `tfrun-records --help` lists, compares and reruns them.
Exit codes: 0 succeeded, 1 failed, 2 bad config (nothing run), 130 interrupted."""

NOTES = {"experiment": "   (presets: several groups and values at once; the command line wins)"}


def user_config_dirs(argv: list[str]) -> tuple[Path, ...]:
    """Folders given with --config-dir / -cd or as file:// entries of hydra.searchpath=[...]."""
    dirs: list[Path] = []
    for i, arg in enumerate(argv):
        if arg in ("--config-dir", "-cd") and i + 1 < len(argv):
            dirs.append(Path(argv[i + 1]))
        elif arg.startswith("--config-dir="):
            dirs.append(Path(arg.split("=", 1)[1]))
        elif arg.startswith("hydra.searchpath="):
            dirs += [Path(m) for m in re.findall(r"file://([^,\]\s'\"]+)", arg)]
    return tuple(dirs)


def _name(option: reference.Option) -> str:
    return f"{option.name} (from {option.folder})" if option.folder else option.name


def render(conf_dir: Path, argv: list[str] | None = None) -> str:
    from tfrun.runner.config import reference  # here, not at import: every command asks wants_help first

    lines = [HEADER]
    for group in reference.groups(conf_dir, user_config_dirs(argv or [])):
        names = ([reference.NO_OPTION] if group.optional else []) + [_name(o) for o in group.options]
        lines.append(f"  {group.name + ':':<11} {', '.join(names)}{NOTES.get(group.name, '')}")
    lines.append("\nWhat one run does (job=VALUE; the default comes first):")
    lines += [f"  {value:<11} {why}" for value, why in reference.job_values()]
    lines.append(FOOTER)
    return "\n".join(lines)


def wants_help(argv: list[str]) -> bool:
    return any(arg in HELP_FLAGS for arg in argv)
