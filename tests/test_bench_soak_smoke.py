"""The soak (bench/soak.py) and the load test (bench/load_test.py) run short, side by side:
every check of the soak passes in ~18 s of faulty traffic, and the load test's figures
are measured (no errors, the provider's timings matched, guardrails and tracing on).

Both need the local PostgreSQL (127.0.0.1:5432, user postgres) and `redis-server`; the
first run on a machine migrates the scratch template database (bench/pg_scratch.py, a
minute or two), later runs copy it in a second.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def _postgres_up() -> bool:
    try:
        import psycopg

        psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3).close()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not here"
        return False


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    if shutil.which("redis-server") is None or not _postgres_up():
        pytest.skip("needs redis-server and the local PostgreSQL")
    tmp = tmp_path_factory.mktemp("bench")
    soak_json, load_json = tmp / "soak.json", tmp / "load.json"
    soak = subprocess.Popen([sys.executable, "bench/soak.py", "--minutes", "0.3", "--clients", "8",
                             "--json-out", str(soak_json)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    load = subprocess.Popen([sys.executable, "bench/load_test.py", "--users", "5", "--requests", "30",
                             "--warmup", "5", "--json-out", str(load_json)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    soak_out, _ = soak.communicate(timeout=600)
    load_out, _ = load.communicate(timeout=600)
    return {"soak": (soak.returncode, soak_out, soak_json), "load": (load.returncode, load_out, load_json)}


def test_soak_checks_pass(runs):
    code, out, path = runs["soak"]
    assert code == 0, out[-4000:]
    result = json.loads(path.read_text())
    assert set(result["checks"]) == {"ledger", "budgets", "breakers", "leases", "rss"}
    assert all(c["ok"] for c in result["checks"].values()), result["checks"]
    kinds = " ".join(what for _, what in result["events"])
    # Every fault happened: Redis restart, an upstream fault, a SIGKILL and the restart.
    for event in ("restarting Redis", "up-a fault", "SIGKILL gateway B", "gateway B restarted"):
        assert event in kinds, result["events"]
    assert result["checks"]["ledger"]["completed"] > 20
    streams = result["traffic"]["streams_complete"]
    assert 0 < streams < result["traffic"]["complete"]


def test_load_test_measures(runs):
    code, out, path = runs["load"]
    assert code == 0, out[-4000:]
    r = json.loads(path.read_text())
    assert r["errors"] == 0
    assert r["e2e_ms"]["n"] == 30 and r["e2e_ms"]["p99"] >= r["e2e_ms"]["p50"] > 300  # the provider's latency
    assert r["overhead_ms"]["n"] > 0 and r["overhead_ms"]["p50"] >= 0
    assert r["e2e_stream_ms"]["n"] > 0 and r["e2e_json_ms"]["n"] > 0
    assert r["guardrail_decisions"].get("passed", 0) > 0
    assert r["gateway_overhead_seconds_ms"].get("n", 0) >= 30
    assert r["otlp_sink"].get("otlp_v1_traces", 0) > 0, r["otlp_sink"]
    assert "| end to end, all |" in out
