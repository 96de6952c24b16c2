"""The config reference: groups, options, defaults and keys, read from `conf/` and the schemas.

`tfrun --help` (`runner/config/help.py`) and the documentation's reference page (`docs/hooks/reference.py`,
at build time) both come from here, so neither can list a group, an option or a default that tfrun does not
have. It reads YAML files and the schema dataclasses; it never composes a config and imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from omegaconf import MISSING, OmegaConf

from tfrun.tasks.core.schema import SCHEMAS, Config, Job, field_default

# Hydra's launchers that tfrun's `sweep` extra installs; conf/hydra/launcher/ adds tfrun's own presets.
HYDRA_LAUNCHERS = {
    "basic": "Hydra's default: the jobs one after the other.",
    "joblib": "Hydra's joblib launcher: jobs in parallel on this machine (`hydra.launcher.n_jobs`).",
    "submitit_local": "Hydra's submitit launcher: each job a process of its own on this machine.",
    "submitit_slurm": "Hydra's submitit launcher on a SLURM cluster (tfrun's `slurm` preset sets it up).",
}
NO_OPTION = "(none)"
LAUNCHER_GROUP = "hydra/launcher"

# What each group decides: one line each. A group under conf/ without a line here fails tests/unit/test_reference.py.
GROUP_NOTES = {
    "data": "examples and the train / validation / holdout split",
    "model": "the architecture; pixel scaling is inside the model, so the export takes raw input",
    "train": "epochs, batch size, optimizer, learning rate, seed, determinism, callbacks",
    "hardware": "threads, logical CPU devices, visible GPUs, GPU memory, logical GPUs, mixed precision, placement",
    "strategy": "the tf.distribute strategy",
    "cluster": "the processes a multi-worker or parameter-server job runs in; `vertex`: the run as a Vertex AI job",
    "target": "where the export goes after training, ending with a parity check against the trained model",
    "cloud": "the Google Cloud project, bucket, region and credentials of the Vertex targets and `cluster=vertex`",
    "track": "where finished records are also sent (MLflow); the record stays the source of truth",
    "sweep": "the search a `tfrun -m` runs (`optuna`: with `sweep.pruner`; `vertex`: a Vertex AI tuning job)",
    "experiment": "presets: several groups and values at once; the command line wins",
    LAUNCHER_GROUP: "where a sweep's jobs run (one after the other, in parallel, on a SLURM cluster)",
    "hydra/sweeper": "the sweeper of a `tfrun -m` (`sweep=optuna` chooses `optuna`, tfrun's Optuna sweeper)",
    "hydra/sweeper/sampler": "the Optuna sampler of `sweep=optuna` (default `tpe`)",
}
# Top-level sections of Config that are not groups: what each is for.
SECTION_NOTES = {
    "run": "how the runner supervises the child process",
    "export": "the SavedModel's `serving_default` outputs",
    "serve": "`job=serve`: a TF Serving server in the foreground on an existing repository",
    "rollback": "`job=rollback`: serve an older version again",
    "serve_web": "`job=serve_web`: a static server on an existing `target=web` bundle",
    "tuning": "`sweep=vertex`: the Vertex AI hyperparameter tuning job",
    "k8s": "`job=k8s`: Kubernetes manifests for a served model or a training cluster (written and validated, never applied)",
}


@dataclass(frozen=True)
class Option:
    name: str
    summary: str  # the first sentence of the option file's header comment
    folder: str | None = None  # the user's folder it comes from, when it is not one of tfrun's


@dataclass(frozen=True)
class Group:
    name: str
    default: str | None  # None: no option unless one is chosen (experiment)
    options: tuple[Option, ...]  # the default first, then by name
    note: str
    optional: bool = False  # config.yaml chooses no option of it (experiment: null)


@dataclass(frozen=True)
class Key:
    key: str  # dotted, as on the command line (train.callbacks.tensorboard)
    default: Any  # the option's value: its YAML file's, else the schema dataclass's
    note: str  # the YAML line's comment, else the dataclass field's


# ------------------------------------------------------------------ groups and options
def primary_defaults(conf_dir: Path) -> dict[str, str | None]:
    """The groups config.yaml's defaults list chooses, in its order, with their default option."""
    found: dict[str, str | None] = {}
    for entry in OmegaConf.to_container(OmegaConf.load(conf_dir / "config.yaml")).get("defaults", []):
        if isinstance(entry, dict):
            ((group, option),) = entry.items()
            found[str(group)] = option
    return found


def conf_groups(conf_dir: Path) -> list[str]:
    """Every folder of conf_dir holding option files, as a group name (nested ones as a/b)."""
    return sorted({str(p.parent.relative_to(conf_dir)) for p in conf_dir.rglob("*.yaml") if p.parent != conf_dir})


def summary(path: Path) -> str:
    """The first sentence of the file's header comment (an indented comment line, an example, ends it)."""
    words: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# @package"):
            continue
        if not line.startswith("#") or line.startswith("#   ") or not line[1:].strip():
            break
        words.append(line[1:].strip())
    match = re.match(r"(.+?[.!?])(\s|$)", " ".join(words))
    return match.group(1) if match else " ".join(words)


def groups(conf_dir: Path, extra_dirs: tuple[Path, ...] = ()) -> list[Group]:
    """Every group: config.yaml's in its order, then the other folders of conf_dir, then the user's own."""
    defaults = primary_defaults(conf_dir)
    own = conf_groups(conf_dir)
    names = list(defaults) + [g for g in own if g not in defaults and g != LAUNCHER_GROUP]
    names += [g for g in user_groups(conf_dir, extra_dirs) if g not in names]
    found = [_group(conf_dir, name, defaults.get(name), extra_dirs) for name in names]
    found = [dataclasses.replace(g, optional=g.name in defaults and g.default is None) for g in found]
    launchers = _group(conf_dir, LAUNCHER_GROUP, "basic", ())
    hydra_own = tuple(Option(name, why) for name, why in HYDRA_LAUNCHERS.items())
    found.append(dataclasses.replace(launchers, options=hydra_own + launchers.options))
    return found


def _group(conf_dir: Path, name: str, default: str | None, extra_dirs: tuple[Path, ...]) -> Group:
    files = {p.stem: p for p in sorted((conf_dir / name).glob("*.yaml"))}
    users: dict[str, tuple[Path, str]] = {}
    for folder in extra_dirs:
        for p in sorted((folder / name).glob("*.yaml")):
            if p.stem not in files:
                users.setdefault(p.stem, (p, str(folder)))
    names = sorted(set(files) | set(users))
    ordered = ([default] if default in names else []) + [n for n in names if n != default]
    options = [
        Option(n, summary(files[n])) if n in files else Option(n, summary(users[n][0]), users[n][1]) for n in ordered
    ]
    return Group(name, default, tuple(options), GROUP_NOTES.get(name, ""))


def user_groups(conf_dir: Path, extra_dirs: tuple[Path, ...]) -> list[str]:
    """Groups only a user's folder has (e.g. conf/optimizer/*.yaml), nested ones as a/b."""
    found = {str(p.parent.relative_to(d)) for d in extra_dirs if d.is_dir() for p in d.rglob("*.yaml") if p.parent != d}
    return sorted(g for g in found if not g.startswith("hydra") and not (conf_dir / g).is_dir())


# ------------------------------------------------------------------ the job key
def job_values() -> list[tuple[str, str]]:
    """`job`'s allowed values with the comment each has in the schema."""
    notes = dict(re.findall(r"^\s+(\w+) = \"\w+\"\s*#\s*(.*)$", inspect.getsource(Job), flags=re.M))
    return [(job.value, notes.get(job.name, "")) for job in Job]


# ------------------------------------------------------------------ keys
def schema_of(group: str, option: str) -> type | None:
    """The dataclass an option's values must fit: its own (SCHEMAS), or the one its group's field has on Config."""
    if option in SCHEMAS.get(group, {}):
        return SCHEMAS[group][option]
    field = next((f for f in dataclasses.fields(Config) if f.name == group), None)
    made = field_default(field) if field else None
    return type(made) if dataclasses.is_dataclass(made) else None


def yaml_values(path: Path) -> dict[str, Any]:
    """An option file's values (no defaults list), interpolations kept as written."""
    values = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    return {k: v for k, v in values.items() if k != "defaults"} if isinstance(values, dict) else {}


def schema_defaults(schema: type, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every key the dataclass declares (nested dataclasses flattened) with its default; MISSING when required."""
    for field in dataclasses.fields(schema):
        if field.name.startswith("_") or field.name == "name":
            continue
        value = field_default(field)
        if dataclasses.is_dataclass(value):
            yield from schema_defaults(type(value), f"{prefix}{field.name}.")
        else:
            yield f"{prefix}{field.name}", value


def flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested YAML values as dotted keys (a dict that is a value of its own, such as cluster.task_env, stays whole
    when the caller looks it up by its own key)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        out[prefix + str(key)] = value
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
    return out


def option_keys(conf_dir: Path, group: str, option: str) -> list[Key]:
    """The option's keys: every key its schema declares, with the option's default and a one-line note."""
    path = conf_dir / group / f"{option}.yaml"
    schema = schema_of(group, option)
    if schema is None:
        return []
    return _keys(group, schema, flat(yaml_values(path)), yaml_comments(path))


def section_keys(conf_dir: Path) -> dict[str, list[Key]]:
    """Config's top-level keys that are not groups (job, models_dir, …) and its sections (run.*, tuning.*, …)."""
    values = flat(yaml_values(conf_dir / "config.yaml"))
    comments = yaml_comments(conf_dir / "config.yaml")
    chosen = set(primary_defaults(conf_dir))
    top = [f for f in dataclasses.fields(Config) if f.name not in chosen]
    out = {"": [k for k in _keys("", Config, values, comments) if "." not in k.key and k.key in {f.name for f in top}]}
    for field in top:
        made = field_default(field)
        if dataclasses.is_dataclass(made):
            inner = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith(f"{field.name}.")}
            notes = {k.split(".", 1)[1]: v for k, v in comments.items() if k.startswith(f"{field.name}.")}
            out[field.name] = _keys(field.name, type(made), inner, notes)
    return out


def _keys(prefix: str, schema: type, values: dict[str, Any], comments: dict[str, str]) -> list[Key]:
    """The schema's keys under `prefix`: the YAML's value and comment where it has them, else the dataclass's;
    an enum's note ends with its allowed values."""
    notes = field_comments(schema)
    found = []
    for key, default in schema_defaults(schema):
        note = comments.get(key) or notes.get(key, "")
        if isinstance(default, enum.Enum):
            allowed = [str(e.value) for e in type(default)]
            if not all(a in note for a in allowed):
                note = (note + "; " if note else "") + "one of " + ", ".join(allowed)
        found.append(Key(f"{prefix}.{key}" if prefix else key, values.get(key, default), note))
    return found


_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[\w-]+):(?P<rest>.*)$")


def yaml_comments(path: Path) -> dict[str, str]:
    """Each key's end-of-line comment in a YAML file, by dotted key (nesting read from the indentation)."""
    found: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _LINE.match(line)
        if not match or line.lstrip().startswith("#"):
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = ".".join([k for _, k in stack] + [match["key"]])
        stack.append((indent, match["key"]))
        comment = _comment(match["rest"])
        if comment:
            found[key] = comment
    return found


def _comment(rest: str) -> str:
    """The comment after a YAML value (a # inside quotes is part of the value)."""
    quote = None
    for i, char in enumerate(rest):
        if char in "'\"" and quote in (None, char):
            quote = None if quote else char
        elif char == "#" and quote is None and (i == 0 or rest[i - 1].isspace()):
            return rest[i + 1 :].strip()
    return ""


@functools.lru_cache(maxsize=None)
def _source(cls: type) -> str:
    """A class's source, once: inspect parses the class's whole module for every class it is asked about, and the
    reference asks about each base class once per option (`tfrun --help`, the docs build)."""
    return inspect.getsource(cls)


def field_comments(schema: type) -> dict[str, str]:
    """Each field's comment in the dataclass's source (at the end of its line, else just above it), nested
    dataclasses' by dotted key."""
    found: dict[str, str] = {}
    for cls in reversed([c for c in schema.__mro__ if dataclasses.is_dataclass(c)]):
        source = _source(cls)
        above = re.findall(r"^    # (.*)\n    (\w+): ", source, flags=re.M)  # a comment line just above the field
        found.update({name: text for text, name in above})
        found.update(re.findall(r"^    (\w+): [^#\n]*?#\s*(.*)$", source, flags=re.M))
    for field in dataclasses.fields(schema):
        value = field_default(field)
        if dataclasses.is_dataclass(value):
            found.update({f"{field.name}.{k}": v for k, v in field_comments(type(value)).items()})
    return found


# ------------------------------------------------------------------ formatting
def shown(value: Any) -> str:
    """A value as it is written in YAML and on the command line."""
    if value is MISSING or value == "???":
        return "??? (required)"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {shown(v)}" for k, v in value.items()) + "}"
    return str(value)


def _cell(text: str) -> str:
    """Text for a Markdown table cell: pipes escaped, and <, >, & outside code spans kept as text."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts).replace("|", "\\|")


def _code(value: Any) -> str:
    return f"`{shown(value)}`".replace("|", "\\|")


def _key_table(keys: list[Key]) -> list[str]:
    rows = ["| key | default | what it sets |", "|---|---|---|"]
    return rows + [f"| `{k.key}` | {_code(k.default)} | {_cell(k.note)} |" for k in keys]


def group_table(found: list[Group], page: str = "") -> list[str]:
    """The groups as a Markdown table, one line each; names link to their section of the reference page."""
    lines = ["| group | options | default | what it decides |", "|---|---|---|---|"]
    for group in found:
        names = ", ".join(f"[`{o.name}`]({page}#{_anchor(group.name, o.name)})" for o in group.options)
        default = f"`{group.default}`" if group.default else NO_OPTION
        lines.append(f"| [`{group.name}`]({page}#{_anchor(group.name)}) | {names} | {default} | {_cell(group.note)} |")
    return lines


def option_table(group: Group, page: str = "") -> list[str]:
    """One group's options as a Markdown table: each with the first sentence of its file's comment."""
    lines = [f"| `{group.name}=` | what it is |", "|---|---|"]
    for option in group.options:
        default = " (default)" if option.name == group.default else ""
        link = f"[`{option.name}`]({page}#{_anchor(group.name, option.name)})"
        lines.append(f"| {link}{default} | {_cell(option.summary)} |")
    return lines


def markdown(conf_dir: Path) -> str:
    """The reference page: the group table, the top-level keys, then every option's keys."""
    found = groups(conf_dir)
    lines = [
        "# Config reference",
        "",
        "Generated from `conf/` and the schemas in `tasks/core/schema/` each time this site is built",
        "(`runner/config/reference.py`, which `tfrun --help` reads too), so it lists exactly the groups, options,",
        "keys and defaults tfrun accepts. Pick an option with `GROUP=OPTION`, set a key with `KEY=VALUE`;",
        "`tfrun --cfg job [overrides]` prints the composed config without running anything.",
        "",
        "## Groups",
        "",
        *group_table(found),
        "",
        "## Top-level keys",
        "",
    ]
    sections = section_keys(conf_dir)
    lines += ["| key | default | what it sets |", "|---|---|---|"]
    for key in sections.pop(""):
        note = key.note
        if key.key == "job":
            note = "; ".join(f"`{value}`: {why}" for value, why in job_values())
        lines.append(f"| `{key.key}` | {_code(key.default)} | {_cell(note)} |")
    for name, keys in sections.items():
        lines += ["", f"### `{name}` {{#{name}}}", "", _cell(SECTION_NOTES.get(name, "")), ""] + _key_table(keys)
    for group in found:
        lines += ["", f"## `{group.name}` {{#{_anchor(group.name)}}}", "", _cell(group.note) + "."]
        for option in group.options:
            lines += ["", f"### `{group.name}={option.name}` {{#{_anchor(group.name, option.name)}}}", ""]
            lines.append(_cell(option.summary) or "&nbsp;")
            path = conf_dir / group.name / f"{option.name}.yaml"
            keys = option_keys(conf_dir, group.name, option.name) if path.is_file() else []
            if keys:
                lines += [""] + _key_table(keys)
    return "\n".join(lines) + "\n"


def _anchor(*parts: str) -> str:
    return "-".join(re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-") for p in parts)
