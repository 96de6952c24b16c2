"""What of a user's project travels with a Vertex job: the files, where they go, and the archive.

A local run imports the user's code from the working directory (then PYTHONPATH) and reads their
`--config-dir` folders and data files from this disk; a Vertex replica has none of them. The
project is staged as one archive whose root is the working directory at submit time, so a replica
that unpacks it and works from its root has the same relative paths: `--config-dir conf`,
`data.path=wine.npz` and `winelab/models.py` mean the same there. What lies outside the working
directory goes under `_outside/N/` (code under `_outside/pythonpath/`, put on the replica's path)
and the replica's arguments name the new place.

Pure standard library: validation sizes the project (exit 2 over the cap, before any upload) with
the same walk the stage step archives, and a replica unpacks with the manifest's sha256s checked.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.machinery
import io
import json
import os
import sys
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Iterator, Optional

from tfrun.tasks.core.user_keys import DATA_DEFAULTS

ARCHIVE = "project.tar.gz"
MANIFEST = "project.json"
OUTSIDE = "_outside"  # files from outside the working directory
PYTHONPATH_DIR = f"{OUTSIDE}/pythonpath"  # code found on PYTHONPATH: on the replica's path too
LEFT_OUT_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".ipynb_checkpoints",
        "node_modules",
        "runs",
        "multiruns",
        "models",
        "outputs",
        ".idea",
        ".vscode",
    }
)
LEFT_OUT_FILES = ("*.pyc", "*.pyo", ".DS_Store")
OWN_PACKAGES = ("tfrun.",)  # tfrun's own code: in its wheel or image, never staged as the user's


@dataclass(frozen=True)
class StagedFile:
    """One file of the archive: its path there (posix, relative) and where it is read from here."""

    name: str
    source: Path
    bytes: int


@dataclass
class ProjectPlan:
    """Everything staged, and how the replica's arguments change to find it."""

    root: Path
    files: list[StagedFile] = field(default_factory=list)
    modules: dict[str, str] = field(default_factory=dict)  # top-level module -> its path in the archive
    config_dirs: dict[str, str] = field(default_factory=dict)  # as given -> its path in the archive
    data: dict[str, str] = field(default_factory=dict)  # config key -> its new value on the replica (moved files)
    data_staged: dict[str, str] = field(default_factory=dict)  # config key -> its path in the archive (every one)
    pythonpath: bool = False  # some code came from PYTHONPATH (PYTHONPATH_DIR goes on the replica's path)

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def largest(self, n: int = 5) -> list[StagedFile]:
        return sorted(self.files, key=lambda f: (-f.bytes, f.name))[:n]

    def describe(self) -> str:
        """`412 files, 1.2 MB: modules winelab; configs conf; data data.path`."""
        parts = [f"{len(self.files)} file(s), {megabytes(self.total_bytes)}"]
        if self.modules:
            parts.append("modules " + ", ".join(sorted(self.modules)))
        if self.config_dirs:
            parts.append("configs " + ", ".join(self.config_dirs.values()))
        if self.data_staged:
            parts.append("data " + ", ".join(f"{k} -> {v}" for k, v in sorted(self.data_staged.items())))
        return "; ".join(parts)


class StagingError(ValueError):
    """A project that cannot be staged as asked (the message says which path and why)."""


def megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


# ------------------------------------------------------------------------------------ what to leave out
class Ignore:
    """The project's .gitignore patterns (root file only) and the folders that never travel."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.patterns: list[tuple[str, bool, bool, bool]] = []  # (pattern, negated, dir_only, anchored)
        gitignore = root / ".gitignore"
        if gitignore.is_file():
            for line in gitignore.read_text(errors="replace").splitlines():
                line = line.rstrip()
                if not line or line.startswith("#"):
                    continue
                negated = line.startswith("!")
                line = line[1:] if negated else line
                dir_only = line.endswith("/")
                line = line.rstrip("/")
                anchored = "/" in line
                self.patterns.append((line.lstrip("/"), negated, dir_only, anchored))

    def __call__(self, rel: PurePosixPath, is_dir: bool) -> bool:
        if is_dir and (rel.name in LEFT_OUT_DIRS or (self.root / rel / "pyvenv.cfg").is_file()):
            return True
        if not is_dir and any(fnmatch.fnmatch(rel.name, p) for p in LEFT_OUT_FILES):
            return True
        ignored = False
        text = rel.as_posix()
        for pattern, negated, dir_only, anchored in self.patterns:
            if dir_only and not is_dir:
                continue
            hit = fnmatch.fnmatch(text, pattern) if anchored else fnmatch.fnmatch(rel.name, pattern)
            if hit:
                ignored = not negated
        return ignored


def walk(folder: Path, root: Path, ignore: Optional[Ignore]) -> Iterator[Path]:
    """Files under `folder`, minus what is left out (relative to `root` for the .gitignore rules)."""
    if folder.is_file():
        yield folder
        return
    for here, dirs, files in os.walk(folder):
        base = Path(here)
        rel = PurePosixPath(base.relative_to(root).as_posix()) if _under(base, root) else None
        keep = []
        for d in sorted(dirs):
            sub = PurePosixPath(d) if rel is None or str(rel) == "." else rel / d
            if d in LEFT_OUT_DIRS or (base / d / "pyvenv.cfg").is_file():
                continue
            if ignore is not None and rel is not None and ignore(sub, True):
                continue
            keep.append(d)
        dirs[:] = keep
        for name in sorted(files):
            sub = PurePosixPath(name) if rel is None or str(rel) == "." else rel / name
            if any(fnmatch.fnmatch(name, p) for p in LEFT_OUT_FILES):
                continue
            if ignore is not None and rel is not None and ignore(sub, False):
                continue
            path = base / name
            if path.is_file():
                yield path


def _under(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


# ------------------------------------------------------------------------------------ where user code is
def search_path() -> list[str]:
    """The folders a training child imports from: the working directory, then PYTHONPATH (not site-packages)."""
    cwd = os.getcwd()
    seen: list[str] = []
    for entry in [cwd, *os.environ.get("PYTHONPATH", "").split(os.pathsep)]:
        entry = os.path.abspath(entry or cwd)
        if entry not in seen and os.path.isdir(entry):
            seen.append(entry)
    return seen


def module_location(top: str) -> Optional[Path]:
    """The package folder or module file of a top-level name, if it is the user's (cwd or PYTHONPATH).

    Installed packages are not the user's project: they come with the requirements.
    """
    if not top.isidentifier():
        return None
    spec = importlib.machinery.PathFinder.find_spec(top, search_path())
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        return None
    origin = Path(spec.origin)
    location = origin.parent if origin.name == "__init__.py" else origin
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix)}
    if any(_under(location, p) for p in prefixes) and not _under(location, Path.cwd()):
        return None
    return location


# ------------------------------------------------------------------------------------ the plan
def plan(root: Path, targets: Iterable[str], config_dirs: Iterable[str], data_paths: dict[str, str]) -> ProjectPlan:
    """The files to stage for these `_target_`s, config folders and data paths (StagingError if one is missing)."""
    root = root.resolve()
    ignore = Ignore(root)
    result = ProjectPlan(root)
    seen: dict[str, StagedFile] = {}
    outside = 0

    def add(source: Path, name: str, use_ignore: bool) -> None:
        source = source.resolve()
        inside = _under(source, root)  # the project's .gitignore speaks of its own folder only
        for path in walk(source, root if inside else source, ignore if use_ignore and inside else None):
            rel = path.relative_to(source).as_posix() if source.is_dir() else ""
            staged = f"{name}/{rel}" if rel else name
            if staged not in seen:
                seen[staged] = StagedFile(staged, path, path.stat().st_size)

    def place(source: Path, pythonpath: bool = False) -> str:
        nonlocal outside
        if _under(source, root):
            return source.resolve().relative_to(root).as_posix() or "."
        if pythonpath:
            result.pythonpath = True
            return f"{PYTHONPATH_DIR}/{source.name}"
        outside += 1
        return f"{OUTSIDE}/{outside}/{source.name}"

    for target in targets:
        top = target.split(".", 1)[0]
        if top in result.modules:
            continue
        location = module_location(top)
        if location is None:
            continue  # installed (or tfrun's own): not the project's
        name = place(location, pythonpath=True)
        result.modules[top] = name
        add(location, name, use_ignore=True)
    for folder in config_dirs:
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise StagingError(f"--config-dir {folder}: no such folder")
        name = place(path)
        result.config_dirs[folder] = name
        add(path, name, use_ignore=True)
    for key, value in data_paths.items():
        path = Path(value).expanduser()
        if not path.exists():
            raise StagingError(f"{key}={value}: no such file or folder")
        name = place(path)
        result.data_staged[key] = name
        if name != PurePosixPath(value).as_posix():
            result.data[key] = name  # the replica is told the new place
        add(path, name, use_ignore=False)  # data named in the config travels even if .gitignore lists it
    result.files = sorted(seen.values(), key=lambda f: f.name)
    return result


# ------------------------------------------------------------------------------------ from a config
def _target_of(node: Any) -> str:
    """A node's `_target_`: typed (tfrun's dataclasses, runner's UserModel/UserData) or a plain map (the child)."""
    if isinstance(node, Mapping) or hasattr(node, "keys"):
        return str(node.get("_target_") or "")
    return str(getattr(node, "target", None) or getattr(node, "_target_", None) or "")


def config_targets(config: Any) -> dict[str, str]:
    """Config key -> `_target_` of the user's own nodes (model, data, train.extra_callbacks)."""
    found: dict[str, str] = {}
    for group in ("model", "data"):
        target = _target_of(config[group] if isinstance(config, Mapping) else getattr(config, group))
        if target and not target.startswith(OWN_PACKAGES):
            found[group] = target
    train = config["train"] if isinstance(config, Mapping) else config.train
    callbacks = train.get("extra_callbacks") if hasattr(train, "keys") else getattr(train, "extra_callbacks", None)
    for i, node in enumerate(callbacks or []):
        target = _target_of(node)
        if target and not target.startswith(OWN_PACKAGES):
            found[f"train.extra_callbacks[{i}]"] = target
    return found


def data_paths(config: Any) -> dict[str, str]:
    """`data.KEY` -> value, for each data key whose value is an existing local file or folder.

    The user's loader may take a file in any of its keys; tfrun's loaders name theirs `path`. gs:// and
    other URLs are the replicas' to read; a path that does not exist here is left to the loader (which
    may create it, as a download folder).
    """
    node = config["data"] if isinstance(config, Mapping) else config.data
    if hasattr(node, "keys"):  # a plain map (the training child)
        user = not _target_of(node).startswith(OWN_PACKAGES)
        values = (
            {k: node[k] for k in node.keys() if k not in ("_target_", "name", *DATA_DEFAULTS)}
            if user
            else {"path": node.get("path")}
        )
    elif hasattr(node, "params"):  # runner's UserData
        values = dict(node.params or {})
    else:
        values = {"path": getattr(node, "path", None)}
    found = {}
    for key, value in values.items():
        if (
            isinstance(value, str)
            and value not in ("", ".")
            and "://" not in value
            and Path(value).expanduser().exists()
        ):
            found[f"data.{key}"] = value
    return found


# ------------------------------------------------------------------------------------ archive and manifest
def build(project: ProjectPlan) -> tuple[bytes, dict]:
    """The archive (deterministic: sorted, no times or owners) and its manifest (every file's size and sha256)."""
    buffer = io.BytesIO()
    files = []
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for f in project.files:
            data = f.source.read_bytes()
            info = tarfile.TarInfo(f.name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
            files.append({"path": f.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    manifest = {
        "files": files,
        "bytes": sum(f["bytes"] for f in files),
        "modules": project.modules,
        "config_dirs": project.config_dirs,
        "data": project.data,
        "pythonpath": project.pythonpath,
    }
    return buffer.getvalue(), manifest


def unpack(archive: bytes, manifest: dict, dest: Path) -> None:
    """Unpack into `dest`, refusing members outside it and files whose sha256 is not the manifest's."""
    expected = {f["path"]: f["sha256"] for f in manifest["files"]}
    dest.mkdir(parents=True, exist_ok=True)
    found: set[str] = set()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if not member.isfile() or not _under(target, dest) or member.name not in expected:
                raise StagingError(f"the staged project holds {member.name!r}, which its manifest does not list")
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            if hashlib.sha256(data).hexdigest() != expected[member.name]:
                raise StagingError(f"the staged file {member.name} does not match its sha256 in {MANIFEST}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            found.add(member.name)
    missing = sorted(set(expected) - found)
    if missing:
        raise StagingError(f"the staged project lacks {', '.join(missing[:5])} listed in {MANIFEST}")


def manifest_bytes(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
