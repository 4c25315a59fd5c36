"""Many clients at once: every request answered, recorded exactly once."""

from __future__ import annotations

import asyncio

import openai
import pytest

from billing.models import UsageRecord
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_requests_each_get_one_usage_record(fake_openai, fake_openai_b, build, gateway):
    fake_openai.chunk_delay = 0.005
    first = build.model(build.provider(fake_openai, name="first"))
    second = build.model(build.provider(fake_openai_b, name="second"))
    build.route("chat-default", first, second)
    key = build.key()
    fake_openai.fail(500, times=10)  # some requests fall back, the rest do not

    async def run() -> list:
        client = openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0, timeout=30)

        async def one(i: int):
            if i % 2:
                stream = await client.chat.completions.create(
                    model="chat-default", messages=[{"role": "user", "content": f"q{i}"}], stream=True
                )
                return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            answer = await client.chat.completions.create(model="chat-default", messages=[{"role": "user", "content": f"q{i}"}])
            return answer.choices[0].message.content

        try:
            return await asyncio.gather(*(one(i) for i in range(60)))
        finally:
            await client.close()

    answers = asyncio.run(run())
    assert all(answers)
    assert wait_for(lambda: UsageRecord.objects.count() >= 60, timeout=10)
    assert UsageRecord.objects.count() == 60
    assert UsageRecord.objects.filter(status="success").count() == 60
    assert UsageRecord.objects.filter(attempts=2).count() == 10
    assert fake_openai.request_count + fake_openai_b.request_count == 70
