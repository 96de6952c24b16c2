# Sourced by scripts/env.sh: which Python a new environment is made with.
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
