#!/usr/bin/env bash
# What target=web needs beyond pip, installed (or refreshed) here; run by scripts/test, and once by hand:
#   - the npm packages of tasks/web/js (TensorFlow.js, its wasm backend, puppeteer-core): npm ci from the lock file
#   - the tensorflowjs converter in <venv>/tfjs-converter: pip --no-deps --target, so the pinned set is untouched
#     (tensorflowjs' own dependencies would pull an older TensorFlow; see tasks/web/converter.py)
#   - Debian's chromium (apt-get install chromium, as root), the browser the checks drive
# A tool that cannot be installed is an error naming it and the command that installs it (never a skip).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TFRUN_VENV:-$ROOT/.venv}"
JS="$ROOT/tasks/web/js"
BROWSER="${TFRUN_BROWSER:-/usr/bin/chromium}"
fail() { echo "[tfrun] web set-up: $*" >&2; exit 1; }
as_root_apt() {  # apt-get install PACKAGES, when this shell may
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null
    else
        return 1
    fi
}

if ! command -v npm >/dev/null 2>&1; then
    as_root_apt nodejs npm || fail "Node.js and npm are missing: apt-get install nodejs npm"
fi
STAMP="$JS/node_modules/.tfrun-lock"
WANT="$(sha256sum "$JS/package-lock.json" | cut -c1-16)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    echo "[tfrun] web set-up: npm ci in tasks/web/js" >&2
    (cd "$JS" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || fail "npm ci failed in tasks/web/js"
    echo "$WANT" > "$STAMP"
fi

if [ ! -x "$BROWSER" ]; then
    as_root_apt chromium fonts-dejavu-core \
        || fail "no browser at $BROWSER: apt-get install chromium (or set TFRUN_BROWSER and target.browser)"
fi

# `web_setup.sh npm` stops here: the npm packages and the browser need no environment, so scripts/test fetches them
# while pip installs
[ "${1:-}" = npm ] && exit 0

[ -x "$VENV/bin/python" ] || fail "no environment at $VENV: run scripts/env.sh (or scripts/test) first"

CONVERTER="$VENV/tfjs-converter"
REQS="$ROOT/tasks/web/converter-requirements.txt"
WANT="$(sha256sum "$REQS" | cut -c1-16)"
if [ "$(cat "$CONVERTER/.tfrun-reqs" 2>/dev/null)" != "$WANT" ]; then
    echo "[tfrun] web set-up: the tensorflowjs converter into $(basename "$VENV")/tfjs-converter" >&2
    rm -rf "$CONVERTER"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q --no-deps --target "$CONVERTER" -r "$REQS" \
        || fail "pip could not install the converter ($REQS)"
    echo "$WANT" > "$CONVERTER/.tfrun-reqs"
fi
