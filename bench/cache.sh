#!/usr/bin/env bash
# The answer cache at the gateway: hit/miss latency at c=1, throughput at c=32. See bench/cache.py.
#   bench/cache.sh [--rounds 2000] [--c32-rounds 5] [--no-write]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || { echo "no virtualenv at .venv: run 'make run' or set PYTHON" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
"$PY" -c "import httptools, uvloop" 2>/dev/null || "$PY" -m pip install -q -r bench/requirements.txt
exec "$PY" bench/cache.py "$@"
