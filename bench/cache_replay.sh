#!/usr/bin/env bash
# Replay the shipped Q&A workload through a caching route. See bench/cache_replay.py.
#   bench/cache_replay.sh [--mode semantic|exact] [--no-write]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || { echo "no virtualenv at .venv: run 'make run' or set PYTHON" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
"$PY" -c "import httptools, uvloop" 2>/dev/null || "$PY" -m pip install -q -r bench/requirements.txt
exec "$PY" bench/cache_replay.py "$@"
