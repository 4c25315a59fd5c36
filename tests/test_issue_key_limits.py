"""manage.py issue_key --rpm/--tpm/--budget/--budget-period/--tags: limits and a key
budget on the new key, the secret still alone on stdout."""

from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.keys import KEY_PREFIX, hash_key
from billing.models import Budget, VirtualKey

pytestmark = pytest.mark.django_db

SECRET_LINE = re.compile(rf"^{re.escape(KEY_PREFIX)}[A-Za-z0-9_-]{{20,}}\n$")


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("issue_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_limits_budget_and_tags_are_set_and_only_the_secret_is_on_stdout():
    out, err = run("--name", "ci", "--rpm", "60", "--tpm", "10000", "--budget", "12.5", "--budget-period", "day",
                   "--tags", "prod, search,prod")

    assert SECRET_LINE.match(out)
    key = VirtualKey.objects.get(key_hash=hash_key(out.strip()))
    assert (key.rpm_limit, key.tpm_limit, key.tags) == (60, 10000, ["prod", "search"])
    budget = key.budgets.get()
    assert (budget.scope, budget.amount_usd, budget.period, budget.action, budget.enabled) == (
        "key", Decimal("12.5"), "day", "block", True
    )
    assert "60 requests/min" in err and "10000 tokens/min" in err and "budget $12.5 per day" in err


def test_the_budget_period_defaults_to_month_and_no_flags_mean_no_limits():
    out, _ = run("--name", "ci", "--budget", "100")
    assert VirtualKey.objects.get(key_hash=hash_key(out.strip())).budgets.get().period == "month"

    out, _ = run("--name", "plain")
    key = VirtualKey.objects.get(key_hash=hash_key(out.strip()))
    assert (key.rpm_limit, key.tpm_limit, key.tags, key.budgets.count()) == (None, None, [], 0)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--rpm", "-1"], "--rpm: Must be a whole number"),
        (["--tpm", "-5"], "--tpm: Must be a whole number"),
        (["--budget", "ten"], "--budget must be an amount"),
        (["--budget", "-1"], "at least 0"),
        (["--budget", "1.00001"], "at most 4 decimal places"),
        (["--budget", "12345678901"], "invalid key"),
        (["--budget-period", "day"], "--budget-period needs --budget"),
        (["--tags", ",".join(f"t{i}" for i in range(21))], "--tags"),
    ],
)
def test_bad_flags_fail_and_create_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        run("--name", "x", *args)
    assert not VirtualKey.objects.exists() and not Budget.objects.exists()


def test_an_unknown_budget_period_is_refused_by_the_parser():
    with pytest.raises(CommandError, match="invalid choice"):
        run("--name", "x", "--budget", "5", "--budget-period", "week")
