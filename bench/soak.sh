#!/usr/bin/env bash
# Soak under faults (bench/soak.py): two gateways on a scratch PostgreSQL database and
# their own redis-server, mixed traffic, SIGKILLs, upstream faults and Redis restarts.
#   bench/soak.sh --minutes 10
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || { echo "no virtualenv at .venv: run 'make run' or set PYTHON" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "redis-server is needed: apt-get install redis-server" >&2; exit 2; }
"$PY" -c "import httptools, uvloop" 2>/dev/null || "$PY" -m pip install -q -r bench/requirements.txt
exec "$PY" bench/soak.py "$@"
