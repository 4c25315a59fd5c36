"""The semantic cache through a running gateway: a paraphrase is answered from the
cache with its similarity; a look-alike with another number is not."""

from __future__ import annotations

import time

import pytest

from routing.cache import semantic_index
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(semantic_index() is None, reason="the embedding extra is not installed")]


def ask(client, text):
    return client.chat.completions.with_raw_response.create(
        model="chat-default", messages=[{"role": "user", "content": text}], temperature=0)


def test_a_paraphrase_hits_and_a_look_alike_misses(fake_openai, build, openai_client):
    build.openai_route(fake_openai, cache_mode="semantic")
    client = openai_client(build.key())
    fake_openai.reply("Paris.")
    assert ask(client, "What is the capital of France?").headers["x-gateway-cache"] == "miss"
    wait_for(lambda: ask(client, "What is the capital of France?").headers["x-gateway-cache"] == "hit")
    time.sleep(0.5)  # the semantic index entry is added just after the exact one
    hit = ask(client, "Which city is the capital of France?")
    assert hit.headers["x-gateway-cache"] == "semantic"
    assert hit.parse().choices[0].message.content == "Paris."
    assert 0.5 < float(hit.headers["x-gateway-cache-similarity"]) <= 1
    again = wait_for(lambda: (r := ask(client, "Which city is the capital of France?")).headers["x-gateway-cache"]
                     == "hit" and r)  # the paraphrase now has its own exact entry
    assert again.parse().choices[0].message.content == "Paris."
    fake_openai.reply("12")
    ask(client, "What is 15% of 80?")
    wait_for(lambda: ask(client, "What is 15% of 80?").headers["x-gateway-cache"] == "hit")
    assert ask(client, "What is 15% of 90?").headers["x-gateway-cache"] == "miss"
