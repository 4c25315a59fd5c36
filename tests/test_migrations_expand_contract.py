"""Migrations are expand-then-contract: the current release's migrations are applied to a
database holding the previous release's schema while a previous-release gateway keeps
serving on it (docs/operations/deployment.md, "Upgrades: expand then contract").

The previous release is the commit in deploy/previous-release. Its tree is exported with
`git archive` (no worktree), migrated onto a scratch PostgreSQL database, seeded with its
own `gateway_import` and `issue_key`, and served by its own uvicorn process (this .venv's
packages: a release runs on the pinned packages of the one before). While a thread sends
a request every 50 ms, the current tree's `migrate` runs on the same database. Then:

- every request before, during and after the migration was answered 200, and each has
  exactly one usage record (by the `x-request-id` the client saw);
- the current schema is fully applied (`migrate --check`, `showmigrations --plan`);
- the previous release can still write its configuration (its `gateway_import` adds a
  provider model and a route) and serve the route it added -- in a rolling upgrade the old
  admin, import and management API keep running next to the migrated schema.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from django.conf import settings
from django.db import connection

from tests.breaker_helpers import ROOT, stop_process
from tests.conftest import free_port, wait_for

PREVIOUS_RELEASE_FILE = ROOT / "deploy" / "previous-release"
INTERVAL_S = 0.05  # one request every 50 ms while the migration runs
SEED = """
providers:
  - name: mock
    kind: mock
    options: {latency_ms: 0, tokens_per_s: 0}
    models:
      - name: mock-smart
routes:
  - name: chat-old
    strategy: single
    targets:
      - model: mock/mock-smart
"""
# Written by the previous release after the migration: a new model on the provider and a
# route to it (rows in providers_model and routing_route, the tables migrations change).
SECOND_SEED = SEED.replace("mock-smart", "mock-later").replace("chat-old", "chat-added-after")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the expand-contract check runs on PostgreSQL"),
]


def previous_release() -> str:
    """The sha in deploy/previous-release (its first non-comment line)."""
    for line in PREVIOUS_RELEASE_FILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()
    raise AssertionError(f"{PREVIOUS_RELEASE_FILE} names no commit")


def export_tree(sha: str, into: Path) -> None:
    """`git archive <sha> | tar -x`: the release's files, without a worktree or checkout."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the previous release's tree cannot be exported")
    known = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{sha}^{{commit}}"], capture_output=True)
    if known.returncode != 0:
        pytest.skip(f"commit {sha} (deploy/previous-release) is not in this clone (a shallow clone?)")
    archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", sha], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True)
    archive.stdout.close()
    assert archive.wait() == 0, f"git archive {sha} failed"


def _server_params(dbname: str) -> dict:
    db = settings.DATABASES["default"]
    return {"host": db.get("HOST") or "127.0.0.1", "port": db.get("PORT") or 5432,
            "user": db.get("USER") or "postgres", "password": db.get("PASSWORD") or None, "dbname": dbname}


def _admin(sql: str) -> None:
    # CREATE/DROP DATABASE cannot run in a transaction; the maintenance database hosts them.
    with psycopg.connect(**_server_params("postgres"), autocommit=True) as conn:
        conn.execute(sql)


def _url(dbname: str) -> str:
    p = _server_params(dbname)
    password = f":{p['password']}" if p["password"] else ""
    return f"postgres://{p['user']}{password}@{p['host']}:{p['port']}/{dbname}"


def release_env(database_url: str) -> dict[str, str]:
    """A process of either release on the scratch database, without Redis (in-process state)."""
    env = {k: v for k, v in os.environ.items() if "REDIS" not in k and k not in ("CELERY_BROKER_URL", "PROMETHEUS_MULTIPROC_DIR")}
    env.update(DATABASE_URL=database_url, SECRET_KEY="expand-contract-test", DJANGO_SETTINGS_MODULE="gateway_project.settings",
               GATEWAY_CONFIG_TTL_S="0.5", CELERY_BROKER_URL="memory://")
    return env


def manage(tree: Path, env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`manage.py ARGS` of one release's tree, with this .venv's python."""
    return subprocess.run([sys.executable, "manage.py", *args], cwd=tree, env=env, capture_output=True, text=True,
                          timeout=timeout)


def check_ok(done: subprocess.CompletedProcess, what: str) -> str:
    assert done.returncode == 0, f"{what} failed (exit {done.returncode}):\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
    return done.stdout


def added_by(table: str, column: str) -> str:
    """Which of the current migrations adds `column` to `table` (for the failure message)."""
    from django.apps import apps
    from django.db.migrations import operations
    from django.db.migrations.loader import MigrationLoader

    for (app, name), migration in MigrationLoader(None, ignore_no_migrations=True).disk_migrations.items():
        for op in migration.operations:
            if isinstance(op, operations.AddField) and op.name == column:
                model = apps.get_model(app, op.model_name)
                if model._meta.db_table == table:
                    return f"{app}.{name}"
    return "an unknown migration"


@dataclass
class Sent:
    phase: str  # before / during / after (the current migrate)
    status: int | str  # the HTTP status, or the transport error's name
    request_id: str | None


@dataclass
class Upgrade:
    old_tree: Path
    env: dict[str, str]
    url: str
    key: str
    dbname: str
    migrate_output: str = ""
    sent: list[Sent] = field(default_factory=list)


def ask(client: httpx.Client, upgrade: Upgrade, route: str = "chat-old") -> httpx.Response:
    return client.post(f"{upgrade.url}/v1/chat/completions", headers={"Authorization": f"Bearer {upgrade.key}"},
                       json={"model": route, "messages": [{"role": "user", "content": "still there?"}]})


class Traffic(threading.Thread):
    """A request every INTERVAL_S, each status recorded under the current phase."""

    def __init__(self, upgrade: Upgrade) -> None:
        super().__init__(daemon=True)
        self.upgrade, self.phase, self.stopping = upgrade, "before", threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stopping.is_set():
                phase = self.phase  # the phase the request was sent in
                try:
                    answer = ask(client, self.upgrade)
                    self.upgrade.sent.append(Sent(phase, answer.status_code, answer.headers.get("x-request-id")))
                except httpx.HTTPError as exc:
                    self.upgrade.sent.append(Sent(phase, type(exc).__name__, None))
                self.stopping.wait(INTERVAL_S)


def start_old_gateway(tree: Path, env: dict[str, str], port: int) -> subprocess.Popen:
    log = tempfile.TemporaryFile()  # a file, not a pipe nobody reads
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "gateway_project.asgi:application", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    proc.log = log  # type: ignore[attr-defined]
    return proc


def wait_ready(proc: subprocess.Popen, url: str, timeout: float = 90) -> None:
    # Generous: a Django process starts in ~5 s when idle, much slower on a busy machine.
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("the previous release's gateway did not become ready:\n" + stop_process(proc))
        time.sleep(0.2)


@pytest.fixture(scope="module")
def upgrade() -> Iterator[Upgrade]:
    """The previous release serving on its own schema, migrated under traffic to the current one."""
    sha = previous_release()
    workdir = Path(tempfile.mkdtemp(prefix="expand-contract-"))
    old_tree = workdir / "previous"
    old_tree.mkdir()
    dbname = f"test_expand_{os.getpid()}"
    proc = None
    try:
        export_tree(sha, old_tree)
        _admin(f'DROP DATABASE IF EXISTS "{dbname}"')
        _admin(f'CREATE DATABASE "{dbname}"')
        env = release_env(_url(dbname))
        done = manage(old_tree, env, "migrate", "--noinput")
        if done.returncode != 0 and "ModuleNotFoundError" in done.stderr:
            pytest.skip(f"the previous release ({sha[:7]}) needs packages this .venv lacks:\n{done.stderr[-600:]}")
        check_ok(done, f"the previous release's ({sha[:7]}) migrate")
        (workdir / "seed.yaml").write_text(SEED)
        check_ok(manage(old_tree, env, "gateway_import", str(workdir / "seed.yaml")), "the previous release's import")
        key = check_ok(manage(old_tree, env, "issue_key", "--name", "expand-contract", "--create-team", "--team", "ops"),
                       "the previous release's issue_key").strip()
        port = free_port()
        proc = start_old_gateway(old_tree, env, port)
        result = Upgrade(old_tree=old_tree, env=env, url=f"http://127.0.0.1:{port}", key=key, dbname=dbname)
        wait_ready(proc, result.url)
        with httpx.Client(timeout=30) as client:
            first = ask(client, result)
        assert first.status_code == 200, f"the previous release does not serve before the upgrade: {first.text}"

        traffic = Traffic(result)
        traffic.start()
        time.sleep(1.0)
        traffic.phase = "during"
        migrated = manage(ROOT, env, "migrate", "--noinput")
        traffic.phase = "after"
        time.sleep(1.5)
        traffic.stopping.set()
        traffic.join(timeout=40)
        result.migrate_output = check_ok(migrated, "the current release's migrate")
        yield result
    finally:
        if proc is not None:
            output = stop_process(proc)
            if "Traceback" in output:  # the old process's own account of any failure, for the report
                print("previous-release gateway output:\n" + output[-4000:])
        try:
            _admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def _records(dbname: str, request_ids: list[str]) -> dict[str, int]:
    with psycopg.connect(**_server_params(dbname)) as conn:
        rows = conn.execute(
            "SELECT request_id, count(*) FROM billing_usagerecord WHERE request_id = ANY(%s) GROUP BY request_id",
            (request_ids,),
        ).fetchall()
    return dict(rows)


def test_previous_release_serves_through_the_migration(upgrade):
    applied = [line.split("Applying ", 1)[1].split("...")[0] for line in upgrade.migrate_output.splitlines() if "Applying " in line]
    by_phase = {phase: [s for s in upgrade.sent if s.phase == phase] for phase in ("before", "during", "after")}
    assert by_phase["during"] and by_phase["after"], f"no traffic during or after the migration: {by_phase}"
    print({phase: len(sent) for phase, sent in by_phase.items()}, "requests; applied:", applied)  # shown with -rP
    failed = [s for s in upgrade.sent if s.status != 200]
    assert not failed, f"the previous release failed while {applied} were applied: {failed}"

    request_ids = [s.request_id for s in upgrade.sent]
    assert None not in request_ids and len(set(request_ids)) == len(request_ids)
    # The ledger writes in batches after the answer: wait for the last ones.
    counts = wait_for(lambda: (c := _records(upgrade.dbname, request_ids)) and len(c) == len(request_ids) and c,
                      timeout=20, interval=0.2) or _records(upgrade.dbname, request_ids)
    missing = [rid for rid in request_ids if rid not in counts]
    assert not missing, f"{len(missing)} of {len(request_ids)} answered requests have no usage record"
    assert set(counts.values()) == {1}, "a request has more than one usage record"

    # The current schema is fully applied.
    check_ok(manage(ROOT, upgrade.env, "migrate", "--check"), "migrate --check")
    plan = check_ok(manage(ROOT, upgrade.env, "showmigrations", "--plan"), "showmigrations --plan").splitlines()
    assert plan and all(line.startswith("[X]") for line in plan if line.strip()), "\n".join(plan)


def test_previous_release_still_writes_after_the_migration(upgrade, tmp_path):
    """Its configuration writes (import here; the admin and the management API save the same
    rows) must fit the migrated tables: a column it does not know needs a database default."""
    seed = tmp_path / "second.yaml"
    seed.write_text(SECOND_SEED)
    done = manage(upgrade.old_tree, upgrade.env, "gateway_import", str(seed))
    refused = re.search(r'null value in column "(\w+)" of relation "(\w+)" violates not-null', done.stderr)
    if refused:
        column, table = refused.groups()
        pytest.fail(f"the previous release cannot insert into {table}: {added_by(table, column)} adds {column} NOT NULL "
                    "without a database default (the previous release does not send it). Expand-only means "
                    "null=True or db_default=...; the row it refused:\n" + refused.string[refused.start():].split("\n\n")[0])
    check_ok(done, "the previous release's import after the current migrations")

    def served() -> httpx.Response | None:
        answer = ask(client, upgrade, route="chat-added-after")
        return answer if answer.status_code == 200 else None

    with httpx.Client(timeout=30) as client:
        # The running process picks the new route up at its next configuration refresh.
        answer = wait_for(served, timeout=20, interval=0.3)
        assert answer is not None, ask(client, upgrade, route="chat-added-after").text
    assert answer.headers["x-gateway-model"] == "mock/mock-later"
