#!/usr/bin/env bash
# The whole suite with each process's CPU recorded (BENCHMARKS.md, "Test suite", says what it found):
#   bench/suite_cpu/run.sh OUT_DIR [pytest args]   then   python bench/suite_cpu/analyze.py OUT_DIR
# Installs a .pth hook into .venv for the run and removes it after; timings are a little slower than a plain run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$(mkdir -p "$1" && cd "$1" && pwd)"; shift
cd "$ROOT"
. scripts/env.sh test,tflite,serving,sweep,cloud,mlflow,docs,k8s
SITE="$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
cp bench/suite_cpu/prof_hook.py "$SITE/tfrun_cpu_hook.py"
echo "import tfrun_cpu_hook" > "$SITE/tfrun_cpu_hook.pth"
trap 'rm -f "$SITE/tfrun_cpu_hook.py" "$SITE/tfrun_cpu_hook.pth"; kill -TERM "${SAMPLER:-0}" 2>/dev/null || true' EXIT
rm -f "$OUT/procs.jsonl"
python bench/suite_cpu/sampler.py "$OUT/sampled.jsonl" & SAMPLER=$!
TFRUN_CPU_LOG="$OUT/procs.jsonl" scripts/test "$@" || true
kill -TERM "$SAMPLER"; wait "$SAMPLER" || true; SAMPLER=
