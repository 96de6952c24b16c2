"""Packaging's one job that pyproject.toml cannot say: the repository keeps `runner/`, `tasks/` and `conf/` at
its top level, and they install as `tfrun.runner`, `tfrun.tasks` and `tfrun.conf` (one import name, `tfrun`).
Every folder under them is a package, found by pattern, so a new module or config group needs no entry here."""

from setuptools import find_namespace_packages, setup

FOLDERS = {"tfrun": "tfrun", "tfrun.runner": "runner", "tfrun.tasks": "tasks", "tfrun.conf": "conf"}
SKIP = ["*__pycache__*", "*node_modules*", "*.egg-info*"]

packages = []
for name, folder in FOLDERS.items():
    packages += [name] + [f"{name}.{sub}" for sub in find_namespace_packages(folder, exclude=SKIP)]

setup(packages=packages, package_dir=FOLDERS)
