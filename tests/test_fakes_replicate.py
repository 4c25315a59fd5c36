"""The fake Replicate API is what Replicate's own Python SDK (`replicate`) sends and
accepts: predictions created for official and versioned models, sync mode, polling,
streams, cancel, problem+json errors, model listing.

Plain sync tests: no Django, no database.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import replicate
from replicate.exceptions import ModelError, ReplicateError

from tests.fakes.replicate import FakeReplicate

pytestmark = pytest.mark.timeout(60)
TOKEN = "r8_fake_test_token"
MODEL = "meta/meta-llama-3-8b-instruct"


@pytest.fixture
def fake() -> Iterator[FakeReplicate]:
    with FakeReplicate(api_key=TOKEN, known_models=[MODEL]) as server:
        yield server
    assert server.errors == []  # no exception inside the fake itself


@pytest.fixture
def client(fake: FakeReplicate, monkeypatch) -> replicate.Client:
    monkeypatch.setenv("REPLICATE_POLL_INTERVAL", "0.01")
    return replicate.Client(api_token=TOKEN, base_url=fake.url)


def test_sync_mode_returns_the_finished_prediction(fake, client):
    prediction = client.models.predictions.create(model=MODEL, input={"prompt": "Hi", "max_tokens": 64}, wait=5)

    assert prediction.status == "succeeded"
    assert "".join(prediction.output) == "Hello from fake-replicate."
    assert prediction.metrics["input_token_count"] == 1 and prediction.metrics["output_token_count"] == 3
    sent = fake.last_request
    assert sent.path == f"/v1/models/{MODEL}/predictions"
    assert sent.headers["authorization"] == f"Bearer {TOKEN}" and sent.headers["prefer"] == "wait=5"
    assert sent.body == {"input": {"prompt": "Hi", "max_tokens": 64}}


def test_a_versioned_model_is_polled_until_it_succeeds(fake, client):
    fake.finish_after(3)

    prediction = client.predictions.create(version="abc123", input={"prompt": "Hi"})
    assert prediction.status == "starting"
    prediction.wait()

    assert prediction.status == "succeeded" and "".join(prediction.output) == "Hello from fake-replicate."
    create, *polls = fake.requests
    assert (create.path, create.body) == ("/v1/predictions", {"version": "abc123", "input": {"prompt": "Hi"}})
    assert "prefer" not in create.headers
    assert [r.method for r in polls] == ["GET"] * 3


def test_a_failed_prediction_is_a_model_error(fake, client):
    fake.fail_prediction("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(ModelError) as caught:
        client.run(MODEL, input={"prompt": "Hi"})

    assert caught.value.prediction.status == "failed"
    assert "CUDA out of memory" in caught.value.prediction.error


def test_stream_events_are_what_the_sdk_reads(fake, client):
    fake.reply_text = "One two\nthree."

    events = list(client.stream(MODEL, input={"prompt": "Hi"}))

    assert "".join(str(e) for e in events) == "One two\nthree."
    assert events[-1].event.value == "done" and events[-1].data == "{}"
    assert fake.requests[0].body == {"input": {"prompt": "Hi"}, "stream": True}
    stream_get = fake.requests[1]
    assert stream_get.headers["accept"] == "text/event-stream" and stream_get.path.startswith("/stream/v1/predictions/")


def test_cancel_marks_the_prediction_canceled(fake, client):
    fake.never_finish()
    prediction = client.models.predictions.create(model=MODEL, input={"prompt": "Hi"})

    prediction.cancel()
    prediction.reload()

    assert prediction.status == "canceled"
    assert fake.canceled == [prediction.id]


@pytest.mark.parametrize(("status", "title"), [(401, "Unauthenticated"), (402, "Insufficient credit"),
                                               (429, "Request was throttled.")])
def test_errors_are_problem_details(fake, client, status, title):
    fake.fail(status, headers={"Retry-After": "1"} if status == 429 else None)

    with pytest.raises(ReplicateError) as caught:
        client.models.predictions.create(model=MODEL, input={"prompt": "Hi"})

    assert (caught.value.status, caught.value.title) == (status, title)
    assert caught.value.detail


def test_invalid_input_is_a_422(fake, client):
    with pytest.raises(ReplicateError) as caught:
        client.models.predictions.create(model=MODEL, input={"max_tokens": 5})

    assert caught.value.status == 422 and "prompt is required" in caught.value.detail


def test_unknown_model_is_a_404(fake, client):
    with pytest.raises(ReplicateError) as caught:
        client.models.predictions.create(model="nobody/nothing", input={"prompt": "Hi"})

    assert caught.value.status == 404


def test_models_and_collections_list(fake, client):
    assert [f"{m.owner}/{m.name}" for m in client.models.list().results] == [MODEL]
    collection = client.collections.get("language-models")
    assert collection.slug == "language-models" and [m.name for m in collection.models] == ["meta-llama-3-8b-instruct"]
