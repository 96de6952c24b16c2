# Source me: create or refresh .venv from pyproject.toml + constraints.txt, then use it.
# Usage: . scripts/env.sh [EXTRAS]     (EXTRAS e.g. "test")
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-}"
VENV="${TFRUN_VENV:-$ROOT/.venv}"

. "$ROOT/scripts/pick_python.sh"  # SUPPORTED_PYTHONS and pick_python

STAMP="$VENV/.tfrun-env"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -c1-16) extras=[$EXTRAS]"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    PY="$(pick_python)"
    echo "[tfrun] setting up $(basename "$VENV") (pinned by constraints.txt; first time takes a few minutes)" >&2
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    SPEC="$ROOT"; [ -n "$EXTRAS" ] && SPEC="$ROOT[$EXTRAS]"
    LOG="$VENV/install.log"
    if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade "pip>=24" &&
           "$VENV/bin/python" -m pip install --disable-pip-version-check -c "$ROOT/constraints.txt" -e "$SPEC"; } >"$LOG" 2>&1; then
        tail -40 "$LOG" >&2
        echo "[tfrun] set-up failed; full log: $LOG" >&2
        return 1 2>/dev/null || exit 1
    fi
    # tfrun's own modules as bytecode: an editable install has none until a first import writes them, and where
    # PYTHONDONTWRITEBYTECODE is set (containers, CI images) every process would compile them again, the runner
    # and each TensorFlow child alike. Once per set-up, not per command (a later edit is compiled on import).
    "$VENV/bin/python" -m compileall -q "$ROOT/runner" "$ROOT/tasks" "$ROOT/conf" "$ROOT/tests" >/dev/null ||
        echo "[tfrun] warning: could not compile tfrun's modules to bytecode (runs still work, each compiles them)" >&2
    echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
