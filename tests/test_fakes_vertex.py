"""Prove the fake Vertex AI and its token endpoint faithful, with Google's own clients:
google-genai in Vertex mode, authenticated by google-auth's service-account credentials
(which sign the JWT assertion and POST it to the credential's token_uri, our fake).

Plain sync tests: no Django, no database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from google import genai
from google.auth.exceptions import RefreshError
from google.genai import errors, types
from google.oauth2 import service_account

from tests.fakes.vertex import FakeVertex

pytestmark = pytest.mark.timeout(60)
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


@pytest.fixture
def fake() -> Iterator[FakeVertex]:
    with FakeVertex(project="test-project", location="us-central1") as server:
        yield server
    assert server.errors == []


def _client(fake: FakeVertex, credential: str, *, project: str = "test-project") -> genai.Client:
    creds = service_account.Credentials.from_service_account_info(json.loads(credential), scopes=SCOPES)
    return genai.Client(vertexai=True, project=project, location="us-central1", credentials=creds,
                        http_options=types.HttpOptions(base_url=fake.url, api_version="v1",
                                                       retry_options=types.HttpRetryOptions(attempts=1)))


def test_google_auth_gets_a_token_and_generate_content_uses_it(fake: FakeVertex) -> None:
    client = _client(fake, fake.credential())
    response = client.models.generate_content(model="gemini-2.5-flash", contents="Say hello to me")
    assert response.text == "Hello from fake-gemini."
    token, call = fake.requests
    assert token.path == "/token" and token.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert call.path == "/v1/projects/test-project/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
    assert call.headers["authorization"] == f"Bearer {fake.issued[0]}"
    (claims,) = fake.assertions
    assert claims["iss"] == fake.client_email and claims["scope"] == SCOPES[0]
    assert claims["aud"] == "https://oauth2.googleapis.com/token"  # what google-auth sends, whatever the token_uri


def test_stream_and_predict_embeddings(fake: FakeVertex) -> None:
    client = _client(fake, fake.credential())
    fake.reply_text = "One two three."
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="Say hello to me"))
    assert "".join(c.text or "" for c in chunks) == "One two three."
    assert fake.last_request.query == {"alt": "sse"}
    result = client.models.embed_content(model="text-embedding-005", contents=["first text", "second"],
                                         config=types.EmbedContentConfig(output_dimensionality=8))
    assert [len(e.values) for e in result.embeddings] == [8, 8]
    assert [e.statistics.token_count for e in result.embeddings] == [2, 1]
    assert fake.last_request.path.endswith("/models/text-embedding-005:predict")
    assert fake.token_requests == 1  # the SDK reuses its token


def test_a_revoked_token_is_a_401_and_another_project_a_403(fake: FakeVertex) -> None:
    credential = fake.credential()
    client = _client(fake, credential)
    client.models.generate_content(model="gemini-2.5-flash", contents="Hi")
    fake.revoke_tokens()
    with pytest.raises(errors.ClientError) as revoked:
        client.models.generate_content(model="gemini-2.5-flash", contents="Hi")
    assert (revoked.value.code, revoked.value.status) == (401, "UNAUTHENTICATED")
    other = _client(fake, credential, project="other-project")
    with pytest.raises(errors.ClientError) as elsewhere:
        other.models.generate_content(model="gemini-2.5-flash", contents="Hi")
    assert (elsewhere.value.code, elsewhere.value.status) == (403, "PERMISSION_DENIED")


def test_an_assertion_signed_with_another_key_is_refused(fake: FakeVertex) -> None:
    stale = fake.credential()
    fake.credential()  # the key was rotated: the old one no longer verifies
    client = _client(fake, stale)
    with pytest.raises(RefreshError, match="invalid_grant"):
        client.models.generate_content(model="gemini-2.5-flash", contents="Hi")
    assert fake.issued == []
