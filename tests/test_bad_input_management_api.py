"""The management API (/api/) answers every bad input with a 400 (or 404 for an id
that names nothing), never a 500: out-of-range integers in filters, page sizes and
bodies, and metadata nested too deeply or holding what the database cannot store.
Run on SQLite and PostgreSQL: they fail differently (SQLite's driver refuses ints over
64 bits; PostgreSQL refuses out-of-range integers, NUL characters and NaN in JSON)."""

from __future__ import annotations

import json

import pytest

from billing.api.serializers import MAX_METADATA_DEPTH
from tests.factories import TeamFactory
from tests.test_management_api import token_client

pytestmark = pytest.mark.django_db

HUGE = "99999999999999999999"  # beyond 64 bits
INT64_MAX = 2**63 - 1


@pytest.fixture
def api():
    return token_client()


def nested(levels: int, leaf: str = "1") -> str:
    return '{"a":' * levels + leaf + "}" * levels


@pytest.mark.parametrize("url, field", [
    (f"/api/usage/?key={HUGE}", "key"),
    (f"/api/usage/?team={HUGE}", "team"),
    (f"/api/usage/?key=-{HUGE}", "key"),
    (f"/api/usage/?key={INT64_MAX + 1}", "key"),
    ("/api/usage/?key=-1", "key"),
    (f"/api/keys/?team={HUGE}", "team"),
    (f"/api/keys/?team={INT64_MAX + 1}", "team"),
    ("/api/keys/?page_size=-5", "page_size"),
    ("/api/keys/?page_size=0", "page_size"),
    ("/api/keys/?page_size=abc", "page_size"),
    (f"/api/keys/?page_size={HUGE}", "page_size"),
    ("/api/usage/?page_size=-1", "page_size"),
    ("/api/teams/?page_size=1001", "page_size"),
])
def test_out_of_range_filters_are_400_naming_the_parameter(api, url, field):
    response = api.get(url)
    assert response.status_code == 400, response.content
    assert field in response.json()


@pytest.mark.parametrize("url", [f"/api/keys/{HUGE}/", f"/api/teams/{HUGE}/", f"/api/budgets/{HUGE}/",
                                 f"/api/keys/{INT64_MAX + 1}/", "/api/keys/-1/"])
def test_ids_beyond_64_bits_name_nothing(api, url):
    assert api.get(url).status_code == 404


def test_in_range_filters_still_work(api):
    assert api.get(f"/api/usage/?key={INT64_MAX}&team=1&page_size=1000").status_code == 200
    assert api.get("/api/keys/?team=1&page_size=1").status_code == 200


@pytest.mark.parametrize("raw, field", [
    ('{"name": "x", "metadata": ' + nested(MAX_METADATA_DEPTH) + "}", "metadata"),
    ('{"name": "x", "metadata": ' + nested(3000) + "}", None),  # deeper than the JSON parser takes
    ('{"name": "x", "metadata": ' + "[" * 5000 + "]" * 5000 + "}", None),
    ('{"name": "x", "metadata": {"a": "nul\\u0000"}}', "metadata"),
    ('{"name": "x", "metadata": {"nul\\u0000": 1}}', "metadata"),
    ('{"name": "x", "metadata": {"a": 1e999}}', "metadata"),
    ('{"name": "x", "metadata": {"a": NaN}}', None),
    ('{"name": "x", "tags": [["a"]]}', "tags"),
    ('{"name": "x", "tags": ["nul\\u0000"]}', "tags"),
    ('{"name": "x", "rpm_limit": ' + HUGE + "}", "rpm_limit"),
    ('{"name": "x", "tpm_limit": ' + str(2**63) + "}", "tpm_limit"),
    ('{"name": "x", "rpm_limit": -1}', "rpm_limit"),
    ('{"name": "x", "team": ' + HUGE + "}", "team"),
    ('{"name": "x", "budget": {"amount_usd": "1e30"}}', "budget"),
])
def test_bad_key_bodies_are_400(api, raw, field):
    response = api.post("/api/keys/", raw, content_type="application/json")
    assert response.status_code == 400, response.content
    if field:
        assert field in response.json()


def test_bad_key_changes_are_400(api):
    key = api.post("/api/keys/", {"name": "k"}, format="json").json()["id"]
    for raw in ['{"rpm_limit": ' + HUGE + "}", '{"metadata": ' + nested(50) + "}", '{"team": ' + HUGE + "}",
                '{"metadata": {"a": "\\u0000"}}', '{"allowed_routes": [{"a": 1}]}']:
        response = api.patch(f"/api/keys/{key}/", raw, content_type="application/json")
        assert response.status_code == 400, (raw, response.content)
    assert api.post(f"/api/keys/{key}/rotate/", {"grace_seconds": int(HUGE)}, format="json").status_code == 400


def test_metadata_within_the_limit_is_kept(api):
    metadata = json.loads(nested(MAX_METADATA_DEPTH - 1))
    created = api.post("/api/keys/", {"name": "k", "metadata": metadata}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["metadata"] == metadata


@pytest.mark.parametrize("body, field", [
    ({"name": "t", "rpm_limit": int(HUGE)}, "rpm_limit"),
    ({"name": "t", "tpm_limit": 2**63}, "tpm_limit"),
    ({"name": "t\u0000"}, "name"),
])
def test_bad_team_bodies_are_400(api, body, field):
    response = api.post("/api/teams/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


@pytest.mark.parametrize("change, field", [
    ({"amount_usd": "1e30"}, "amount_usd"),
    ({"team": int(HUGE)}, "team"),
    ({"alert_threshold_pct": int(HUGE)}, "alert_threshold_pct"),
    ({"alert_threshold_pct": -1}, "alert_threshold_pct"),
])
def test_bad_budget_bodies_are_400(api, change, field):
    team = TeamFactory()
    body = {"scope": "team", "team": team.pk, "amount_usd": "1", "period": "day", **change}
    response = api.post("/api/budgets/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()



def test_a_nul_character_in_a_route_name_is_a_400_not_a_database_error(api):
    # found by the schemathesis fuzz run on PostgreSQL (allowed_routes=%00 -> DataError, a 500)
    for raw in ['{"name": "k", "allowed_routes": ["\\u0000"]}', '{"name": "k", "allowed_routes": ["a\\u0000b"]}']:
        response = api.post("/api/keys/", raw, content_type="application/json")
        assert response.status_code == 400, response.content
        assert "allowed_routes" in response.json()
