"""Prove the fake Bedrock server is faithful, using botocore's own bedrock-runtime client
(its serializer, SigV4 signer, restJson error parser and event-stream parser) as client.

Plain sync tests: no Django, no database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import botocore.session
import pytest
from botocore.config import Config
from botocore.eventstream import EventStream, EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError
from botocore.parsers import EventStreamJSONParser, RestJSONParser

from providers.adapters.bedrock_translate import BROKEN_STOP_REASONS, STOP_REASONS
from tests.fakes.bedrock import FakeBedrock, reasoning_signature
from tests.fakes.eventstream import corrupt, encode_message, event, exception

pytestmark = pytest.mark.timeout(60)

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
USER = [{"role": "user", "content": [{"text": "Say hello to the gateway"}]}]
WEATHER_TOOL = {"toolSpec": {"name": "get_weather", "description": "Current weather for a city",
                             "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}}


@pytest.fixture
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as server:
        yield server
    assert server.errors == []


def _client(fake: FakeBedrock, *, secret: str | None = None, region: str = "us-east-1", service: str = "bedrock-runtime"):
    return botocore.session.get_session().create_client(
        service, region_name=region, endpoint_url=fake.base_url, aws_access_key_id=fake.access_key,
        aws_secret_access_key=secret or fake.secret_key, config=Config(retries={"total_max_attempts": 1}))


@pytest.fixture
def runtime(fake: FakeBedrock):
    return _client(fake)


def _stream_events(response) -> list[dict]:
    return list(response["stream"])


# -- Converse -----------------------------------------------------------------------------------------
def test_converse_answer_is_parsed_by_botocore(fake, runtime):
    answer = runtime.converse(modelId=MODEL, messages=USER, system=[{"text": "Be brief."}],
                              inferenceConfig={"maxTokens": 50, "temperature": 0.5})
    assert answer["output"]["message"] == {"role": "assistant", "content": [{"text": "Hello from fake-bedrock."}]}
    assert answer["stopReason"] == "end_turn"
    assert answer["usage"]["outputTokens"] == 3 and answer["usage"]["inputTokens"] > 0
    sent = fake.last_request
    assert sent.path == "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"  # ':' percent-encoded
    assert sent.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={fake.access_key}/")
    assert "/us-east-1/bedrock/aws4_request" in sent.headers["authorization"]
    assert sent.body["system"] == [{"text": "Be brief."}] and sent.body["inferenceConfig"]["maxTokens"] == 50


def test_a_wrong_secret_is_refused_with_403_invalid_signature(fake):
    with pytest.raises(ClientError) as exc:
        _client(fake, secret="not-the-secret").converse(modelId=MODEL, messages=USER)
    error = exc.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "InvalidSignatureException"
    assert "signature we calculated does not match" in error["Error"]["Message"]


def test_a_wrong_region_scope_is_refused(fake):
    with pytest.raises(ClientError) as exc:
        _client(fake, region="eu-west-1").converse(modelId=MODEL, messages=USER)
    assert exc.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_scripted_errors_reach_botocore_with_their_aws_codes(fake, runtime):
    fake.fail(429)
    with pytest.raises(ClientError) as exc:
        runtime.converse(modelId=MODEL, messages=USER)
    assert exc.value.response["Error"]["Code"] == "ThrottlingException"
    assert type(exc.value).__name__ == "ThrottlingException"  # botocore's modelled exception class
    fake.fail(400, body={"message": "Input is too long for requested model."},
              headers={"x-amzn-ErrorType": "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"})
    with pytest.raises(ClientError) as exc:
        runtime.converse(modelId=MODEL, messages=USER)
    assert exc.value.response["Error"] == {"Code": "ValidationException", "Message": "Input is too long for requested model."}


def test_the_fake_validates_like_bedrock(fake, runtime):
    with pytest.raises(ClientError, match="alternate between user and assistant"):
        runtime.converse(modelId=MODEL, messages=[*USER, *USER])
    with pytest.raises(ClientError, match="toolConfig field must be defined"):
        runtime.converse(modelId=MODEL, messages=[
            *USER, {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"json": {"ok": True}}]}}]}])


def test_tool_use_image_and_signed_reasoning_round_trip_through_botocore(fake, runtime):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
    answer = runtime.converse(
        modelId=MODEL, toolConfig={"tools": [WEATHER_TOOL], "toolChoice": {"auto": {}}},
        messages=[{"role": "user", "content": [{"text": "What is the weather in Paris and London?"},
                                               {"image": {"format": "png", "source": {"bytes": png}}}]}],
        additionalModelRequestFields={"thinking": {"type": "enabled", "budget_tokens": 1024}})
    content = answer["output"]["message"]["content"]
    thought = content[0]["reasoningContent"]["reasoningText"]
    assert thought["signature"] == reasoning_signature(thought["text"])
    assert [c["toolUse"]["input"] for c in content[1:]] == [{"city": "Paris"}, {"city": "London"}]
    assert answer["stopReason"] == "tool_use"
    # botocore sent the image bytes base64-encoded in the JSON, as the gateway does
    assert fake.last_request.body["messages"][0]["content"][1]["image"]["source"]["bytes"] == "iVBORw0KGgoAAAAAAAAAAA=="


def test_cache_points_are_written_then_read(fake, runtime):
    system = [{"text": "A long shared system prompt " * 5}, {"cachePoint": {"type": "default"}}]
    first = runtime.converse(modelId=MODEL, messages=USER, system=system)["usage"]
    second = runtime.converse(modelId=MODEL, messages=USER, system=system)["usage"]
    assert first["cacheWriteInputTokens"] > 0 and first["cacheReadInputTokens"] == 0
    assert second["cacheReadInputTokens"] == first["cacheWriteInputTokens"] and second["cacheWriteInputTokens"] == 0


# -- ConverseStream -----------------------------------------------------------------------------------
def test_converse_stream_is_parsed_by_botocore_event_stream(fake, runtime):
    events = _stream_events(runtime.converse_stream(modelId=MODEL, messages=USER))
    assert fake.last_request.path.endswith("/converse-stream")
    assert list(events[0]) == ["messageStart"] and events[0]["messageStart"]["role"] == "assistant"
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == "Hello from fake-bedrock."
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 3


def test_streamed_tool_use_starts_with_content_block_start_and_partial_json(fake, runtime):
    events = _stream_events(runtime.converse_stream(
        modelId=MODEL, toolConfig={"tools": [WEATHER_TOOL]},
        messages=[{"role": "user", "content": [{"text": "weather in Tokyo?"}]}]))
    start = next(e["contentBlockStart"] for e in events if "contentBlockStart" in e)
    assert start["start"]["toolUse"]["name"] == "get_weather"
    partial = "".join(e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events if "contentBlockDelta" in e)
    assert partial == '{"city": "Tokyo"}'
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"


def test_an_exception_inside_the_stream_is_raised_by_botocore(fake, runtime):
    fake.stream_exception("throttlingException", "Too many tokens, please wait before trying again.", after_chunks=1)
    stream = runtime.converse_stream(modelId=MODEL, messages=USER)["stream"]
    with pytest.raises(EventStreamError) as exc:
        list(stream)
    assert exc.value.response["Error"]["Code"] == "throttlingException"
    assert "Too many tokens" in exc.value.response["Error"]["Message"]


def test_encoder_frames_are_what_botocore_decodes_and_a_corrupt_crc_is_refused():
    buffer = EventStreamBuffer()
    buffer.add_data(event("messageStart", {"role": "assistant"}) + exception("modelStreamErrorException", "boom")
                    + encode_message({":event-type": "x", "blob": b"\x00\x01"}, b"raw"))
    messages = list(buffer)
    assert messages[0].headers == {":event-type": "messageStart", ":content-type": "application/json", ":message-type": "event"}
    assert messages[0].payload == b'{"role":"assistant"}'
    assert messages[1].headers[":exception-type"] == "modelStreamErrorException"
    assert messages[2].headers["blob"] == b"\x00\x01" and messages[2].payload == b"raw"
    broken = EventStreamBuffer()
    broken.add_data(corrupt(event("messageStart", {"role": "assistant"})))
    with pytest.raises(Exception, match="(?i)checksum|crc"):
        list(broken)


# -- control plane -----------------------------------------------------------------------------------------
def test_list_foundation_models_through_the_bedrock_control_plane_client(fake):
    control = _client(fake, service="bedrock")
    summaries = control.list_foundation_models()["modelSummaries"]
    assert MODEL in [s["modelId"] for s in summaries]
    assert fake.last_request.path == "/foundation-models"


# -- the golden fixtures are what botocore accepts --------------------------------------------------------
GOLDEN = sorted((Path(__file__).parent / "golden" / "bedrock").glob("*.json"))


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self):
        yield self.data


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_fixture_is_parsed_by_botocore(path):
    """Each tests/golden/bedrock answer, through botocore's own restJson / event-stream
    parsers for Converse / ConverseStream: a fixture botocore could not read would prove
    nothing about Bedrock."""
    case = json.loads(path.read_text())
    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    if "stream" in case:
        shape = model.operation_model("ConverseStream").output_shape.members["stream"]
        frames = b"".join(encode_message(e["headers"], e["payload"]) for e in case["stream"]["events"])
        stream = EventStream(_Body(frames), shape, EventStreamJSONParser(), "ConverseStream")
        events, error = [], None
        try:
            events.extend(stream)
        except EventStreamError as exc:
            error = exc.response["Error"]["Code"]
        assert events and list(events[0]) == ["messageStart"]
        assert error == next((e["headers"][":exception-type"] for e in case["stream"]["events"]
                              if e["headers"][":message-type"] == "exception"), None)
        return
    response = case["response"]
    raw = response["raw"].encode() if "raw" in response else json.dumps(response["body"]).encode()
    parsed = RestJSONParser().parse(
        {"status_code": response["status"], "body": raw,
         "headers": {k.lower(): v for k, v in response.get("headers", {}).items()}},
        model.operation_model("Converse").output_shape)
    if response["status"] >= 400:
        assert parsed["Error"]["Code"] == response["headers"]["x-amzn-ErrorType"].split(":")[0]
        assert parsed["Error"]["Message"] == response["body"]["message"]
    elif "raw" not in response:
        assert parsed["output"]["message"]["content"] and parsed["stopReason"] in {*STOP_REASONS, *BROKEN_STOP_REASONS}
