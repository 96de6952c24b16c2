"""An offline rehearsal of the Vertex AI targets: a GCS emulator and the Vertex test server, together.

    .venv/bin/python -m tests.fakes.rehearsal          (from the repository root; Ctrl-C stops both)

Starts fake-gcs-server and tests.fakes.vertex on 127.0.0.1 (free ports), prints the `cloud.*`
overrides that point tfrun at them, and stops both by PID on Ctrl-C or SIGTERM. Nothing leaves
this machine; the cloud resources tfrun creates live only in these two processes.
"""

from __future__ import annotations

import signal
import sys
import tempfile
import time
from pathlib import Path

from tests.fakes.gcs import start_emulator
from tests.fakes.vertex.fixture import start_fake_vertex


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="tfrun-rehearsal-"))
    emulator = start_emulator(work / "gcs")
    fake = start_fake_vertex(emulator.url, work / "vertex")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    overrides = (
        f"cloud=gcp cloud.project=rehearsal cloud.bucket=rehearsal-models cloud.credentials=anonymous "
        f"cloud.api_endpoint={fake.url} cloud.storage_endpoint={emulator.url}"
    )
    print(
        f"GCS emulator  {emulator.url} (pid {emulator.pid})\nVertex server {fake.url} (pid {fake.pid}; "
        f"state: {fake.url}/_fake/state)\n\nIn another shell:\n"
        f"  tfrun target=vertex_endpoint {overrides}\n"
        f"  tfrun target=vertex_batch {overrides}\n\nCtrl-C stops both.",
        flush=True,
    )
    try:
        while fake.process.poll() is None and emulator.process.poll() is None:
            time.sleep(0.5)
        print("a service exited by itself", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        fake.stop()
        emulator.stop()


if __name__ == "__main__":
    sys.exit(main())
