# Source me: create or refresh .venv from pyproject.toml + constraints.txt, then use it.
# Usage: . scripts/env.sh [EXTRAS]     (EXTRAS e.g. "test")
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-}"
VENV="${TFRUN_VENV:-$ROOT/.venv}"

# The Pythons the pinned set installs on, newest first: keep equal to pyproject's requires-python and to
# scripts/python_versions.txt (written by scripts/check_python_versions.sh; a unit test compares them).
SUPPORTED_PYTHONS="3.13 3.12 3.11"

pick_python() {  # the newest supported python3.X on PATH, else python3 / python if supported
    local candidate
    for candidate in $(printf 'python%s ' $SUPPORTED_PYTHONS) python3 python; do
        if command -v "$candidate" >/dev/null 2>&1 &&  # run it: a pyenv shim may exist but not run
           "$candidate" -c "import sys; sys.exit('%d.%d' % sys.version_info[:2] not in '$SUPPORTED_PYTHONS'.split())" \
               2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    echo "tfrun needs Python ${SUPPORTED_PYTHONS// /, } (python3.X or python3 on PATH)" >&2
    return 1
}

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
