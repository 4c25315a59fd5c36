"""Scratch PostgreSQL databases for the soak and the load test, created from a migrated template.

Migrating a fresh database takes a minute or more on a busy 2-core machine; a copy of a
template (`CREATE DATABASE … TEMPLATE …`) takes a second. The template is named after a
hash of every migration file, so a new migration makes a new one (the old ones are
dropped); it is built under a temporary name and renamed when complete, so a run that
dies half way never leaves a half-migrated template behind.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from run import PG_ADMIN_URL, Gateway

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "gw_bench_tpl_"


def _sql(sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def migrations_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def attach(gw: Gateway, name: str, log=print) -> None:
    """Give `gw` (made with postgres=False) a scratch database `name`, copied from the
    template (built first if missing); gw.cleanup() drops it."""
    template = PREFIX + migrations_hash()
    existing = {r[0] for r in _sql(f"SELECT datname FROM pg_database WHERE datname LIKE '{PREFIX}%'")}
    if template not in existing:
        building = f"{template}_{os.getpid()}"
        log(f"building the template database {template} (migrate, once per set of migrations)")
        _sql(f"CREATE DATABASE {building}")
        gw.env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{building}"
        try:
            gw.manage("migrate", "--noinput")
            import psycopg

            try:
                _sql(f"ALTER DATABASE {building} RENAME TO {template}")
            except psycopg.errors.DuplicateDatabase:  # a concurrent run built it first
                _sql(f"DROP DATABASE IF EXISTS {building} WITH (FORCE)")
        except Exception:
            _sql(f"DROP DATABASE IF EXISTS {building} WITH (FORCE)")
            raise
        for old in existing:  # complete templates of older migration sets (not others' builds)
            if len(old) == len(template):
                _sql(f"DROP DATABASE IF EXISTS {old} WITH (FORCE)")
    _sql(f"CREATE DATABASE {name} TEMPLATE {template}")
    gw.pg_db = name
    gw.env["DATABASE_URL"] = gw.db_url = f"postgres://postgres@127.0.0.1:5432/{name}"


CONFIGURE = """
import io, json, sys
from django.core.management import call_command
call_command("gateway_import", sys.argv[-2])
keys = {}
for spec in json.loads(sys.argv[-1]):
    out = io.StringIO()
    call_command("issue_key", *spec["args"], stdout=out)
    keys[spec["name"]] = out.getvalue().strip()
print("KEYS=" + json.dumps(keys))
"""


def configure(gw: Gateway, config: Path, keys: dict[str, list[str]]) -> dict[str, str]:
    """Import `config` and issue the keys ({name: issue_key arguments}) in one Django
    process (each manage.py start costs seconds on a busy machine); returns {name: secret}."""
    import json
    import subprocess
    import sys

    specs = json.dumps([{"name": n, "args": a} for n, a in keys.items()])
    proc = subprocess.run([sys.executable, "-c", "import django, os, sys; os.environ.setdefault("
                           "'DJANGO_SETTINGS_MODULE', 'gateway_project.settings'); django.setup(); "
                           f"exec({CONFIGURE!r})", str(config), specs],
                          cwd=ROOT, env=gw.env, capture_output=True, text=True, timeout=300)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("KEYS=")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"configuring failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(line[5:])
