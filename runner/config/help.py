"""`tfrun --help`: the config groups and their options, read from the config folder.

Hydra's own help composes and lists every group of every installed plugin,
which takes seconds; this reads file names only. `tfrun --hydra-help` still
shows Hydra's flags.
"""

from __future__ import annotations

import re
from pathlib import Path

HELP_FLAGS = ("-h", "--help")

HEADER = """tfrun: train, export, deploy and record a TensorFlow model from configs.

Usage: tfrun [GROUP=OPTION ...] [KEY=VALUE ...]      one run
       tfrun -m KEY=V1,V2 ... [hydra/launcher=joblib]  a sweep (one job per combination)
       tfrun --cfg job [overrides]                    print the composed config, run nothing
       tfrun --hydra-help                             Hydra's own flags

Config groups (GROUP=OPTION; the default comes first):"""

FOOTER = """
Change any value with KEY=VALUE, e.g. train.epochs=5 model.n_hidden=3 hardware.logical_devices=2.
Each run writes runs/DATE/TIME/record.json; `tfrun-records --help` lists, compares and reruns them.
Exit codes: 0 succeeded, 1 failed, 2 bad config (nothing run), 130 interrupted."""

GROUPS = ("data", "model", "train", "hardware", "strategy", "cluster", "target", "cloud", "sweep", "experiment")
DEFAULTS = {
    "data": "digits",
    "model": "mlp",
    "train": "default",
    "hardware": "cpu",
    "strategy": "default",
    "cluster": "none",
    "target": "none",
    "cloud": "none",
    "sweep": "none",
}
OPTIONAL = {"experiment": "(none)"}  # groups with no option by default: presets that set several groups at once
NOTES = {"experiment": "   (presets: several groups and values at once; the command line wins)"}


def options(conf_dir: Path, group: str, extra_dirs: tuple[Path, ...] = ()) -> list[str]:
    """The group's options, the default first; one found only in a user's folder is marked with that folder."""
    own = {p.stem for p in (conf_dir / group).glob("*.yaml")}
    names = sorted(own | {p.stem for d in extra_dirs for p in (d / group).glob("*.yaml")})
    default = DEFAULTS.get(group)
    first = [default] if default in names else ([OPTIONAL[group]] if group in OPTIONAL else [])
    return [_marked(n, own, group, extra_dirs) for n in first + [n for n in names if n != default]]


def _marked(name: str, own: set[str], group: str, extra_dirs: tuple[Path, ...]) -> str:
    folders = [str(d) for d in extra_dirs if (d / group / f"{name}.yaml").is_file()]
    return f"{name} (from {', '.join(folders)})" if folders and name not in own else name


def user_groups(conf_dir: Path, extra_dirs: tuple[Path, ...]) -> list[str]:
    """Groups only a user's folder has (e.g. conf/optimizer/*.yaml), nested ones as a/b."""
    found = {str(p.parent.relative_to(d)) for d in extra_dirs if d.is_dir() for p in d.rglob("*.yaml") if p.parent != d}
    return sorted(g for g in found if g not in GROUPS and not g.startswith("hydra") and not (conf_dir / g).is_dir())


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


def render(conf_dir: Path, argv: list[str] | None = None) -> str:
    extra = user_config_dirs(argv or [])
    lines = [HEADER]
    for group in GROUPS:
        lines.append(f"  {group + ':':<11} {', '.join(options(conf_dir, group, extra))}{NOTES.get(group, '')}")
    for group in user_groups(conf_dir, extra):
        lines.append(f"  {group + ':':<11} {', '.join(options(conf_dir, group, extra))}")
    launchers = options(conf_dir, "hydra/launcher")
    lines.append(
        f"  {'hydra/launcher:':<10} basic, joblib, submitit_local, submitit_slurm"
        + "".join(f", {name}" for name in launchers)
    )
    lines.append(FOOTER)
    return "\n".join(lines)


def wants_help(argv: list[str]) -> bool:
    return any(arg in HELP_FLAGS for arg in argv)
