"""This project as a wheel for a Vertex job's replicas, with the versions this machine runs pinned.

The wheel is written directly (a wheel is a zip with a `.dist-info`; PEP 427), from the same files the
running tfrun imports, so the replicas run exactly this code. Its Requires-Dist pins every package of
the replicas' closure (tfrun's own dependencies, google-cloud-storage, cloudml-hypertune, and theirs) to
the version installed here, which is constraints.txt's. On Python 3.11+ the whole set is pinned; the
prebuilt training images run Python 3.10, where some pins have no release (scikit-learn 1.9 needs 3.11),
so there TensorFlow, tf-keras and tensorboard stay pinned (the numbers a model computes) and the rest
take pyproject's ranges. Pure Python, no build backend: the same inputs give the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as metadata
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tfrun.tasks.core.paths import API_ROOT, PACKAGES, SOURCE_ROOT

DIST = "tfrun"
REPLICA_EXTRAS = ("google-cloud-storage", "cloudml-hypertune")  # what a replica needs beyond tfrun's own
EXACT_EVERYWHERE = ("tensorflow", "tf-keras", "tensorboard")  # pinned on every Python: they make the numbers
PINNED_PYTHON = '; python_version >= "3.11"'
FALLBACK_PYTHON = '; python_version < "3.11"'
ZIP_DATE = (2026, 1, 1, 0, 0, 0)  # fixed timestamps: the wheel's bytes depend on its contents only
SKIP = ("__pycache__",)


@dataclass
class Wheel:
    filename: str
    data: bytes
    requires: list[str]
    files: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def source_files() -> Iterator[tuple[str, Path]]:
    """(path in the wheel, file) for every module and config of the running tfrun, laid out as installed:
    `tfrun/__init__.py`, `tfrun/runner/…`, `tfrun/tasks/…`, `tfrun/conf/…`."""
    roots = [("tfrun", API_ROOT)] + [(f"tfrun/{folder}", SOURCE_ROOT / folder) for folder in PACKAGES]
    for prefix, root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not any(part in SKIP for part in path.parts) and path.suffix in (".py", ".yaml"):
                if prefix == "tfrun" and path.relative_to(root).parts[0] in PACKAGES:
                    continue  # an installed tfrun: its folders come from their own roots
                yield f"{prefix}/{path.relative_to(root).as_posix()}", path


def closure(roots: list[str]) -> dict[str, str]:
    """Installed name -> version for `roots` and everything they need here (markers evaluated here)."""
    from packaging.requirements import Requirement

    found: dict[str, str] = {}
    todo = [(Requirement(r), ()) for r in roots]
    while todo:
        req, extras = todo.pop()
        key = _canonical(req.name)
        environment = {"extra": extras[0]} if extras else {"extra": ""}
        if req.marker is not None and not req.marker.evaluate(environment):
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            raise RuntimeError(
                f"{req.name} is not installed here, so its version cannot be pinned for the "
                "replicas: install tfrun with its cloud extra (scripts/env.sh does)"
            ) from None
        wanted = tuple(sorted(req.extras))
        if key in found and not wanted:
            continue
        found[key] = dist.version
        for line in dist.requires or []:
            child = Requirement(line)
            if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in (*wanted, "")):
                todo.append(
                    (
                        child,
                        tuple(e for e in wanted if child.marker is not None and child.marker.evaluate({"extra": e})),
                    )
                )
    return found


def own_requirements() -> list[str]:
    """tfrun's own Requires-Dist (no extras)."""
    return [r for r in (metadata.distribution(DIST).requires or []) if "extra ==" not in r]


def requirements() -> list[str]:
    """The wheel's Requires-Dist: exact pins on 3.11+, pyproject's ranges (TensorFlow still exact) below."""
    from packaging.requirements import Requirement

    own = own_requirements()
    pins = closure(own + list(REPLICA_EXTRAS))
    lines = [
        f"{name}=={version}{PINNED_PYTHON}"
        for name, version in sorted(pins.items())
        if name not in EXACT_EVERYWHERE and name != DIST
    ]
    lines += [f"{name}=={pins[name]}" for name in EXACT_EVERYWHERE if name in pins]
    for line in own + list(REPLICA_EXTRAS):
        req = Requirement(line)
        if _canonical(req.name) not in EXACT_EVERYWHERE:
            lines.append(f"{req.name}{req.specifier}{FALLBACK_PYTHON}")
    return lines


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def wheel_name() -> str:
    return f"{DIST}-{metadata.version(DIST)}-py3-none-any.whl"


def build_wheel(user_requires: tuple[str, ...] = ()) -> Wheel:
    """tfrun-<version>-py3-none-any.whl of the running code, in memory.

    `user_requires` (cluster.requirements) join its Requires-Dist, so the pip install of the prebuilt
    image resolves them together with tfrun's pins: a requirement that conflicts fails the install.
    """
    version = metadata.version(DIST)
    requires = requirements() + list(user_requires)
    info = f"{DIST}-{version}.dist-info"
    meta = (
        "\n".join(
            [
                "Metadata-Version: 2.1",
                f"Name: {DIST}",
                f"Version: {version}",
                "Summary: tfrun, packaged for a Vertex AI job's replicas",
                "Requires-Python: >=3.10",
                *(f"Requires-Dist: {r}" for r in requires),
            ]
        )
        + "\n"
    )
    entries = (
        "[console_scripts]\ntfrun = tfrun.runner.cli:main\ntfrun-records = tfrun.runner.records_cli:main\n"
        "tfrun-serve = tfrun.runner.serve_cli:main\n"
    )
    wheel_file = "Wheel-Version: 1.0\nGenerator: tfrun\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    members = [(name, path.read_bytes()) for name, path in source_files()]
    members += [
        (f"{info}/METADATA", meta.encode()),
        (f"{info}/WHEEL", wheel_file.encode()),
        (f"{info}/entry_points.txt", entries.encode()),
        (f"{info}/top_level.txt", b"tfrun\n"),
    ]
    record = [_record_line(name, data) for name, data in members] + [f"{info}/RECORD,,"]
    members.append((f"{info}/RECORD", ("\n".join(record) + "\n").encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            item = zipfile.ZipInfo(name, ZIP_DATE)
            item.external_attr = 0o644 << 16
            item.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(item, data)
    return Wheel(wheel_name(), buffer.getvalue(), requires, len(members))
