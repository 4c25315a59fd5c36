#!/usr/bin/env bash
# Install LiteLLM (PyPI) and the Portkey gateway (npm) into /tmp/gw-bench-peers (outside
# the repo), measure them against the same fake upstream, add them to BENCHMARKS.md.
#   bench/compare.sh --quick
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || { echo "no virtualenv at .venv: run 'make run' or set PYTHON" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
"$PY" -c "import httptools, uvloop" 2>/dev/null || "$PY" -m pip install -q -r bench/requirements.txt
exec "$PY" bench/compare.py "$@"
