#!/usr/bin/env bash
# What scaled-out TF Serving needs beyond pip, installed here when missing; run by scripts/test, and once by hand:
#   - Debian's nginx: the load balancer in front of target=tfserving's replicas (target.replicas, target.split)
#   - Debian's prometheus: the metrics server the serving metrics are scraped by
# A tool that cannot be installed is an error naming it and the command that installs it (never a skip).
# Outside CI a tool that cannot be installed (no root, no apt) is a warning: its tests then fail, naming it.
set -euo pipefail
fail() {
    if [ "${CI:-}" = "true" ]; then echo "[tfrun] serving set-up: $*" >&2; exit 1; fi
    echo "[tfrun] serving set-up: warning: $*" >&2
}
has() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
as_root_apt() {  # apt-get install PACKAGES, when this shell may
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null
    else
        return 1
    fi
}

missing=()
for tool in nginx prometheus; do
    has "$tool" || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "[tfrun] serving set-up: apt-get install ${missing[*]}" >&2
    as_root_apt "${missing[@]}" || fail "${missing[*]} missing and not installable here: apt-get install ${missing[*]}"
fi
