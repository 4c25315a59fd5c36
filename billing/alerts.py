"""Budget alerts: one BudgetAlert per budget, period and threshold crossed, delivered
once (log, email, optional webhook).

Spend comes from billing.money.spent_in_period: the ledger (not the rollups, so an
alert is never late by the rollup schedule), exactly what enforcement sees. Delivery is best effort: failures are logged and recorded in
BudgetAlert.delivered, never raised, so one broken webhook cannot stop the others.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit

import httpx
from django.core.mail import send_mail
from django.utils import timezone

from . import money
from .models import Budget, BudgetAlert
from .money import period_bounds, period_key
from .rollups import COST_PLACES

log = logging.getLogger("gateway.budget")

WEBHOOK_TIMEOUT_S = 5.0
AMOUNT_PLACES = Decimal("0.0001")  # Budget.amount_usd
__all__ = ["check_all_budgets", "check_budget", "deliver", "period_bounds", "period_key", "spent_in_period"]


def _utc(now: datetime | None) -> datetime:
    return (now or timezone.now()).astimezone(UTC)


def spent_in_period(budget: Budget, now: datetime | None = None) -> Decimal:
    """What the budget spent this period: billing.money's answer, the same that
    enforcement is seeded from (rotated keys' spend included)."""
    return money.spent_in_period(budget, now)


def thresholds(budget: Budget) -> list[int]:
    return sorted({int(budget.alert_threshold_pct), 100})


def crossed(spent: Decimal, amount: Decimal, pct: int) -> bool:
    """Spend reached pct% of the amount (a $0 budget is crossed by any spend)."""
    return spent > 0 and spent * 100 >= amount * pct


def owner_label(budget: Budget) -> str:
    if budget.scope == Budget.Scope.KEY and budget.key is not None:
        return str(budget.key)  # name and display prefix only, never the secret
    if budget.scope == Budget.Scope.TEAM and budget.team is not None:
        return budget.team.name
    return "gateway"


def check_budget(budget: Budget, spent: Decimal | None = None, now: datetime | None = None) -> list[BudgetAlert]:
    """Record (and deliver) each threshold newly crossed in the current period.

    Idempotent: the unique (budget, period_key, threshold_pct) constraint means a
    re-run, or a concurrent run in another worker, creates nothing new.
    """
    now = _utc(now)
    if spent is None:
        spent = spent_in_period(budget, now)
    key = period_key(budget.period, now)
    new = []
    for pct in thresholds(budget):
        if not crossed(spent, budget.amount_usd, pct):
            continue
        alert, created = BudgetAlert.objects.get_or_create(
            budget=budget, period_key=key, threshold_pct=pct, defaults={"spent_usd": spent}
        )
        if created:
            new.append(alert)
    for alert in new:
        deliver(alert)
    return new


def check_all_budgets(now: datetime | None = None) -> int:
    """check_budget() for every enabled budget; return how many alerts were new."""
    count = 0
    for budget in Budget.objects.filter(enabled=True).select_related("key", "team"):
        try:
            count += len(check_budget(budget, now=now))
        except Exception:  # one bad budget must not stop the others
            log.exception("budget check failed: budget=%s", budget.pk)
    return count


# --- delivery ------------------------------------------------------------------------
def payload(alert: BudgetAlert) -> dict:
    budget = alert.budget
    return {
        "budget": budget.pk,
        "scope": budget.scope,
        "owner": owner_label(budget),
        "period": alert.period_key,
        "threshold_pct": alert.threshold_pct,
        # Strings keep money exact (JSON numbers are floats to most consumers).
        "spent_usd": str(Decimal(alert.spent_usd).quantize(COST_PLACES)),
        "amount_usd": str(Decimal(budget.amount_usd).quantize(AMOUNT_PLACES)),
    }


def deliver(alert: BudgetAlert) -> dict:
    """Log, email and (if configured) POST the alert; store and return what was done."""
    data = payload(alert)
    log.warning(
        "budget alert: budget=%(budget)s scope=%(scope)s owner=%(owner)s period=%(period)s "
        "threshold=%(threshold_pct)s%% spent_usd=%(spent_usd)s amount_usd=%(amount_usd)s",
        data,
    )
    delivered: dict = {"log": True}
    recipients = [a for a in re.split(r"[\s,;]+", alert.budget.alert_emails) if a]
    if recipients:
        delivered["email"] = _email(data, recipients)
    if alert.budget.webhook_url:
        delivered["webhook"] = _webhook(data, alert.budget.webhook_url)
    alert.delivered = delivered
    alert.save(update_fields=["delivered"])
    return delivered


def _email(data: dict, recipients: list[str]) -> dict:
    subject = f"Budget alert: {data['owner']} reached {data['threshold_pct']}% ({data['period']})"
    body = (
        f"The {data['scope']} budget #{data['budget']} for {data['owner']} has crossed "
        f"{data['threshold_pct']}% in period {data['period']}.\n\n"
        f"Spent: ${data['spent_usd']}\nBudget: ${data['amount_usd']}\n"
    )
    try:
        send_mail(subject, body, None, recipients)
    except Exception as exc:  # SMTP down, bad address...: logged, never raised
        log.warning("budget alert email failed: budget=%s error=%s", data["budget"], type(exc).__name__)
        return {"ok": False, "to": len(recipients), "error": type(exc).__name__}
    return {"ok": True, "to": len(recipients)}


def _webhook(data: dict, url: str) -> dict:
    # Webhook URLs often embed a token (Slack, Teams...): log the host only.
    host = urlsplit(url).hostname or "?"
    try:
        response = httpx.post(url, json=data, timeout=WEBHOOK_TIMEOUT_S)
    except Exception as exc:  # timeouts, refused connections, invalid URLs: logged, never raised
        log.warning("budget alert webhook failed: budget=%s host=%s error=%s", data["budget"], host, type(exc).__name__)
        return {"ok": False, "host": host, "error": type(exc).__name__}
    ok = response.is_success
    if not ok:
        log.warning("budget alert webhook refused: budget=%s host=%s status=%s", data["budget"], host,
                    response.status_code)
    return {"ok": ok, "host": host, "status": response.status_code}
