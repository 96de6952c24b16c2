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
    echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
