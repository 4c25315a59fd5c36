"""Schemathesis over the whole OpenAPI schema (/api and /v1) against the live gateway,
with a staff token and a valid virtual key: whatever it generates, never a 5xx.

Bounded for the normal test suite: FUZZ_EXAMPLES examples per operation and phase. The
schema is the one /api/schema/ serves (generated here at collection, which needs no
database); the /v1 chat calls that pass validation reach a fake provider."""

from __future__ import annotations

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import spectacular_settings
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

FUZZ_EXAMPLES = 10
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

spec = SchemaGenerator(urlconf=spectacular_settings.SERVE_URLCONF).get_schema(request=None, public=True)
schema = schemathesis.openapi.from_dict(spec)
# Credentials are ours (below), not generated: a fuzzed token only ever meets the 401 path.
schema.config.generation.update(max_examples=FUZZ_EXAMPLES, with_security_parameters=False)


def staff_token() -> str:
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from gateway_admin.roles import FINANCE, KEY_MANAGERS, grant

    user = User.objects.create_user("fuzz-staff", password="x", is_staff=True)
    grant(user, KEY_MANAGERS, FINANCE)
    return Token.objects.create(user=user).key


@pytest.fixture
def credentials(gateway, build, fake_openai) -> dict[str, dict[str, str]]:
    build.openai_route(fake_openai)
    return {"/v1": {"Authorization": f"Bearer {build.key(name='fuzz')}"},
            "/api": {"Authorization": f"Token {staff_token()}"}}


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_5xx(case, gateway, credentials):
    headers = credentials["/v1" if case.path.startswith("/v1") else "/api"]
    case.call_and_validate(base_url=gateway, headers=headers, checks=[not_a_server_error])
