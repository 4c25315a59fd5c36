"""Fake LLM provider servers speaking each provider's real HTTP wire format.

Usage::

    with FakeOpenAI(api_key="sk-test") as fake:
        fake.fail(429, headers={"Retry-After": "1"})
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
"""

from .anthropic import FakeAnthropic
from .base import Behaviour, Exchange, FakeServer, RecordedRequest
from .ollama import FakeOllama
from .openai import FakeOpenAI
from .text import Answer

__all__ = [
    "Answer",
    "Behaviour",
    "Exchange",
    "FakeAnthropic",
    "FakeOllama",
    "FakeOpenAI",
    "FakeServer",
    "RecordedRequest",
]
