#!/usr/bin/env bash
# Load test (bench/load_test.py): 100 concurrent users, 1,000 requests (--long: 10,000),
# half streamed, against a fake provider with model-like latency; every stage on.
#   bench/load_test.sh [--long] [--write-section]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || { echo "no virtualenv at .venv: run 'make run' or set PYTHON" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "redis-server is needed: apt-get install redis-server" >&2; exit 2; }
command -v taskset >/dev/null || { echo "taskset is needed (util-linux)" >&2; exit 2; }
exec "$PY" bench/load_test.py "$@"
