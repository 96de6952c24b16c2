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
           "$VENV/bin/python" -m pip install --disable-pip-version-check --no-compile -c "$ROOT/constraints.txt" -e "$SPEC"; } >"$LOG" 2>&1; then
        tail -40 "$LOG" >&2
        echo "[tfrun] set-up failed; full log: $LOG" >&2
        return 1 2>/dev/null || exit 1
    fi
    # Everything as bytecode, once per set-up, on every core: pip would compile the installed packages one file
    # at a time (about half the set-up's CPU, TensorFlow alone thousands of files), and an editable install leaves
    # tfrun's own modules uncompiled. Where PYTHONDONTWRITEBYTECODE is set (containers, CI images) every process
    # would otherwise compile them again, the runner and each TensorFlow child alike (a later edit is compiled on
    # import). A file that does not compile (a package's Python 2 example) is skipped, as pip skips it.
    SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
    "$VENV/bin/python" -m compileall -q -j 0 "$SITE" "$ROOT/runner" "$ROOT/tasks" "$ROOT/conf" "$ROOT/tests" \
        >>"$LOG" 2>&1 || echo "[tfrun] note: some files did not compile to bytecode (listed in $LOG)" >>"$LOG"
    echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
