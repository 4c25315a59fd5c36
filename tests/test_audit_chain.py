"""The audit trail is tamper-evident: entries are hash-chained, `verify_audit` names the
first broken entry when a row is edited or deleted in the database (or the newest
entries are cut off), concurrent writers still make one linear chain, retention prunes
old entries and the chain still verifies, and exports are complete, masked and
verifiable on their own. docs/security/audit.md."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.utils import timezone

from billing.keys import issue_key
from billing.models import Team
from gateway_admin import audit, audit_chain
from gateway_admin.models import GENESIS_HASH, AuditEntry, AuditHead
from gateway_project.schedule import DEFAULT_SCHEDULE
from tests.audit_helpers import Since
from tests.conftest import database_url
from tests.factories import ProviderFactory, TeamFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def verify_command(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_audit", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def some_entries(n: int = 5) -> list[AuditEntry]:
    mark = Since()
    for i in range(n):
        TeamFactory(name=f"team-{i}-{mark.start}")
    entries = mark.entries()
    assert len(entries) == n
    return entries


def sql(statement: str, params: list) -> None:
    table = connection.ops.quote_name(AuditEntry._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(statement.format(table=table), params)


# --- the chain --------------------------------------------------------------------------


def test_each_entry_links_to_the_one_before_and_the_head_knows_the_newest():
    entries = some_entries(3)
    for prev, entry in zip(entries, entries[1:]):
        assert entry.seq == prev.seq + 1 and entry.prev_hash == prev.entry_hash
        assert entry.entry_hash == audit.compute_hash(audit.entry_values(entry)) != prev.entry_hash
    head = AuditHead.objects.get(pk=1)
    assert (head.last_seq, head.last_hash) == (entries[-1].seq, entries[-1].entry_hash)
    code, out, _ = verify_command()
    assert code == 0 and "Audit chain intact" in out and f"Head: {head.last_seq}:{head.last_hash}" in out


def test_an_edited_field_is_found_and_named():
    entries = some_entries()
    target = entries[2]
    sql("UPDATE {table} SET object_repr = %s WHERE id = %s", ["someone-else", target.pk])
    code, _, err = verify_command()
    assert code == 1
    assert f"entry id {target.pk}, seq {target.seq}, recorded {audit._at_text(target.at)}" in err
    assert "its contents do not match its hash: a field was changed" in err
    sql("UPDATE {table} SET after = %s WHERE id = %s", ['{"name":"forged"}', entries[1].pk])
    code, _, err = verify_command()
    assert code == 1 and f"seq {entries[1].seq}" in err  # the first broken one


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link():
    entries = some_entries()
    target = entries[1]
    target.actor = "nobody"
    forged = audit.compute_hash(audit.entry_values(target))
    sql("UPDATE {table} SET actor = %s, entry_hash = %s WHERE id = %s", ["nobody", forged, target.pk])
    code, _, err = verify_command()
    assert code == 1 and f"entry id {entries[2].pk}, seq {entries[2].seq}" in err
    assert "prev_hash does not match the hash of the entry before it" in err


def test_a_deleted_entry_is_found():
    entries = some_entries()
    sql("DELETE FROM {table} WHERE id = %s", [entries[2].pk])
    code, _, err = verify_command()
    assert code == 1
    assert f"entry id {entries[3].pk}, seq {entries[3].seq}" in err
    assert f"the entries before it are missing (seq {entries[2].seq} deleted)" in err


def test_deleting_the_newest_entries_is_found_too():
    entries = some_entries()
    sql("DELETE FROM {table} WHERE seq >= %s", [entries[3].seq])
    code, _, err = verify_command()
    assert code == 1
    assert f"the head records seq {entries[4].seq} as the newest entry but the chain ends at seq {entries[2].seq}" in err


def test_a_rewritten_trail_is_caught_against_a_head_kept_elsewhere():
    entries = some_entries()
    kept = f"{entries[2].seq}:{entries[2].entry_hash}"
    assert verify_command("--expect-head", kept)[0] == 0
    sql("UPDATE {table} SET entry_hash = %s WHERE id = %s", ["f" * 64, entries[2].pk])
    AuditHead.objects.filter(pk=1).update(last_hash="f" * 64)
    code, _, err = verify_command("--expect-head", kept)
    assert code == 1 and f"seq {entries[2].seq}" in err


@pytest.mark.django_db(transaction=True)
def test_the_command_exits_non_zero_in_its_own_process():
    entries = some_entries(3)
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "gateway_project.settings"}
    run = [sys.executable, "manage.py", "verify_audit"]
    ok = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    sql("UPDATE {table} SET remote_addr = %s WHERE id = %s", ["203.0.113.9", entries[1].pk])
    broken = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert broken.returncode == 1
    assert f"Audit chain BROKEN at entry id {entries[1].pk}, seq {entries[1].seq}" in broken.stderr


# --- concurrency ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_make_one_linear_chain():
    """Eight threads (eight connections) write 15 changes each, some several per
    transaction: every change succeeds and the chain is one line (on PostgreSQL the
    head row's lock serialises appenders; SQLite's write lock does the same)."""
    teams = [Team.objects.create(name=f"conc-{i}") for i in range(8)]
    start = AuditHead.objects.get(pk=1).last_seq
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(teams))

    def writer(team_id: int) -> None:
        try:
            barrier.wait(timeout=30)
            team = Team.objects.get(pk=team_id)
            for i in range(10):
                team.rpm_limit = i + 1
                team.save()
            with transaction.atomic():
                for i in range(5):
                    team.description = f"step {i}"
                    team.save()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(t.pk,)) for t in teams]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    seqs = list(AuditEntry.objects.filter(seq__gt=start).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(start + 1, start + 1 + 8 * 15))
    result = audit_chain.verify()
    assert result.ok, result.broken and result.broken.describe()
    per_team = {}
    for object_id in AuditEntry.objects.filter(seq__gt=start).values_list("object_id", flat=True):
        per_team[object_id] = per_team.get(object_id, 0) + 1
    assert per_team == {str(t.pk): 15 for t in teams}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="processes on one PostgreSQL database")
def test_concurrent_processes_make_one_linear_chain_on_postgresql():
    teams = [Team.objects.create(name=f"proc-{i}") for i in range(4)]
    start = AuditHead.objects.get(pk=1).last_seq
    code = ("import django,sys; django.setup(); from billing.models import Team; t=Team.objects.get(pk=int(sys.argv[1]));\n"
            "for i in range(25):\n    t.rpm_limit=i+1; t.save()")
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "gateway_project.settings"}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(t.pk)], cwd=ROOT, env=env,
                              stderr=subprocess.PIPE, text=True) for t in teams]
    for p in procs:
        assert p.wait(timeout=180) == 0, p.stderr.read()
    seqs = list(AuditEntry.objects.filter(seq__gt=start).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(start + 1, start + 1 + 4 * 25))
    assert audit_chain.verify().ok
    assert set(AuditEntry.objects.filter(seq__gt=start).values_list("actor", flat=True)) == {"system"}


# --- retention --------------------------------------------------------------------------


def _entries_at(when: dt.datetime, n: int, monkeypatch) -> list[AuditEntry]:
    monkeypatch.setattr(audit.timezone, "now", lambda: when)
    try:
        return some_entries(n)
    finally:
        monkeypatch.undo()


def test_retention_prunes_old_entries_and_the_chain_still_verifies(monkeypatch):
    assert settings.GATEWAY_AUDIT_RETENTION_DAYS == 400 >= 183  # the default: more than six months
    now = timezone.now()
    old = _entries_at(now - dt.timedelta(days=500), 4, monkeypatch)
    recent = some_entries(3)
    assert audit_chain.prune(400, dry_run=True) >= 4 and AuditEntry.objects.filter(pk=old[0].pk).exists()
    out = io.StringIO()
    call_command("prune_audit", stdout=out)
    assert "audit entries older than 400 days deleted" in out.getvalue()
    assert not AuditEntry.objects.filter(seq__lte=old[-1].seq).exists()
    assert AuditEntry.objects.filter(pk__in=[e.pk for e in recent]).count() == 3
    head = AuditHead.objects.get(pk=1)
    assert (head.pruned_seq, head.pruned_hash) == (old[-1].seq, old[-1].entry_hash)
    event = AuditEntry.objects.order_by("-seq").first()
    assert (event.action, event.object_repr, event.actor_type) == ("event", "audit trail retention", "command")
    assert json.loads(event.after)["up_to_seq"] == old[-1].seq
    code, out, _ = verify_command()
    assert code == 0 and f"after the retention anchor at seq {old[-1].seq}" in out
    # The oldest remaining entry deleted by hand is still found.
    sql("DELETE FROM {table} WHERE id = %s", [recent[0].pk])
    assert verify_command()[0] == 1


def test_retention_zero_keeps_everything_and_the_beat_task_is_scheduled(monkeypatch):
    _entries_at(timezone.now() - dt.timedelta(days=5000), 2, monkeypatch)
    assert audit_chain.prune(0) == 0
    assert DEFAULT_SCHEDULE["prune-audit-trail"] == ("gateway_admin.tasks.prune_audit_trail", 24 * 3600)
    from gateway_admin.tasks import prune_audit_trail

    assert prune_audit_trail.apply().get() >= 2
    assert audit_chain.verify().ok


def test_retention_in_small_batches_keeps_the_anchor_on_each(monkeypatch):
    old = _entries_at(timezone.now() - dt.timedelta(days=900), 7, monkeypatch)
    assert audit_chain.prune(400, batch=2) >= 7
    assert AuditHead.objects.get(pk=1).pruned_seq == old[-1].seq
    assert audit_chain.verify().ok


# --- exports --------------------------------------------------------------------------------


def test_exports_are_complete_masked_and_the_jsonl_verifies_on_its_own(tmp_path):
    secret = "sk-export-must-not-leak-5b7e"
    ProviderFactory(name="=HYPERLINK(\"http://x\")", api_key=secret)
    issue_key("exported")
    jsonl = tmp_path / "trail.jsonl"
    call_command("export_audit", "--format", "jsonl", "--output", str(jsonl), stderr=io.StringIO())
    lines = jsonl.read_text().splitlines()
    # Every entry, the export's own record (who took a copy) last.
    assert len(lines) == AuditEntry.objects.count() and secret not in jsonl.read_text()
    assert json.loads(lines[-1])["object_repr"] == "audit trail export"
    rows = [json.loads(line) for line in lines]
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    assert {"seq", "at", "actor", "remote_addr", "action", "object_type", "before", "after", "entry_hash"} <= set(rows[0])
    assert verify_command("--file", str(jsonl))[0] == 0
    # One edited line in the file is found, like a row in the database.
    rows[1]["actor"] = "forged"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, _, err = verify_command("--file", str(jsonl))
    assert code == 1 and f"seq {rows[1]['seq']}" in err

    out = io.StringIO()
    call_command("export_audit", "--format", "csv", stdout=out)
    text = out.getvalue()
    assert text.splitlines()[0].startswith("seq,at,actor_type,actor,")
    assert secret not in text
    assert "'=HYPERLINK" in text  # a spreadsheet will not run it as a formula
    assert AuditEntry.objects.order_by("-seq").first().object_repr == "audit trail export"


def test_export_since_filters_by_time(monkeypatch):
    _entries_at(timezone.now() - dt.timedelta(days=30), 2, monkeypatch)
    recent = some_entries(2)
    since = (timezone.now() - dt.timedelta(days=1)).date().isoformat()
    out = io.StringIO()
    call_command("export_audit", "--since", since, "--format", "jsonl", stdout=out)
    seqs = [json.loads(line)["seq"] for line in out.getvalue().splitlines()]
    assert seqs[:2] == [e.seq for e in recent]
    with pytest.raises(Exception, match="expected a date"):
        call_command("export_audit", "--since", "last tuesday", stdout=io.StringIO())


def test_an_empty_trail_verifies():
    AuditEntry.objects.all().delete()
    AuditHead.objects.filter(pk=1).update(last_seq=0, last_hash=GENESIS_HASH, pruned_seq=0, pruned_hash=GENESIS_HASH)
    code, out, _ = verify_command()
    assert code == 0 and "0 entries" in out
