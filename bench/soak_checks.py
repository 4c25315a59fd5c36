"""The soak's end-of-run checks (bench/soak.py): each returns {"ok": bool, "detail": str, ...}.

    ledger      every request a client saw complete has exactly one usage record
    budgets     spend per budgeted key and team <= budget + the documented in-flight slack
    breakers    up-a's breaker was seen open during its fault and closed after it
    leases      no budget reservation (lease) in Redis outlives the run
    rss         the never-killed gateway's resident set did not grow beyond a bound
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from chat_client import Outcome

BUDGET_PREFIX, LEASES_SUFFIX = "gw:bud:", ":leases"  # billing/limits/redis_store.py


def _pg(db_url: str, sql: str, params: tuple = ()) -> list[tuple]:
    import psycopg

    with psycopg.connect(db_url.replace("postgres://", "postgresql://")) as conn:
        return conn.execute(sql, params).fetchall()


def ledger(db_url: str, outcomes: list[Outcome]) -> dict:
    """Completed requests (by the x-request-id the client got) against usage records."""
    completed = [o.request_id for o in outcomes if o.complete]
    rows = _pg(db_url, "SELECT request_id, status FROM billing_usagerecord")
    per_id = Counter(r[0] for r in rows)
    status = dict(rows)
    missing = [rid for rid in completed if per_id[rid] == 0]
    doubled = [rid for rid in completed if per_id[rid] > 1]
    no_id = sum(1 for o in outcomes if o.complete and not o.request_id)
    statuses = Counter(status.get(rid, "-") for rid in completed)
    ok = bool(completed) and not missing and not doubled and not no_id
    return {"ok": ok, "completed": len(completed), "records": len(rows), "missing": missing[:10],
            "n_missing": len(missing), "doubled": len(doubled),
            "detail": f"{len(completed)} complete responses, {len(completed) - len(missing) - len(doubled)} with "
                      f"exactly one usage record, {len(missing)} without, {len(doubled)} with more; their records' "
                      f"status {dict(statuses)}; {len(rows)} records in all (also failed and cut-short requests)"}


def budgets(db_url: str, budgets_usd: dict[str, tuple[str, Decimal, int]], max_cost: Decimal) -> dict:
    """budgets_usd: scope label -> ("key"|"team", name, amount, clients spending on it).

    Allowed: amount + clients x the dearest single request. billing/admission.py says accepted
    spend exceeds a budget only by what in-flight reservations underestimated (never here:
    every request sends max_tokens, the fake upstream keeps to it) or by requests whose
    lease expired or was lost while they ran: a Redis restart loses every lease, so the
    requests in flight then (at most one per client of the scope) are not counted against
    the next admissions until they settle."""
    lines, ok = [], True
    for label, (kind, name, amount, clients) in budgets_usd.items():
        if kind == "key":
            sql = ("SELECT COALESCE(SUM(u.cost_usd), 0) FROM billing_usagerecord u "
                   "JOIN billing_virtualkey k ON k.id = u.key_id WHERE k.name = %s")
        else:
            sql = "SELECT COALESCE(SUM(cost_usd), 0) FROM billing_usagerecord WHERE team_name = %s"
        spent = Decimal(_pg(db_url, sql, (name,))[0][0])
        allowed = amount + clients * max_cost
        ok &= spent <= allowed
        lines.append(f"{label} spent ${spent:.4f} of ${amount:.4f} ({spent / amount * 100:.1f}%; allowed up to "
                     f"${allowed:.4f} = budget + {clients} in flight x ${max_cost:.4f})")
    return {"ok": ok, "detail": "; ".join(lines)}


def breakers(outcomes: list[Outcome], faults: list[tuple[float, float]], target: str, metrics: str) -> dict:
    """Open: some response's attempt log shows `target=breaker_open` (or the gateway answered
    circuit_open). Closed: after the last fault ended, `target=ok` again."""
    opened = [o.started for o in outcomes
              if f"{target}=breaker_open" in o.attempt_log or o.error == "circuit_open"]
    last_end = max((end for _, end in faults), default=0.0)
    closed = [o.started for o in outcomes if o.started > last_end and f"{target}=ok" in o.attempt_log]
    per_fault = []
    for start, end in faults:
        seen = sum(1 for t in opened if start <= t <= end + 10)
        per_fault.append(seen)
    series = [line for line in metrics.splitlines() if line.startswith("gateway_breaker") and not line.startswith("#")]
    ok = bool(opened) and bool(closed) and all(per_fault)
    return {"ok": ok, "detail": f"{target}: seen open in {len(opened)} responses (per fault window: {per_fault}), "
                                f"ok again in {len(closed)} responses after the last fault ended"
                                + (f"; /metrics: {'; '.join(series[:6])}" if series else
                                   "; /metrics has no gateway_breaker_* series (yet)")}


def leases(redis_url: str, lease_s: float, last_kill: float | None) -> dict:
    """Lease sets in Redis after the clients stopped and every request settled: a lease
    still live must belong to a process the soak SIGKILLed (it expires lease_s after it
    was taken, so never later than last kill + lease_s)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    now_s, now_us = client.time()
    now = now_s + now_us / 1e6
    live, total, sets = [], 0, 0
    for name in client.scan_iter(match=BUDGET_PREFIX + "*" + LEASES_SUFFIX, count=1000):
        sets += 1
        for member, expiry in client.zrange(name, 0, -1, withscores=True):
            total += 1
            if expiry > now:
                live.append((name.decode(), member.decode(), expiry - now))
    # Redis time and ours are the same clock here (one machine).
    orphan_ok = last_kill is not None and all(now + left <= last_kill + lease_s + 1 for _, _, left in live)
    ok = not live or orphan_ok
    longest = max((left for _, _, left in live), default=0.0)
    return {"ok": ok, "detail": f"{sets} lease sets, {total} leases left ({len(live)} not yet expired, the "
                                f"longest for {longest:.1f} s more)" + (
                                    "; each from the SIGKILLed process" if live and orphan_ok else "")}


def rss(samples: list[tuple[float, int]], bound_mb: float) -> dict:
    """samples: (seconds since start, VmRSS kB) of the gateway process that was never killed.
    Growth = the last sample against the one a quarter of the way in (after warm-up)."""
    if len(samples) < 2:
        return {"ok": False, "detail": "fewer than 2 RSS samples"}
    base = samples[len(samples) // 4]
    end = samples[-1]
    growth = (end[1] - base[1]) / 1024
    peak = max(s[1] for s in samples) / 1024
    return {"ok": growth <= bound_mb, "growth_mb": round(growth, 1),
            "detail": f"RSS {base[1] / 1024:.1f} MB at {base[0]:.0f} s, {end[1] / 1024:.1f} MB at {end[0]:.0f} s "
                      f"(growth {growth:+.1f} MB, bound {bound_mb:g} MB; peak {peak:.1f} MB)"}
