"""tfrun.runner.config.user_code: a `_target_` found and its signature read from source, never by importing it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tfrun.runner.config import user_code
from tfrun.runner.config.user_code import Found, NotFound, Signature


def write(root: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return [str(root)]


BOOM = "raise RuntimeError('executed!')\n"  # a module that must never run during the check


@pytest.fixture
def project(tmp_path: Path) -> list[str]:
    return write(
        tmp_path,
        {
            "flat.py": BOOM
            + textwrap.dedent("""
            def build(*, input_shape, n_classes, units=32, **extra): ...
            def positional(a, b=1, /, c=2, *args, d, e=5): ...
            class Plain: ...
            class WithInit:
                def __init__(self, threshold, monitor="val_accuracy"): ...
            class Child(WithInit): ...
            class Factory:
                @staticmethod
                def make(size): ...
                @classmethod
                def create(cls, size, depth=1): ...
            from dataclasses import dataclass
            @dataclass
            class Options:
                size: int
                depth: int = 2
            assigned = lambda x: x
            try:
                from fastlib import thing
            except ImportError:
                thing = None
            """),
            "pkg/__init__.py": BOOM + "from .models import build as exported\nfrom .star_src import *\n",
            "pkg/models.py": BOOM + "def build(*, units): ...\ndef other(): ...\n",
            "pkg/star_src.py": "def starred(k=1): ...\n",
            "pkg/sub/__init__.py": BOOM,
            "pkg/sub/deep.py": "from ..models import build\n",
        },
    )


@pytest.mark.parametrize(
    "target, signature",
    [
        ("flat.build", Signature(("input_shape", "n_classes", "units"), ("input_shape", "n_classes"), True)),
        ("flat.positional", Signature(("c", "d", "e"), ("a", "d"), False)),
        ("flat.Plain", Signature((), (), False)),
        ("flat.WithInit", Signature(("threshold", "monitor"), ("threshold",), False)),
        ("flat.Child", Signature(("threshold", "monitor"), ("threshold",), False)),
        ("flat.Factory.make", Signature(("size",), ("size",), False)),
        ("flat.Factory.create", Signature(("size", "depth"), ("size",), False)),
        ("flat.Options", Signature(("size", "depth"), ("size",), False)),
        ("pkg.models.build", Signature(("units",), ("units",), False)),
        ("pkg.exported", Signature(("units",), ("units",), False)),
        ("pkg.starred", Signature(("k",), (), False)),
        ("pkg.sub.deep.build", Signature(("units",), ("units",), False)),
    ],
)
def test_signatures_are_read_from_source(project: list[str], target: str, signature: Signature):
    found = user_code.find(target, project)
    assert isinstance(found, Found), found
    assert found.signature == signature


@pytest.mark.parametrize("target", ["flat.assigned", "flat.thing"])
def test_what_only_running_can_tell_is_unknown_not_an_error(project: list[str], target: str):
    found = user_code.find(target, project)
    assert isinstance(found, Found) and found.kind == "unknown" and found.signature is None


@pytest.mark.parametrize(
    "target, words",
    [
        ("flta.build", ["no module 'flta' is on the path", "did you mean flat?"]),
        ("flat.biuld", ["has no 'biuld'", "did you mean build"]),
        ("pkg.models.nothing_like_it", ["has no 'nothing_like_it'", "it defines: build, other"]),
        ("pkg.models", ["pkg.models is a module"]),
        ("build", ["a bare name like 'build' names no module"]),
        ("flat.build.inner", ["flat.py is a function"]),
        ("flat.WithInit.missing", ["a method of class WithInit", "no 'missing'"]),
        ("not a path", ["a dotted path"]),
    ],
)
def test_missing_targets_say_what_is_wrong(project: list[str], target: str, words: list[str]):
    found = user_code.find(target, project)
    assert isinstance(found, NotFound), found
    for word in words:
        assert word in found.reason, found.reason


def test_a_missing_name_lists_what_the_module_defines_not_what_it_imports(tmp_path: Path):
    """`from typing import Sequence` and `from __future__ import annotations` are not the user's functions."""
    path = write(
        tmp_path,
        {
            "mm.py": "from __future__ import annotations\nfrom typing import Sequence\nimport os\n"
            "X = 3\n\ndef build(*, n_classes): ...\n\nclass Net: ...\n"
        },
    )
    found = user_code.find("mm.zzz_nothing", path)
    assert isinstance(found, NotFound), found
    assert found.reason.endswith("it defines: Net, build"), found.reason


def test_nothing_is_executed_and_no_parent_package_is_imported(tmp_path: Path):
    """The check of pkg.sub.deep.build would raise if any of pkg's __init__ files ran."""
    write(
        tmp_path,
        {
            "pkg/__init__.py": "open('executed', 'w')\nimport tensorflow\n",
            "pkg/sub/__init__.py": "open('executed', 'w')\n",
            "pkg/sub/deep.py": "import tensorflow\nopen('executed', 'w')\ndef build(*, units): ...\n",
        },
    )
    code = (
        "import json, sys; from tfrun.runner.config import user_code; f = user_code.find('pkg.sub.deep.build');"
        "print(json.dumps([f.signature.accepted, sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pkg', 'tensorflow', 'tf_keras'))]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [["units"], []]
    assert not (tmp_path / "executed").exists()


def test_library_callbacks_resolve_through_re_exports_without_importing_tf_keras(tmp_path: Path):
    code = (
        "import json, sys; from tfrun.runner.config import user_code; f = user_code.find('tf_keras.callbacks.CSVLogger');"
        "print(json.dumps([f.kind, f.signature.required, 'tf_keras' in sys.modules, 'tensorflow' in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["class", ["filename"], False, False]


def test_the_current_directory_comes_first_as_in_the_training_child(tmp_path: Path, monkeypatch):
    write(tmp_path, {"mymodels.py": "def build(*, units): ...\n"})
    monkeypatch.chdir(tmp_path)
    found = user_code.find("mymodels.build")
    assert isinstance(found, Found) and found.file == tmp_path / "mymodels.py" and found.where == "mymodels.py:1"


def test_a_syntax_error_is_reported_as_such(tmp_path: Path):
    path = write(tmp_path, {"broken.py": "def build(:\n"})
    found = user_code.find("broken.build", path)
    assert isinstance(found, NotFound) and "syntax error" in found.reason
