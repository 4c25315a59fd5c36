#!/usr/bin/env bash
# Added latency of each inbound API (chat, Messages, Responses, embeddings) at c=1. See bench/endpoints.py.
#   bench/endpoints.sh [--rounds 2000] [--no-write]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || { echo "no virtualenv at .venv: run 'make run' or set PYTHON" >&2; exit 2; }
"$PY" -c "import httptools, uvloop" 2>/dev/null || "$PY" -m pip install -q -r bench/requirements.txt
exec "$PY" bench/endpoints.py "$@"
