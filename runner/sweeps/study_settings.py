"""What an Optuna study was made with, kept in the study, and the refusal to continue it with anything else.

A study's trials are comparable only under one setting: the same fixed overrides (`train.epochs=1`, the data,
the metric...), the same search space and the same direction. tfrun stores these in the study's user attrs when
the study is made, and compares them each time a sweep loads it. A difference stops the sweep with exit 2 before
any job runs and says how to choose: a new study name, or the old study moved aside.
"""

from __future__ import annotations

import sys
from typing import Any

from omegaconf import DictConfig, OmegaConf

ATTR = "tfrun_settings"
NOT_SEARCHED = "(not searched)"


def of(config: DictConfig) -> dict[str, Any]:
    """The settings a study's trials share: the command's task overrides, the search space, the direction(s)."""
    sweeper = config.hydra.sweeper
    params = sweeper.get("params") or {}
    space = OmegaConf.to_container(params, resolve=True) if isinstance(params, DictConfig) else dict(params)
    direction = sweeper.direction
    return {
        "overrides": sorted(str(o) for o in config.hydra.overrides.task),
        "search_space": {str(k): str(v) for k, v in sorted(space.items())},
        "direction": [direction] if isinstance(direction, str) else [str(d) for d in direction],
    }


def differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """One line per difference, "what: before → now"; empty when a study may be continued."""
    lines = []
    old, new = set(before.get("overrides", [])), set(now["overrides"])
    if old != new:
        lines.append(
            f"fixed overrides: {' '.join(sorted(old - new)) or '(none)'} before → "
            f"{' '.join(sorted(new - old)) or '(none)'} now"
        )
    old_space, new_space = before.get("search_space", {}), now["search_space"]
    for key in sorted(set(old_space) | set(new_space)):
        if old_space.get(key) != new_space.get(key):
            lines.append(
                f"search space {key}: {old_space.get(key, NOT_SEARCHED)} before → "
                f"{new_space.get(key, NOT_SEARCHED)} now"
            )
    if before.get("direction") != now["direction"]:
        lines.append(
            f"direction: {', '.join(before.get('direction') or [])} before → {', '.join(now['direction'])} now"
        )
    return lines


def check(study: Any, config: DictConfig) -> None:
    """Keep the settings of a new study; stop (exit 2) when a loaded one was made with others."""
    now = of(config)
    before = study.user_attrs.get(ATTR)
    if before is None:
        if study.trials:
            print(
                f"[tfrun] study {study.study_name} was made before tfrun kept a study's settings: "
                "continuing it as made with this sweep's",
                flush=True,
            )
        study.set_user_attr(ATTR, now)
        return
    changed = differences(before, now)
    if changed:
        sys.stderr.write(refusal(config, study.study_name, len(study.trials), changed))
        raise SystemExit(2)


def refusal(config: DictConfig, name: str, trials: int, changed: list[str]) -> str:
    """The exit-2 message: which study, what differs, and the two ways to go on."""
    storage = str(config.hydra.sweeper.storage)
    sweep_dir = str(config.hydra.sweep.dir)
    in_sweep_dir = storage.startswith("sqlite:///") and storage.removeprefix("sqlite:///").startswith(sweep_dir)
    aside = (
        f"move {sweep_dir} aside (it holds the study's storage, {storage.removeprefix('sqlite:///')}, and its jobs)"
        if in_sweep_dir
        else f"remove or rename the study {name} in {storage}"
    )
    lines = [
        f"tfrun: the Optuna study {name} ({trials} trial(s), storage {storage}) was made with other settings, "
        "and a study is only continued with its own (nothing was run):",
        *(f"  - {line}" for line in changed),
        "Choose one:",
        "  - a new study for these settings: hydra.sweeper.study_name=<new name> (the default sweep dir, "
        "multiruns/optuna/<name>, follows it; with hydra.sweep.dir set, give a new one too)",
        f"  - start afresh under the same name: {aside}",
        "  - continue the study: run it again with the settings above marked 'before'",
    ]
    return "\n".join(lines) + "\n"
