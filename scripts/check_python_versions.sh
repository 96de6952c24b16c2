#!/usr/bin/env bash
# Which Python versions can install tfrun's pinned set? Only 3.11 runs the tests here, so for each
# 3.X this resolves pyproject.toml's dependencies with every extra under constraints.txt, against
# PyPI, as `pip install` would for a user: with that version's own interpreter (found on PATH or in
# pyenv; pip's --python-version would evaluate environment markers for the wrong Python) and a dry
# run, so nothing is installed. A version passes when everything resolves from wheels, except the
# sdists listed in SDISTS_OK (each checked by hand, reason beside it). Needs the network (PyPI);
# 10-30 s per version. The table goes to stdout and to scripts/python_versions.txt, which
# tests/unit/test_python_versions.py holds pyproject's requires-python and scripts/pick_python.sh to.
#
#   scripts/check_python_versions.sh [3.10 3.11 3.12 3.13]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${TFRUN_PYTHON_VERSIONS_FILE:-$ROOT/scripts/python_versions.txt}"
EXTRAS="test,tflite,serving,sweep,cloud"
# name[@version]: sdists that are fine to build (for every version, or for the one given)
SDISTS_OK=(
    "antlr4-python3-runtime"  # hydra-core's parser runtime: 4.9.3 is published as an sdist only, pure Python
)
VERSIONS=("$@")
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(3.10 3.11 3.12 3.13)
HOST_PY="$ROOT/.venv/bin/python"  # reads pyproject (tomllib: 3.11+) and pip's reports
[ -x "$HOST_PY" ] || HOST_PY="$(command -v python3)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# pyproject's requirements (dependencies + the extras), one a line: the project itself is not
# installed, so its own requires-python (the thing being decided) takes no part.
"$HOST_PY" - "$ROOT/pyproject.toml" "$EXTRAS" >"$WORK/requirements.txt" <<'EOF'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
extras = project.get("optional-dependencies", {})
for req in project["dependencies"] + [r for name in sys.argv[2].split(",") for r in extras[name]]:
    print(req)
EOF

interpreter() {  # a python3.X that really runs (a pyenv shim of an unselected version does not)
    local v="$1" candidate
    for candidate in "python$v" "$(pyenv root 2>/dev/null)"/versions/"$v".*/bin/"python$v"; do
        if "$candidate" -c "import sys; sys.exit('%d.%d' % sys.version_info[:2] != '$v')" >/dev/null 2>&1; then
            command -v "$candidate"; return 0
        fi
    done
    return 1
}

pip_for() {  # PY VERSION ARGS...: a dry-run install with that interpreter, PyPI only, no local config
    local py="$1"; shift
    "$py" -m pip install --isolated --disable-pip-version-check --dry-run --ignore-installed \
        --index-url https://pypi.org/simple "$@"
}

verdict() {  # VERSION REPORT: "yes|no  N packages ..." from pip's JSON report
    "$HOST_PY" - "$1" "$2" "$ROOT/constraints.txt" "${SDISTS_OK[@]}" <<'EOF'
import json, re, sys
version, report, constraints, allowed = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
def norm(name): return re.sub(r"[-_.]+", "-", name).lower()
pins = {}
for line in open(constraints):
    line = line.split("#")[0].strip()
    if "==" in line:
        name, _, pinned = line.partition("==")
        pins[norm(name)] = pinned.split(";")[0].strip()
ok = {norm(a.partition("@")[0]) for a in allowed if a.partition("@")[2] in ("", version)}
installs = json.load(open(report))["install"]
got = {norm(i["metadata"]["name"]): i["metadata"]["version"] for i in installs}
sdists = sorted(norm(i["metadata"]["name"]) for i in installs
                if not i["download_info"]["url"].split("#")[0].endswith(".whl"))
tools = {"pip", "setuptools", "wheel"}  # pip freeze leaves packaging tools out of constraints.txt
loose = sorted(f"{n}=={v}" for n, v in got.items() if pins.get(n) != v and n not in tools)
bad = [s for s in sdists if s not in ok]
detail = f"{len(got)} packages"
detail += ", all pinned" if not loose else ", NOT pinned: " + " ".join(loose)
detail += "; wheels only" if not sdists else "; built from sdist: " + " ".join(
    f"{s}=={got[s]}" + ("" if s in ok else " (not in SDISTS_OK)") for s in sdists)
print(("no   " if bad or loose else "yes  ") + detail)
EOF
}

why_not() {  # PY LOG: pip's reason, and for a pin it could not meet, the versions this Python can get
    local py="$1" log="$2" pin reason
    reason="$(grep -A4 -m1 'conflict is caused by' "$log" | tail -n +2 | grep -v -E '^\s*$|^To fix' |
              tr -s ' \n' ' ' || true)"
    pin="$(grep -o -m1 -E 'requested \(constraint\) [^ ]+==[^ ]+' "$log" | cut -d' ' -f3 || true)"
    if [ -n "$pin" ]; then
        reason="$pin: $(pip_for "$py" --no-deps "$pin" 2>&1 | grep -o -m1 -E '\(from versions: .*\)|No matching.*' |
                        sed -E 's/\(from versions: (.*, )?([^,]+)\)/no file for this Python (newest it can get: \2)/')"
    fi
    echo "${reason:-$(grep -m1 '^ERROR' "$log" || tail -1 "$log")}"
}

{
    echo "# scripts/check_python_versions.sh $(date -u +%Y-%m-%d), $(uname -s | tr '[:upper:]' '[:lower:]')" \
         "$(uname -m), PyPI, pyproject.toml [$EXTRAS] + constraints.txt"
    echo "# version  resolves  detail"
} | tee "$WORK/table"
for v in "${VERSIONS[@]}"; do
    if ! PY="$(interpreter "$v")"; then
        line="$v  unknown  no python$v on PATH or in pyenv"
    elif pip_for "$PY" --report "$WORK/report-$v.json" -c "$ROOT/constraints.txt" -r "$WORK/requirements.txt" \
            >"$WORK/pip-$v.log" 2>&1; then
        line="$v  $(verdict "$v" "$WORK/report-$v.json")"
    else
        line="$v  no   $(why_not "$PY" "$WORK/pip-$v.log")"
    fi
    echo "$line" | tee -a "$WORK/table"
done
cp "$WORK/table" "$OUT"
echo "wrote $OUT" >&2
