"""The admin's team and key forms: rate limits checked like every other entry point
(billing.keys.validate_rate_limits / the model's bounds): out of range is a form error,
never a 500, and 0 (paused) is accepted."""

from __future__ import annotations

import pytest

from billing.models import Team, VirtualKey
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


def team_form(**limits):
    return {"name": "ops", "description": "", "rpm_limit": "", "tpm_limit": "", **limits,
            "budgets-TOTAL_FORMS": "0", "budgets-INITIAL_FORMS": "0"}


@pytest.mark.parametrize("value", ["2147483648", "99999999999999999999", "-1"])
def test_out_of_range_team_limits_are_form_errors(admin_client, value):
    team = TeamFactory(name="ops")
    response = admin_client.post(f"/admin/billing/team/{team.pk}/change/", team_form(rpm_limit=value))
    assert response.status_code == 200  # the form again, with the error
    assert "rpm_limit" in response.context["adminform"].form.errors
    team.refresh_from_db()
    assert team.rpm_limit is None


def test_a_team_limit_of_zero_pauses_it(admin_client):
    team = TeamFactory(name="ops")
    response = admin_client.post(f"/admin/billing/team/{team.pk}/change/", team_form(rpm_limit="0"))
    assert response.status_code == 302
    assert Team.objects.get(pk=team.pk).rpm_limit == 0


def test_out_of_range_key_limits_are_form_errors(admin_client):
    response = admin_client.post("/admin/billing/virtualkey/add/", {
        "name": "k", "rpm_limit": "2147483648", "tpm_limit": "", "tags": "", "metadata": "{}",
        "budgets-TOTAL_FORMS": "0", "budgets-INITIAL_FORMS": "0",
    })
    assert response.status_code == 200
    assert "rpm_limit" in response.context["adminform"].form.errors
    assert not VirtualKey.objects.exists()
