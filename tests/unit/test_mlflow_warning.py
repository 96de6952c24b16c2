"""track=mlflow with a tracking server that does not answer: the run's end prints one whole warning line,
as the docs promise, even with logging set up as Hydra sets it up in the runner (urllib3 logs each retry).
The real MLflow client talks to a closed port on 127.0.0.1; no TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers import command_env, free_port, make_record, requires

pytestmark = requires("mlflow")

SCRIPT = textwrap.dedent("""
    import json, logging, sys
    from pathlib import Path
    from types import SimpleNamespace

    logging.basicConfig(level=logging.INFO)  # as in the runner: Hydra's job logging prints warnings to the console
    from tfrun.runner import tracking

    run_dir = Path(sys.argv[2])
    track = SimpleNamespace(name="mlflow", uri=sys.argv[1], experiment="tfrun", timeout_s=1.0)
    tracking.after_run(track, run_dir, json.loads((run_dir / "record.json").read_text()))
""")


def test_an_unreachable_server_is_one_whole_warning_line(tmp_path: Path):
    (tmp_path / "record.json").write_text(json.dumps(make_record()))
    uri = f"http://127.0.0.1:{free_port()}"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, uri, str(tmp_path)],
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr  # not urllib3's "Retrying (Retry(total=1, ...))" lines as well
    assert lines[0] == (
        f"[tfrun] warning: MLflow logging failed: the tracking server at {uri} did not answer "
        "(Connection refused); the record has everything"
    )
