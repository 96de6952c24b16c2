#!/usr/bin/env bash
# A separate environment for `mlflow server` / `mlflow ui` (the tracking server the tests start, and the UI for
# the local store): MLflow's server code needs SQLAlchemy 2, while the sweep extra's Optuna 2.10 (the Hydra
# Optuna sweeper pins optuna<3) needs SQLAlchemy 1.4 in tfrun's own environment. Same MLflow, pinned.
#   scripts/mlflow_server_setup.sh && .venv/mlflow-server/bin/mlflow ui    # opens ./mlflow.db
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TFRUN_VENV:-$ROOT/.venv}"
SERVER="$VENV/mlflow-server"
PINS="$ROOT/scripts/mlflow_server_constraints.txt"
WANT="$(sha256sum "$PINS" | cut -c1-16)"
if [ "$(cat "$SERVER/.tfrun-pins" 2>/dev/null)" != "$WANT" ]; then
    echo "[tfrun] setting up $(basename "$VENV")/mlflow-server (mlflow server / ui)" >&2
    rm -rf "$SERVER"
    . "$ROOT/scripts/pick_python.sh"  # not .venv's python: scripts/test builds this beside .venv, at the same time
    "$(pick_python)" -m venv "$SERVER"
    "$SERVER/bin/python" -m pip install --disable-pip-version-check -q -c "$PINS" mlflow \
        || { echo "[tfrun] mlflow server set-up failed ($PINS)" >&2; exit 1; }
    echo "$WANT" > "$SERVER/.tfrun-pins"
fi
