"""The dashboard and the alert rules against a real Prometheus (Debian's `prometheus`)
scraping a live gateway under traffic: every dashboard query (Grafana variables
substituted) and every metric selector of every alert expression returns data, so no
panel or rule names a series that does not exist; the rules load and evaluate, and
`promtool check rules` accepts them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from prometheus_client import REGISTRY

from billing.models import Budget, Team
from guardrails.models import Guardrail
from tests.conftest import free_port, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy/grafana/gateway-dashboard.json"
ALERTS = ROOT / "deploy/prometheus/alerts.yml"
PROMETHEUS = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
# What Grafana puts in place of its variables: every route and team, a 1 m rate window.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m", "$route": ".*", "$team": ".*"}


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every dashboard target, variables substituted."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            assert "$" not in expr, f"{panel['title']}: unsubstituted variable in {expr}"
            queries.append((panel["title"], expr))
    return queries


def variable_queries() -> list[tuple[str, str]]:
    """The template variables' label_values(metric, label) as queries of that metric
    with the label set."""
    out = []
    for var in json.loads(DASHBOARD.read_text())["templating"]["list"]:
        if var["type"] == "query":
            metric, label = re.fullmatch(r"label_values\((\w+), *(\w+)\)", var["query"]["query"]).groups()
            out.append((f"variable {var['name']}", f'{metric}{{{label}=~".+"}}'))
    return out


def alert_rules() -> list[tuple[str, str]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [(rule["alert"], rule["expr"]) for group in groups for rule in group["rules"]]


SELECTOR = re.compile(r"\b((?:gateway_\w+|up))\b(\{[^}]*\})?")


def selectors(expr: str) -> list[str]:
    """The series selectors of a PromQL expression (metric name and label matchers)."""
    return [name + (matchers or "") for name, matchers in SELECTOR.findall(expr)]


def test_every_alert_rule_file_passes_promtool():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`): alerts.yml not checked by promtool")
    result = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_the_dashboard_is_provisionable_json():
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and dashboard["uid"]
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("request rate", "error rate by kind", "latency", "overhead", "first token", "cost per hour by team",
                  "cost per hour by model", "tokens", "cache hit rate", "guardrail", "breakers", "budget"):
        assert topic in titles, topic
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]


@pytest.fixture
def prometheus(gateway, tmp_path):
    if PROMETHEUS is None:
        pytest.skip("PROMETHEUS NOT INSTALLED (Debian package `prometheus`, installed by scripts/test.sh): "
                    "the dashboard queries and alert expressions were NOT checked against a real Prometheus")
    port = free_port()
    target = gateway.removeprefix("http://")
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [{"job_name": "gateway", "metrics_path": "/metrics", "static_configs": [{"targets": [target]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("prometheus did not start:\n" + proc.stdout.read().decode(errors="replace"))
        time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def query(prometheus: str, expr: str) -> list:
    body = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body["status"] == "success", f"{expr}: {body.get('error')}"
    return body["data"]["result"]


def drive_traffic(gateway: str, build, fake_openai, fake_openai_b) -> None:
    """Successes (the live gateway runs in this process: its registry is REGISTRY), an error, a stream, a cache hit, a guardrail decision, a rate-limit
    rejection and an opened breaker, for a team with a budget."""
    build.openai_route(fake_openai, provider_name="steady", cache_mode="exact", cache_ttl_s=300)
    build.openai_route(fake_openai_b, name="flaky", provider_name="flaky", breaker_failure_threshold=1,
                       breaker_cooldown_s=300)
    team = Team.objects.create(name="platform")
    Budget.objects.create(scope="team", team=team, amount_usd=Decimal("10"), period="month")
    Budget.objects.create(scope="global", amount_usd=Decimal("100"), period="day", action="alert")
    Guardrail.objects.create(name="watch-pii", kind="pii", stage="input", action="flag", params={})
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=build.key(team=team), max_retries=0)

    def ask(route="chat-default", text="hello", **kw):
        return client.chat.completions.create(model=route, messages=[{"role": "user", "content": text}], **kw)

    def cache_hits() -> float:
        return REGISTRY.get_sample_value("gateway_cache_requests_total", {"route": "chat-default", "result": "hit"}) or 0

    ask(temperature=0)
    # The same prompt again, once the answer is stored (after the answer, in the background): a cache hit.
    assert wait_for(lambda: ask(temperature=0) and cache_hits() > 0)
    ask(text="write to nguyen.van.an@example.com")  # flagged by the guardrail
    list(ask(text="a stream", stream=True))
    fake_openai.fail(503)
    with pytest.raises(openai.APIStatusError):
        ask(text="an error")
    fake_openai_b.fail(500)
    with pytest.raises(openai.APIStatusError):
        ask(route="flaky")  # opens the flaky route's breaker (threshold 1)
    limited = openai.OpenAI(base_url=f"{gateway}/v1", api_key=build.key("limited", rpm_limit=0), max_retries=0)
    with pytest.raises(openai.RateLimitError):
        limited.chat.completions.create(model="chat-default", messages=[{"role": "user", "content": "x"}])


def test_every_dashboard_query_and_alert_selector_returns_data(prometheus, gateway, build, fake_openai, fake_openai_b):
    drive_traffic(gateway, build, fake_openai, fake_openai_b)
    checks = panel_queries() + variable_queries()
    for name, expr in alert_rules():
        checks += [(f"alert {name}", s) for s in selectors(expr)]
        query(prometheus, expr)  # the whole expression parses and evaluates (true or not)
    assert len(checks) > 30

    def missing() -> list[tuple[str, str]]:
        return [(title, expr) for title, expr in checks if not query(prometheus, expr)]

    # A few scrapes after the traffic (1 s apart): rate() needs two samples in its window.
    assert wait_for(lambda: not missing() and query(prometheus, "gateway_breaker_state == 2"), timeout=60, interval=1), \
        "no data for:\n" + "\n".join(f"  {title}: {expr}" for title, expr in missing())
    assert query(prometheus, 'up{job="gateway"} == 1')

    rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = {r["name"]: r for g in rules for r in g["rules"]}
    assert set(loaded) == {name for name, _ in alert_rules()}
    assert wait_for(lambda: all(r["health"] == "ok" for g in httpx.get(f"{prometheus}/api/v1/rules").json()["data"]
                                ["groups"] for r in g["rules"]), timeout=10, interval=0.5)
    # The breaker opened above: its alert is pending (its `for` has not elapsed).
    alerts = httpx.get(f"{prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    assert any(a["labels"]["alertname"] == "GatewayBreakerOpen" and a["labels"]["route"] == "flaky" for a in alerts)
