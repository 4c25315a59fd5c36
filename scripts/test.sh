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
# tests/test_prometheus_server.py runs Debian's Prometheus (and promtool) against a live gateway.
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  echo "== installing Debian's prometheus for the dashboard and alert-rule tests =="
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null \
    || { $SUDO apt-get update -q >/dev/null && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null; }
fi
# tests/test_deploy_files.py renders the kustomize base with `kubectl kustomize`:
# Debian's kubernetes-client when no kubectl is installed.
if ! command -v kubectl >/dev/null 2>&1; then
  echo "== installing Debian's kubernetes-client (kubectl) for the deploy-file tests =="
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -q kubernetes-client >/dev/null || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q kubernetes-client >/dev/null; }
fi
PY=.venv/bin/python
# The semantic cache's pgvector backend is tested against the machine's PostgreSQL 15:
# Debian has no pgvector package for bookworm, so its source package (Debian trixie's
# pgvector, fetched with apt into a private list, the system's sources untouched) is built
# against postgresql-server-dev-15 and installed. Skipped when already installed; a failure
# only skips the pgvector tests (they say so loudly).
if [ "$(id -u)" -eq 0 ] && command -v pg_config >/dev/null 2>&1 && [ ! -f /usr/share/postgresql/15/extension/vector.control ] && [ -d /usr/lib/postgresql/15 ]; then
  echo "== installing pgvector into PostgreSQL 15 (source build) =="
  ( set -e
    t0=$(date +%s); work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/lists/partial"
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$work/src.sources"
    apt_opts="-o Dir::Etc::SourceList=$work/src.sources -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$work/lists"
    apt-get install -y -q postgresql-server-dev-15 >/dev/null
    apt-get -q $apt_opts update >/dev/null
    (cd "$work" && apt-get -q $apt_opts source --download-only pgvector >/dev/null 2>&1)
    tar xzf "$work"/pgvector_*.orig.tar.gz -C "$work"
    make -s -C "$work"/pgvector-*/ with_llvm=no PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null
    make -s -C "$work"/pgvector-*/ with_llvm=no PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config install >/dev/null
    echo "   pgvector installed in $(( $(date +%s) - t0 )) s"
  ) || echo "!! pgvector could not be installed: its tests will be SKIPPED" >&2
fi
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
