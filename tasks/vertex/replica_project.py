"""Inside a Vertex replica: unpack the user's staged project and work from its root, before Hydra starts.

The submitting run staged the project (tfrun.tasks.core.project_files) and named its archive in the job's
environment (TFRUN_PROJECT). The replica has nothing else of the user's: it downloads the archive and
its manifest from Cloud Storage, checks every file's sha256, unpacks into ./project and makes that the
working directory, so `--config-dir conf`, relative data paths and `import winelab` mean what they
meant on the submitting machine. A restarted replica unpacks again into a fresh folder.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from tfrun.tasks.core import project_files

FOLDER = "project"


def enter(uri: str) -> Path:
    """Fetch, check and unpack the project at `uri`; chdir into it and put it first on the import path."""
    from tfrun.tasks import gcs

    client = gcs.storage_client_from_env()
    archive = gcs.read_bytes(client, uri)
    manifest = json.loads(gcs.read_bytes(client, uri.rsplit("/", 1)[0] + "/" + project_files.MANIFEST))
    root = Path.cwd() / FOLDER
    if root.exists():
        shutil.rmtree(root)
    project_files.unpack(archive, manifest, root)
    os.chdir(root)
    paths = [str(root)] + ([str(root / project_files.PYTHONPATH_DIR)] if manifest.get("pythonpath") else [])
    sys.path[:0] = paths
    os.environ["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [os.environ.get("PYTHONPATH")] if p])
    print(
        f"[tfrun] project {uri}: {len(manifest['files'])} file(s), sha256-checked, unpacked into {FOLDER}/", flush=True
    )
    return root
