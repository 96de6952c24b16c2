"""`tfrun --help`: the config groups and their options, read from the config folder.

Hydra's own help composes and lists every group of every installed plugin,
which takes seconds; this reads file names only. `tfrun --hydra-help` still
shows Hydra's flags.
"""

from __future__ import annotations

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

GROUPS = ("data", "model", "train", "hardware", "strategy", "cluster", "target", "cloud", "sweep")
DEFAULTS = {"data": "digits", "model": "mlp", "train": "default", "hardware": "cpu", "strategy": "default",
            "cluster": "none", "target": "none", "cloud": "none",
            "sweep": "none"}


def options(conf_dir: Path, group: str) -> list[str]:
    names = sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))
    default = DEFAULTS.get(group)
    return ([default] if default in names else []) + [n for n in names if n != default]


def render(conf_dir: Path) -> str:
    lines = [HEADER]
    for group in GROUPS:
        lines.append(f"  {group + ':':<10} {', '.join(options(conf_dir, group))}")
    launchers = options(conf_dir, "hydra/launcher")
    lines.append(f"  {'hydra/launcher:':<10} basic, joblib, submitit_local, submitit_slurm"
                 + "".join(f", {name}" for name in launchers))
    lines.append(FOOTER)
    return "\n".join(lines)


def wants_help(argv: list[str]) -> bool:
    return any(arg in HELP_FLAGS for arg in argv)
