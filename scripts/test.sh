#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need, then runs
# every test against SQLite and again against PostgreSQL (127.0.0.1:5432) when it
# is reachable. Extra arguments go to pytest (e.g. scripts/test.sh -k fallback).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
# Browser tests drive Debian's Chromium through Playwright (no browser download).
if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing Debian's chromium for the browser tests =="
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -q chromium >/dev/null || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }
fi
PY=.venv/bin/python
PG_URL=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
unset DATABASE_URL REDIS_URL

# The import direction (.importlinter; docs/architecture.md): under a second, and a
# wrong arrow fails the run before any test starts.
echo "== import contracts =="
.venv/bin/lint-imports --no-logo --no-cache

echo "== tests on SQLite =="
GATEWAY_VAR_DIR=var/test-sqlite $PY -m pytest "$@"

if $PY - "$PG_URL" <<'PYEOF' 2>/dev/null
import sys, psycopg
psycopg.connect(sys.argv[1].replace("postgres://", "postgresql://"), connect_timeout=3).close()
PYEOF
then
  echo "== tests on PostgreSQL ($PG_URL) =="
  DATABASE_URL=$PG_URL SECRET_KEY=test-only-secret-key GATEWAY_VAR_DIR=var/test-postgres $PY -m pytest "$@"
else
  echo "!! PostgreSQL at $PG_URL is not reachable: the PostgreSQL run was SKIPPED" >&2
  [ -n "${REQUIRE_POSTGRES:-}" ] && exit 1
fi
