"""The config reference cannot drift: `tfrun --help` and the docs list every group and option under conf/, and
every YAML default equals the default its schema dataclass declares (issue 26)."""

from __future__ import annotations

import dataclasses
import enum
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from omegaconf import MISSING

from tests.helpers import command_env
from tfrun.runner.config import help as help_text
from tfrun.runner.config import reference
from tfrun.tasks.core.schema import Config, Job

CONF = Path(__file__).resolve().parents[2] / "conf"


def on_disk(conf_dir: Path) -> dict[str, set[str]]:
    """Every group folder under conf/ and the options its YAML files are."""
    found: dict[str, set[str]] = {}
    for path in conf_dir.rglob("*.yaml"):
        if path.parent != conf_dir:
            found.setdefault(str(path.parent.relative_to(conf_dir)), set()).add(path.stem)
    return found


def help_lines(text: str) -> dict[str, list[str]]:
    """`tfrun --help`'s group lines: group -> the options it names ("(none)" and "(from …)" marks left out)."""
    lines: dict[str, list[str]] = {}
    block = text.split("Config groups", 1)[1].split("\n\n")[0]
    for line in block.splitlines()[1:]:
        group, names = line.strip().split(":", 1)
        names = names.split("   (")[0]
        lines[group] = [n.split(" (from ")[0] for n in names.strip().split(", ") if n != reference.NO_OPTION]
    return lines


def test_help_lists_every_group_and_option_under_conf():
    listed = help_lines(help_text.render(CONF))
    disk = on_disk(CONF)
    assert {"track", "target", "hydra/launcher"} <= set(disk)  # the folders were found
    missing = {group: sorted(options - set(listed.get(group, []))) for group, options in disk.items()}
    assert not {g: o for g, o in missing.items() if o}, f"tfrun --help leaves these out: {missing}"
    assert "web" in listed["target"] and listed["track"][0] == "none"


def test_help_lists_the_job_key_and_its_values():
    text = help_text.render(CONF)
    for job in Job:
        assert f"\n  {job.value:<11} " in text, job
    assert "job=VALUE" in text


def test_every_group_says_what_it_decides_and_every_option_what_it_is():
    groups = reference.groups(CONF)
    assert {g.name for g in groups} >= set(on_disk(CONF))
    assert not [g.name for g in groups if not g.note], "add the group's line to reference.GROUP_NOTES"
    unsaid = [f"{g.name}={o.name}" for g in groups for o in g.options if not o.summary]
    assert not unsaid, f"start these option files with a comment saying what the option is: {unsaid}"


def test_defaults_come_from_config_yaml():
    groups = {g.name: g for g in reference.groups(CONF)}
    assert groups["data"].default == "digits" and groups["data"].options[0].name == "digits"
    assert groups["track"].default == "none" and groups["experiment"].optional


def test_the_reference_page_lists_every_group_option_and_key():
    page = reference.markdown(CONF)
    for group, options in on_disk(CONF).items():
        assert f"## `{group}`" in page, group
        for option in options:
            assert f"### `{group}={option}`" in page, (group, option)
    assert "| `cluster.form_timeout_s` | `600` |" in page  # an option's own default, not its base class's
    assert "| `train.callbacks.early_stopping.patience` | `5` |" in page  # nested dataclasses flattened
    assert "`serve_web`:" in page and "| `job` | `train` |" in page


def test_a_group_the_generator_does_not_know_still_appears_and_fails_the_note_check(tmp_path: Path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf, ignore=shutil.ignore_patterns("__pycache__"))
    (conf / "scheduler").mkdir()
    (conf / "scheduler" / "cosine.yaml").write_text("# Cosine decay of the learning rate.\nwarmup: 0\n")
    assert help_lines(help_text.render(conf))["scheduler"] == ["cosine"]
    scheduler = next(g for g in reference.groups(conf) if g.name == "scheduler")
    assert scheduler.options[0].summary == "Cosine decay of the learning rate." and not scheduler.note


# ------------------------------------------------------------------ YAML defaults against the schemas
def _normal(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if value is MISSING:
        return "???"
    if dataclasses.is_dataclass(value):
        return {k: _normal(v) for k, v in dataclasses.asdict(value).items()}
    return value


def mismatches(conf_dir: Path) -> list[str]:
    """Every key an option's YAML sets that its schema declares with another default.

    An option is compared with its own dataclass (SCHEMAS) or, for a group typed by its field on Config
    (train, hardware), the group's default option with that dataclass; the other options of such a group are
    presets over the shared dataclass (hardware=gpu sets kind: gpu). config.yaml's own keys against Config.
    """
    found: list[str] = []
    defaults = reference.primary_defaults(conf_dir)
    pairs = [(conf_dir / "config.yaml", Config, "")]
    for group, options in on_disk(conf_dir).items():
        for option in sorted(options):
            schema = reference.schema_of(group, option)
            own = option in reference.SCHEMAS.get(group, {})
            if schema is not None and (own or defaults.get(group) == option):
                pairs.append((conf_dir / group / f"{option}.yaml", schema, f"{group}="))
    for path, schema, prefix in pairs:
        declared = dict(reference.schema_defaults(schema))
        for key, value in reference.flat(reference.yaml_values(path)).items():
            if key in declared and not isinstance(value, dict) and _normal(declared[key]) != value:
                where = f"{prefix}{path.stem}" if prefix else path.name
                found.append(f"{where}: {key} is {value!r} in YAML, {_normal(declared[key])!r} in {schema.__name__}")
    return found


def test_every_yaml_default_equals_its_dataclass_default():
    assert not mismatches(CONF), "make the YAML value and the dataclass default agree"


@pytest.mark.parametrize(
    ("file", "line", "new"),
    [
        ("cluster/vertex.yaml", "form_timeout_s: 600", "form_timeout_s: 60"),
        ("train/default.yaml", "epochs: 20", "epochs: 21"),
        ("target/tflite.yaml", "quantization: none ", "quantization: int8 "),
        ("config.yaml", "models_dir: models", "models_dir: exports"),
    ],
)
def test_a_yaml_default_that_drifts_is_found(tmp_path: Path, file: str, line: str, new: str):
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf, ignore=shutil.ignore_patterns("__pycache__"))
    text = (conf / file).read_text()
    assert line in text
    (conf / file).write_text(text.replace(line, new, 1))
    found = mismatches(conf)
    assert len(found) == 1 and new.split(":")[0] in found[0], found


def test_help_stays_fast_and_imports_no_tensorflow(tmp_path: Path):
    """`tfrun --help` reads files and the schemas only: it loads no TensorFlow (and so answers in well under a
    second on an idle machine; tests/unit/test_fast_paths.py holds the import rule for the command)."""
    code = (
        "import sys, time; t = time.perf_counter();"
        "from pathlib import Path; from tfrun.runner.config import help;"
        f"help.render(Path({str(CONF)!r})); print(time.perf_counter() - t);"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=command_env(), capture_output=True, text=True, timeout=60)
    seconds, heavy = proc.stdout.splitlines()
    assert heavy == "[]", heavy
    assert float(seconds) < 5, seconds  # generous: a loaded 2-core machine; idle it is about 0.3 s
