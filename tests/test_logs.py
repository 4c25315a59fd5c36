"""gateway_project/logs.py: the request context on every line, the JSON and plain
formats, secret scrubbing in JSON mode, and the contexts of Celery tasks and
websocket messages (never leaking from one unit of work into another)."""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import logging

import pytest
from django.conf import settings

from gateway_project import logs
from providers import secrets

PROVIDER_KEY = "sk-test-logs-provider-key-0123456789"


def _configured_handler(fmt: str) -> tuple[logging.Handler, io.StringIO]:
    """A handler built as settings.LOGGING builds its console handler (its filters by
    name, in order, and the formatter LOG_FORMAT names), writing to a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    console = settings.LOGGING["handlers"]["console"]
    for name in console["filters"]:
        module, _, cls = settings.LOGGING["filters"][name]["()"].rpartition(".")
        handler.addFilter(getattr(importlib.import_module(module), cls)())
    spec = dict(settings.LOGGING["formatters"][fmt])
    module, _, cls = spec.pop("()").rpartition(".")
    handler.setFormatter(getattr(importlib.import_module(module), cls)(spec.get("format")))
    return handler, stream


@pytest.fixture
def capture():
    """capture(fmt) -> a function returning the lines logged so far to logger `t.logs`."""
    made = []

    def make(fmt: str = "json"):
        handler, stream = _configured_handler(fmt)
        logger = logging.getLogger("t.logs")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        made.append((logger, handler))
        return lambda: stream.getvalue().splitlines()

    yield make
    for logger, handler in made:
        logger.removeHandler(handler)
    secrets.forget_all_for_tests()


@pytest.fixture(autouse=True)
def fresh_context():
    token = logs._context.set(None)
    yield
    logs._context.reset(token)


def test_the_console_handler_is_wired_to_the_context_filter_before_scrubbing():
    console = settings.LOGGING["handlers"]["console"]
    assert console["filters"] == ["request_context", "scrub_secrets"]
    assert console["formatter"] == settings.LOG_FORMAT
    assert settings.LOGGING_CONFIG == "gateway_project.logs.configure"


def test_a_json_line_has_the_named_fields_and_the_request_id(capture):
    lines = capture("json")
    log = logging.getLogger("t.logs")
    log.info("outside any request")
    logs.begin_request("req-1")
    log.warning("inside %s", "it")
    first, second = (json.loads(line) for line in lines())
    assert set(first) >= {"time", "level", "logger", "message"} and "request_id" not in first
    assert first["time"].endswith("Z") and first["time"][10] == "T"
    assert second["level"] == "WARNING" and second["logger"] == "t.logs" and second["message"] == "inside it"
    assert second["request_id"] == "req-1"
    assert "trace_id" not in second  # no span active


def test_the_trace_id_of_the_active_span_is_on_the_line(capture):
    trace = pytest.importorskip("opentelemetry.trace")  # optional: lines simply lack trace_id without it

    lines = capture("json")
    span = trace.NonRecordingSpan(trace.SpanContext(trace_id=0xABC, span_id=0x12, is_remote=False,
                                                    trace_flags=trace.TraceFlags(1)))
    with trace.use_span(span):
        logging.getLogger("t.logs").info("traced")
    logging.getLogger("t.logs").info("not traced")
    traced, untraced = (json.loads(line) for line in lines())
    assert traced["trace_id"] == f"{0xABC:032x}" and traced["span_id"] == f"{0x12:016x}"
    assert "trace_id" not in untraced


def test_an_exception_is_one_json_line_with_the_traceback_in_a_field(capture):
    lines = capture("json")
    logs.begin_request("req-exc")
    try:
        {}["missing"]
    except KeyError:
        logging.getLogger("t.logs").exception("lookup failed")
    (line,) = lines()  # one line, however long the traceback
    record = json.loads(line)
    assert record["message"] == "lookup failed" and record["request_id"] == "req-exc"
    assert record["exc_type"] == "KeyError"
    assert record["exception"].startswith("Traceback (most recent call last)") and "'missing'" in record["exception"]


def test_a_provider_key_is_scrubbed_in_json_mode_from_message_and_traceback(capture):
    lines = capture("json")
    secrets.remember(PROVIDER_KEY)
    log = logging.getLogger("t.logs")
    log.error("upstream echoed %s", PROVIDER_KEY)
    try:
        raise RuntimeError(f"auth failed for {PROVIDER_KEY}")
    except RuntimeError:
        log.exception("adapter failed")
    text = "\n".join(lines())
    assert PROVIDER_KEY not in text and PROVIDER_KEY[:12] not in text
    message, failure = (json.loads(line) for line in lines())
    assert message["message"] == "upstream echoed [redacted]"
    assert "auth failed for [redacted]" in failure["exception"]


def test_plain_mode_keeps_its_format_and_adds_the_request_id(capture):
    lines = capture("plain")
    log = logging.getLogger("t.logs")
    log.info("no request")
    logs.begin_request("req-plain")
    log.info("in a request", extra={"fields": {"route": "chat", "status": "success"}})
    outside, inside = lines()
    assert outside.endswith(" INFO t.logs no request")
    assert inside.endswith(" INFO t.logs request_id=req-plain in a request route=chat status=success")


def test_handlers_configured_elsewhere_are_adopted_only_in_json_mode(settings):
    logger = logging.getLogger("uvicorn.logs-test")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logs.adopt_handlers(logger.name)
        assert not isinstance(handler.formatter, logs.JsonFormatter)  # plain: the server's own format stays
        settings.LOG_FORMAT = "json"
        logs.adopt_handlers(logger.name)
        logs.adopt_handlers(logger.name)  # idempotent
        assert sum(isinstance(f, logs.RequestContextFilter) for f in handler.filters) == 1
        logs.begin_request("req-uv")
        logger.info("Started server process")
    finally:
        logger.removeHandler(handler)
    assert json.loads(stream.getvalue())["request_id"] == "req-uv"


def test_a_call_takes_the_request_id_once_and_a_second_call_gets_its_own():
    ctx = logs.begin_request()
    assert logs.claim_request_id() == ctx.request_id and ctx.claimed
    second = logs.claim_request_id()
    assert second != ctx.request_id and logs.current_request_id() == second


def test_a_call_outside_any_request_binds_a_fresh_id():
    assert logs.current() is None
    request_id = logs.claim_request_id()
    assert logs.current_request_id() == request_id and len(request_id) == 32


async def test_shared_work_started_by_a_request_can_run_detached_from_it():
    logs.begin_request("req-trigger")
    seen = await asyncio.get_running_loop().create_task(_current_id(), context=logs.detached())
    assert seen is None and logs.current_request_id() == "req-trigger"


async def _current_id() -> str | None:
    return logs.current_request_id()


async def test_concurrent_requests_never_see_each_others_id(capture):
    lines = capture("json")
    log = logging.getLogger("t.logs")

    async def request(n: int) -> str:
        ctx = logs.begin_request(f"req-{n}")
        for step in range(5):
            log.info("request %d step %d", n, step)
            await asyncio.sleep(0.001 * ((n * 7 + step) % 3))  # interleave the requests

        async def spawned() -> None:  # a task the request starts keeps its id
            log.info("request %d background", n)

        await asyncio.create_task(spawned())
        return ctx.request_id

    ids = await asyncio.gather(*(request(n) for n in range(20)))
    assert ids == [f"req-{n}" for n in range(20)]
    records = [json.loads(line) for line in lines()]
    assert len(records) == 20 * 6
    for record in records:
        assert record["request_id"] == f"req-{record['message'].split()[1]}"


def test_a_celery_task_s_id_is_its_lines_request_id_and_is_reset_after(capture):
    from celery.signals import task_postrun, task_prerun

    import gateway_project.celery  # noqa: F401 - connects the receivers

    lines = capture("json")

    class Task:
        name = "billing.tasks.example"

    log = logging.getLogger("t.logs")
    task_prerun.send(sender=Task, task_id="task-123", task=Task, args=(), kwargs={})
    log.info("inside the task")
    task_postrun.send(sender=Task, task_id="task-123", task=Task, args=(), kwargs={}, retval=None, state="SUCCESS")
    log.info("after the task")
    inside, after = (json.loads(line) for line in lines())
    assert inside["request_id"] == "task-123" and inside["task"] == "billing.tasks.example"
    assert "request_id" not in after and "task" not in after


async def test_each_websocket_message_has_its_own_context(capture):
    from channels.testing import WebsocketCommunicator

    from streaming.consumers import PingConsumer

    lines = capture("json")

    class LoggingPing(PingConsumer):
        async def receive_json(self, content, **kwargs):
            logging.getLogger("t.logs").info("frame %s", content["n"])
            await super().receive_json(content, **kwargs)

    communicator = WebsocketCommunicator(LoggingPing.as_asgi(), "/ws/ping/")
    assert (await communicator.connect())[0]
    for n in range(3):
        await communicator.send_json_to({"n": n})
        await communicator.receive_json_from()
    await communicator.disconnect()
    records = [json.loads(line) for line in lines()]
    assert [r["message"] for r in records] == ["frame 0", "frame 1", "frame 2"]
    assert len({r["request_id"] for r in records}) == 3 and all(r["ws_path"] == "/ws/ping/" for r in records)
    assert logs.current() is None  # nothing left bound in the test's own context
