# Source me: create or refresh .venv from pyproject.toml + constraints.txt, then use it.
# Usage: . scripts/env.sh [EXTRAS]     (EXTRAS e.g. "test")
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-}"
VENV="${TFRUN_VENV:-$ROOT/.venv}"

. "$ROOT/scripts/pick_python.sh"  # SUPPORTED_PYTHONS and pick_python

UV_VERSION=0.9.18  # the installer's own pin (constraints.txt pins what it installs)
STAMP="$VENV/.tfrun-env"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -c1-16) extras=[$EXTRAS]"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    PY="$(pick_python)"
    echo "[tfrun] setting up $(basename "$VENV") (pinned by constraints.txt; first time takes a few minutes)" >&2
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    SPEC="$ROOT"; [ -n "$EXTRAS" ] && SPEC="$ROOT[$EXTRAS]"
    LOG="$VENV/install.log"
    # The installer is uv (pinned below), which fetches and unpacks the pinned wheels in parallel: ~3x faster than
    # pip for this set (BENCHMARKS.md, "Set-up"). It takes the same pins and reads PyPI, or UV_INDEX_URL /
    # UV_EXTRA_INDEX_URL for a mirror (uv does not read pip's configuration files).
    if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check -q --upgrade "pip>=24" "uv==$UV_VERSION" &&
           "$VENV/bin/uv" pip install --python "$VENV/bin/python" -c "$ROOT/constraints.txt" -e "$SPEC"; } >"$LOG" 2>&1; then
        tail -40 "$LOG" >&2
        echo "[tfrun] set-up failed; full log: $LOG" >&2
        return 1 2>/dev/null || exit 1
    fi
    # Everything as bytecode, once per set-up, on every core: pip would compile the installed packages one file
    # at a time (about half the set-up's CPU, TensorFlow alone thousands of files), and an editable install leaves
    # tfrun's own modules uncompiled. Where PYTHONDONTWRITEBYTECODE is set (containers, CI images) every process
    # would otherwise compile them again, the runner and each TensorFlow child alike (a later edit is compiled on
    # import). A file that does not compile (a package's Python 2 example) is skipped, as pip skips it. Left out:
    # the packages' own test suites and the installers, which no tfrun process imports (a sixth of the files).
    SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
    NOT_IMPORTED='/site-packages/(pip/|uv/|.*/tests/|.*_test\.py$)'
    "$VENV/bin/python" -m compileall -q -j 0 -x "$NOT_IMPORTED" "$SITE" "$ROOT/runner" "$ROOT/tasks" "$ROOT/conf" \
        "$ROOT/tests" \
        >>"$LOG" 2>&1 || echo "[tfrun] note: some files did not compile to bytecode (listed in $LOG)" >>"$LOG"
    echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
