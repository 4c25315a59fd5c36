#!/usr/bin/env bash
# One command: fake upstream + gateway + measurements + BENCHMARKS.md. See bench/README.md.
#   bench/run.sh --quick            # ~5 minutes (60 s soak)
#   bench/run.sh                    # ~20 minutes (10-minute soak)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || { echo "no virtualenv at .venv: run 'make run' or set PYTHON" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
"$PY" -c "import httptools, uvloop" 2>/dev/null || "$PY" -m pip install -q -r bench/requirements.txt
exec "$PY" bench/run.py "$@"
