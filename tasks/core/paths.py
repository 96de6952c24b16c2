"""Where tfrun's own files are: the source root and the packaged configs (one place, not one per module)."""

from __future__ import annotations

from pathlib import Path

# The folder holding runner/, tasks/ and conf/: a source checkout's root, or an installed tfrun's package folder
# (the repository keeps them at its top level; installed, they are tfrun.runner, tfrun.tasks and tfrun.conf).
SOURCE_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("runner", "tasks", "conf")  # tfrun's own folders under SOURCE_ROOT, shipped as tfrun.<folder>
_SOURCE_CONF = SOURCE_ROOT / "conf"
# Hydra's config_path for the primary configs: conf/ in place (a checkout or an installed package folder), else
# the package tfrun.conf.
CONFIG_PATH = str(_SOURCE_CONF) if (_SOURCE_CONF / "config.yaml").is_file() else "pkg://tfrun.conf"
# tfrun/__init__.py (the Python API): its own folder in a checkout, SOURCE_ROOT itself once installed.
API_ROOT = SOURCE_ROOT / "tfrun" if (SOURCE_ROOT / "tfrun" / "__init__.py").is_file() else SOURCE_ROOT
