"""An offline rehearsal of the Vertex AI targets: a GCS emulator and the Vertex test server, together.

    .venv/bin/python -m tests.fakes.rehearsal          (from the repository root; Ctrl-C stops both)

Starts fake-gcs-server and tests.fakes.vertex on 127.0.0.1 (free ports), prints the `cloud.*`
overrides that point tfrun at them, and stops both by PID on Ctrl-C or SIGTERM, then removes its temporary
folder (also when stopped while starting). Nothing leaves this machine; the cloud resources tfrun creates
live only in these two processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, NoReturn

from tests.fakes.gcs import start_emulator
from tests.fakes.vertex.fixture import start_fake_vertex


def _interrupt(_signum: int, _frame: Any) -> NoReturn:
    """SIGTERM stops it as Ctrl-C does: through the same clean-up."""
    raise KeyboardInterrupt


def main() -> int:
    # Until both servers run, Ctrl-C is only noted (a handler, not a signal mask: another thread would take a
    # process-directed signal) and acted on once they have: a KeyboardInterrupt inside subprocess.Popen (its child
    # already forked, its PID not yet returned) would leave that server running with nobody holding its PID.
    noted: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: noted.append(signum))
    work = Path(tempfile.mkdtemp(prefix="tfrun-rehearsal-"))
    try:
        with ExitStack() as running:  # stops whichever servers started, also when starting the other failed
            emulator = start_emulator(work / "gcs")
            running.callback(emulator.stop)
            fake = start_fake_vertex(emulator.url, work / "vertex")
            running.callback(fake.stop)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, _interrupt)
            if noted:
                raise KeyboardInterrupt
            return _serve(emulator, fake, work)
    except KeyboardInterrupt:
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)  # last: after both servers stopped


def _serve(emulator: Any, fake: Any, work: Path) -> int:
    """Print how to use the two servers, then wait for Ctrl-C (or one of them exiting)."""
    overrides = (
        f"cloud=gcp cloud.project=rehearsal cloud.bucket=rehearsal-models cloud.credentials=anonymous "
        f"cloud.api_endpoint={fake.url} cloud.storage_endpoint={emulator.url}"
    )
    print(
        f"GCS emulator  {emulator.url} (pid {emulator.pid})\nVertex server {fake.url} (pid {fake.pid}; "
        f"state: {fake.url}/_fake/state)\nTheir files: {work} (removed when they stop)\n\nIn another shell:\n"
        f"  tfrun target=vertex_endpoint {overrides}\n"
        f"  tfrun target=vertex_batch {overrides}\n\nCtrl-C stops both.",
        flush=True,
    )
    while fake.process.poll() is None and emulator.process.poll() is None:
        time.sleep(0.5)
    print("a service exited by itself", file=sys.stderr)
    return 1


def _exit(code: int) -> NoReturn:
    """Leave with main's code. Python 3.11 run with -m dies by SIGINT at exit, whatever main returned, once a
    KeyboardInterrupt went through code compiled from a string (a dataclass or namedtuple an import was making),
    even though main caught it: seen as exit -2 under load when Ctrl-C could still interrupt the servers' start.
    By now both servers are stopped and the folder is gone, so nothing is left for the interpreter's exit to do."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit(main())
