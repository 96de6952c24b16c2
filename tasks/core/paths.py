"""Where tfrun's own files are: the source root and the packaged configs (one place, not one per module)."""

from __future__ import annotations

from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding runner/ and tasks/
PACKAGES = ("runner", "tasks")  # what the Vertex wheel ships and what counts as tfrun's own code
_SOURCE_CONF = SOURCE_ROOT / "conf"
# Hydra's config_path for the primary configs: a source checkout uses conf/ in place; an installed tfrun
# ships it as the package runner.conf.
CONFIG_PATH = str(_SOURCE_CONF) if (_SOURCE_CONF / "config.yaml").is_file() else "pkg://runner.conf"
