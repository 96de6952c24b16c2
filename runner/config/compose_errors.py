"""Hydra's composition errors in tfrun's config-error format (exit 2, key, value, what is allowed).

Hydra reports a group option that does not exist as `In 'config': Could not find 'data/nope'` plus
its search path, even when the option came from a preset's `override /data: nope` (Hydra applies a
preset's overrides to the primary defaults list, so it names `config`, not the preset). tfrun
finds who named the option (the command line, a preset, or another config file) and says so,
with the group's options. A command-line value the schema refuses (`train.epochs=ten`) is named
by key, value and what is allowed; other composition errors (a preset's unknown key or bad type,
a group chosen without `override`) keep Hydra's text in the same format.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Iterable, Optional

from tfrun.tasks.core import hydra_adapter
from tfrun.tasks.core.problems import Problem, did_you_mean

PRESET_GROUP = "experiment"
HEADER = "tfrun: invalid configuration (nothing was run):"
FOOTER = "Fix the value(s) above; `tfrun --help` lists every group's options, `tfrun --cfg job` prints the config."

_PARENT = re.compile(r"^In '([^']+)': ")
_SEARCH_PATH_LINE = re.compile(r"^\s*provider=[^,]+, path=(\S+)\s*$")


def _command_line_overrides(argv: Iterable[str]) -> list[Any]:
    """Hydra's overrides of the command line's `KEY=VALUE` words ([] if Hydra cannot parse one: it reports it)."""
    try:
        return hydra_adapter.parse_overrides(a for a in argv if not a.startswith("-") and "=" in a)
    except Exception:
        return []


def command_line_choices(argv: Iterable[str]) -> dict[str, list[str]]:
    """{group: [options]} chosen by `GROUP=OPTION` overrides (sweeps give several options)."""
    overrides = _command_line_overrides(argv)
    choices: dict[str, list[str]] = {}
    for o in overrides:
        if o.is_delete():
            continue
        if o.is_sweep_override() and not o.is_discrete_sweep():  # interval(): no values to list
            continue
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
        choices.setdefault(o.key_or_group.lstrip("/"), []).extend(values)
    return choices


def search_path(message: str) -> list[Path]:
    """The folders in the `Config search path:` lines Hydra appends to a missing-config error."""
    from importlib.resources import files

    folders = []
    for line in message.splitlines():
        match = _SEARCH_PATH_LINE.match(line)
        if not match:
            continue
        url = match.group(1)
        if url.startswith("file://"):
            folders.append(Path(url.removeprefix("file://")))
        elif url.startswith("pkg://") and not url.startswith("pkg://hydra."):
            try:
                folders.append(Path(str(files(url.removeprefix("pkg://").replace("/", ".")))))
            except (ModuleNotFoundError, TypeError):
                continue
    return folders


def preset_overrides(path: Path) -> dict[str, str]:
    """{group: option} from a preset's defaults list (`override /data: fashion_mnist` entries)."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    entries = (doc.get("defaults") if isinstance(doc, dict) else None) or []
    found: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, dict) and len(entry) == 1:
            ((key, value),) = entry.items()
            words = str(key).split()
            group = words[-1].lstrip("/").split("@")[0] if words else ""
            if group and value is not None:
                found[group] = str(value)
    return found


def _where(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _named_by(group: str, option: str, parent: str, argv: list[str], folders: list[Path]) -> str:
    """Who chose `group=option`: the command line, a preset (file and line) or another config."""
    chosen = command_line_choices(argv)
    if option in chosen.get(group, []):
        return "given on the command line"
    if parent != "config":
        return f"named in the defaults list of {parent}.yaml"
    for preset in chosen.get(PRESET_GROUP, []):
        for folder in folders:
            path = folder / PRESET_GROUP / f"{preset}.yaml"
            if path.is_file() and preset_overrides(path).get(group) == option:
                return f"set by preset {PRESET_GROUP}={preset}: `override /{group}: {option}` in {_where(path)}"
    return "named in a defaults list"


def missing_option_problem(exc: Any, argv: list[str]) -> Optional[Problem]:
    """A Problem for Hydra's MissingConfigException about a group option, else None."""
    missing = getattr(exc, "missing_cfg_file", None)
    if not missing or "/" not in missing:
        return None
    group, option = missing.rsplit("/", 1)
    message = str(exc)
    match = _PARENT.match(message)
    parent = match.group(1) if match else "config"
    options = list(getattr(exc, "options", None) or [])
    allowed = ("one of " + ", ".join(options)) if options else f"an option of {group} (none found)"
    folders = search_path(message)
    where = ", ".join(_where(f / group) for f in folders if (f / group).is_dir())
    return Problem(
        group,
        option,
        f"{allowed} ({_named_by(group, option, parent, argv, folders)}"
        + (f"; options are read from {where})" if where else ")"),
    )


def _command_line_values(argv: list[str]) -> dict[str, str]:
    try:
        return {o.key_or_group: o.get_value_element_as_str() for o in _command_line_overrides(argv)}
    except Exception:
        return {}


def override_problem(exc: BaseException, argv: list[str]) -> Optional[Problem]:
    """A Problem for a command-line value the structured config refuses (OmegaConf names the key)."""
    import dataclasses

    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    cause = exc.__cause__
    key = getattr(cause, "full_key", None)
    if not isinstance(cause, OmegaConfBaseException) or not key:
        return None
    value = _command_line_values(argv).get(key, getattr(cause, "value", None))
    first = str(cause).splitlines()[0]
    choices = re.match(r"Invalid value .*, expected one of \[(.*)\]$", first)
    schema = getattr(cause, "object_type", None)
    if choices:
        allowed = "one of " + choices.group(1)
    elif isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and dataclasses.is_dataclass(schema):
        path, _, name = key.rpartition(".")
        fields = [f.name for f in dataclasses.fields(schema) if not f.name.startswith("_")]
        allowed = f"a key of {path or 'the config'}: {', '.join(fields)}"
        allowed += did_you_mean(name, fields, prefix=f"{path}." if path else "")
    else:
        allowed = f"a value of the key's type ({first})"
    return Problem(key, value, allowed)


def other_problem_lines(exc: BaseException, argv: list[str]) -> list[str]:
    """Hydra's message (and OmegaConf's below it) for any other composition error, naming the preset."""
    text = str(exc).split("\nConfig search path:")[0].strip()
    if exc.__cause__ is not None and str(exc.__cause__) not in text:
        text += "\n" + str(exc.__cause__)
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    presets = command_line_choices(argv).get(PRESET_GROUP, [])
    if presets and not any(f"'{PRESET_GROUP}/" in line for line in lines[:1]):
        lines[0] += f" (with preset {PRESET_GROUP}={','.join(presets)})"
    return lines


def appended_group_problem(exc: BaseException, argv: list[str]) -> Optional[Problem]:
    """`+experiment=NAME` (lightning-hydra-template's habit for a group absent by default): every tfrun
    group, experiment included, is in the defaults list, so it is chosen without `+`."""
    match = re.match(r"Multiple values for ([\w/]+)\.", str(exc))
    if not match:
        return None
    group = match.group(1)
    given = [a for a in argv if a.startswith(f"+{group}=") or a.startswith(f"++{group}=")]
    if not given:
        return None
    option = given[0].split("=", 1)[1]
    return Problem(
        given[0].split("=", 1)[0],
        option,
        f"{group}={option}, without '+' ({group} is a group tfrun always has; '+' adds a new one)",
    )


def problem_of(exc: BaseException, argv: list[str]) -> Problem | None:
    """The one problem a composition error is, when tfrun knows it (else its lines: other_problem_lines)."""
    from hydra.errors import MissingConfigException

    if isinstance(exc, MissingConfigException):
        return missing_option_problem(exc, argv)
    return override_problem(exc, argv) or appended_group_problem(exc, argv)


def report(exc: BaseException, argv: list[str]) -> None:
    """Write the error in tfrun's format to stderr."""
    problem = problem_of(exc, argv)
    sys.stderr.write(HEADER + "\n")
    if problem is not None:
        sys.stderr.write(f"  - {problem}\n")
    else:
        first, *rest = other_problem_lines(exc, argv) or [exc.__class__.__name__]
        sys.stderr.write(f"  - {first}\n" + "".join(f"    {line.strip()}\n" for line in rest))
    sys.stderr.write(FOOTER + "\n")
