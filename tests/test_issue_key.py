"""manage.py issue_key: the secret alone on stdout, everything else on stderr."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from billing.keys import KEY_PREFIX, hash_key
from billing.models import Team, VirtualKey
from tests.conftest import database_url
from tests.factories import RouteFactory, TeamFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
SECRET_LINE = re.compile(rf"^{re.escape(KEY_PREFIX)}[A-Za-z0-9_-]{{20,}}\n$")


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("issue_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_prints_only_the_secret_on_stdout_and_the_key_authenticates():
    team = TeamFactory(name="research")
    chat, fast = RouteFactory(name="chat-default"), RouteFactory(name="chat-fast")
    RouteFactory(name="other")

    out, err = run("--name", "search-backend", "--team", "research", "--routes", "chat-default, chat-fast")

    assert SECRET_LINE.match(out)
    secret = out.strip()
    key = VirtualKey.objects.get()
    assert key.key_hash == hash_key(secret)
    assert (key.name, key.team, key.prefix) == ("search-backend", team, secret[: len(key.prefix)])
    assert set(key.allowed_routes.all()) == {chat, fast}
    assert key.expires_at is None
    assert "search-backend" in err and secret not in err


def test_without_routes_the_key_may_call_every_route():
    out, _ = run("--name", "anything")

    key = VirtualKey.objects.get(key_hash=hash_key(out.strip()))
    assert key.team is None and not key.allowed_routes.exists()


def test_expires_in_days_sets_the_expiry():
    run("--name", "temp", "--expires-in-days", "7")

    expected = timezone.now() + timedelta(days=7)
    assert abs(VirtualKey.objects.get().expires_at - expected) < timedelta(minutes=1)


def test_unknown_team_fails_and_creates_nothing():
    TeamFactory(name="research")

    with pytest.raises(CommandError) as exc:
        run("--name", "x", "--team", "reseach")

    assert "unknown team 'reseach'" in str(exc.value) and "--create-team" in str(exc.value)
    assert not VirtualKey.objects.exists()


def test_unknown_route_fails_and_creates_nothing():
    RouteFactory(name="chat-default")

    with pytest.raises(CommandError) as exc:
        run("--name", "x", "--team", "new", "--create-team", "--routes", "chat-default,chat-nope")

    assert "unknown route 'chat-nope'" in str(exc.value)
    assert not VirtualKey.objects.exists()
    assert not Team.objects.filter(name="new").exists()


def test_create_team_creates_a_missing_team():
    out, err = run("--name", "x", "--team", "brand-new", "--create-team")

    key = VirtualKey.objects.get(key_hash=hash_key(out.strip()))
    assert key.team.name == "brand-new"
    assert "Created team 'brand-new'" in err


@pytest.mark.parametrize(
    "args,message",
    [
        (["--name", "  "], "--name must not be empty"),
        (["--name", "x", "--expires-in-days", "0"], "at least 1"),
        (["--name", "x", "--create-team"], "needs --team"),
        (["--name", "x", "--team", "bad name!", "--create-team"], "invalid team name"),
    ],
)
def test_bad_arguments_fail_cleanly(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not VirtualKey.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_real_process_prints_exactly_one_line_on_stdout():
    RouteFactory(name="chat-default")
    TeamFactory(name="research")
    env = {**os.environ, "DATABASE_URL": database_url()}
    cmd = [sys.executable, "manage.py", "issue_key", "--name", "cli", "--team", "research", "--routes", "chat-default"]

    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    assert SECRET_LINE.match(done.stdout)
    key = VirtualKey.objects.get(key_hash=hash_key(done.stdout.strip()))
    assert [r.name for r in key.allowed_routes.all()] == ["chat-default"]

    failed = subprocess.run(
        [*cmd[:-1], "chat-missing"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert failed.returncode != 0 and failed.stdout == ""
    assert "unknown route 'chat-missing'" in failed.stderr
    assert VirtualKey.objects.count() == 1
