"""The semantic index with the real embedding model (loaded once per session): paraphrases
hit, look-alikes miss, namespaces never mix, TTL, purge, the LRU bound, concurrent use, and
the labelled corpus at the default threshold."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from routing.cache.semantic import DEFAULT_THRESHOLD, EmbeddingIndex, semantic_available
from routing.cache.semantic.embedder import DIM, get_embedder
from routing.cache.semantic.guard import agree, features
from routing.cache.semantic.memory import MemoryVectorIndex

pytestmark = pytest.mark.skipif(not semantic_available()[0], reason=semantic_available()[1])


def index(max_entries: int = 1000) -> EmbeddingIndex:
    return EmbeddingIndex(MemoryVectorIndex(DIM, max_entries), get_embedder().embed)


async def test_a_paraphrase_hits_with_its_similarity() -> None:
    idx = index()
    await idx.add("ns", "How do I reset my password?", "e1", 60)
    match = await idx.lookup("ns", "I forgot my password, how can I reset it?", DEFAULT_THRESHOLD)
    assert match is not None and match.entry_id == "e1"
    assert DEFAULT_THRESHOLD <= match.similarity <= 1.0


@pytest.mark.parametrize(("stored", "asked"), [
    ("What is 15% of 80?", "What is 15% of 90?"),  # numbers
    ("What's fifteen percent of 80?", "What's fifty percent of 80?"),  # number words
    ("Who is the CEO of Apple?", "Who is the CEO of Microsoft?"),  # names
    ("Which foods are safe for dogs?", "Which foods are not safe for dogs?"),  # negation
    ("Convert 5 km to miles", "Convert 5 miles to km"),  # units
    ("What's the weather in Paris tomorrow?", "What's the weather in Paris today?"),  # dates
    ("What is the largest planet in the solar system?", "What is the smallest planet in the solar system?"),
    ("How do I enable dark mode?", "How do I disable dark mode?"),
    ("Can dogs eat chocolate?", "Can cats eat chocolate?"),  # one swapped word
])
async def test_look_alikes_miss_although_their_vectors_are_close(stored: str, asked: str) -> None:
    idx = index()
    await idx.add("ns", stored, "e1", 60)
    assert await idx.lookup("ns", asked, 0.5) is None
    assert await idx.lookup("ns", stored, DEFAULT_THRESHOLD) is not None  # the stored one still answers


async def test_the_nearest_look_alike_is_skipped_for_a_farther_paraphrase() -> None:
    idx = index()
    await idx.add("ns", "What is 15% of 80?", "eighty", 60)
    await idx.add("ns", "What's fifteen percent of 90?", "ninety", 60)
    match = await idx.lookup("ns", "What is 15% of 90?", 0.7)
    assert match is not None and match.entry_id == "ninety"


async def test_entries_match_only_within_their_namespace() -> None:
    idx = index()
    await idx.add("route:1:team:a", "How do I reset my password?", "a", 60)
    assert await idx.lookup("route:1:team:b", "How do I reset my password?", 0.5) is None
    assert (await idx.lookup("route:1:team:a", "How do I reset my password?", 0.5)).entry_id == "a"


async def test_an_entry_expires_after_its_ttl() -> None:
    idx = index()
    await idx.add("ns", "How do I reset my password?", "e1", 1)
    assert await idx.lookup("ns", "How do I reset my password?", 0.5) is not None
    await asyncio.sleep(1.1)
    assert await idx.lookup("ns", "How do I reset my password?", 0.5) is None
    assert len(idx.store) == 0  # the search swept it


async def test_purge_deletes_the_namespaces_under_a_prefix() -> None:
    idx = index()
    await idx.add("7:0:team:a:x", "How do I reset my password?", "a", 60)
    await idx.add("7:0:team:b:y", "How do I reset my password?", "b", 60)
    await idx.add("70:0:team:a:x", "How do I reset my password?", "c", 60)
    assert await idx.purge("7:") == 2
    assert await idx.lookup("7:0:team:a:x", "How do I reset my password?", 0.5) is None
    assert await idx.lookup("70:0:team:a:x", "How do I reset my password?", 0.5) is not None


def test_the_index_is_bounded_and_evicts_the_least_recently_used() -> None:
    store = MemoryVectorIndex(4, max_entries=3)
    f = features("x")
    vec = np.array([1, 0, 0, 0], dtype=np.float32)
    for i in range(3):
        store.add(f"ns{i % 2}", f"e{i}", vec, f, 60)
    store.touch("ns0", "e0")  # e0 used: e1 is now the oldest
    store.add("ns1", "e3", vec, f, 60)
    assert len(store) == 3
    assert {c.entry_id for c in store.search("ns1", vec, 8, 0.0)} == {"e3"}
    assert {c.entry_id for c in store.search("ns0", vec, 8, 0.0)} == {"e0", "e2"}


def test_concurrent_adds_searches_and_purges_keep_the_index_consistent() -> None:
    store = MemoryVectorIndex(8, max_entries=500)
    f = features("x")
    rng = np.random.default_rng(1)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(400):
                v = rng.standard_normal(8).astype(np.float32)
                v /= np.linalg.norm(v)
                ns = f"{worker % 3}:{i % 5}"
                store.add(ns, f"{worker}-{i}", v, f, 60)
                for c in store.search(ns, v, 4, -1.0):
                    assert c.entry_id.count("-") == 1
                if i % 97 == 0:
                    store.purge(f"{worker % 3}:")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store) <= 500
    live = sum(space.size for space in store._spaces.values())
    assert live == len(store)  # the LRU and the matrices agree
    for space in store._spaces.values():
        assert all(space.row_of[e] == r for r, e in enumerate(space.ids))


def test_the_guard_features_hold_no_text_and_round_trip() -> None:
    f = features("Who is the CEO of Apple? Call 555 0100 about `deploy.sh`")
    data = f.to_json()
    assert "apple" not in repr(data).lower() and "deploy" not in repr(data)
    assert type(f).from_json(data) == f
    assert agree(f, type(f).from_json(data)) is None


async def test_lookups_run_off_the_event_loop() -> None:
    idx = index()
    await idx.add("ns", "How do I reset my password?", "e1", 60)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    t0 = time.perf_counter()
    for _ in range(5):
        await idx.lookup("ns", "How can I reset my password?", DEFAULT_THRESHOLD)
    elapsed = time.perf_counter() - t0
    task.cancel()
    assert ticks >= elapsed / 0.001 * 0.3  # the loop kept ticking while embeddings ran


def test_the_labelled_pairs_reach_their_targets_on_tuning() -> None:
    from routing.cache.corpus.scoring import decide, load, score

    pairs = load("tuning")
    assert len(pairs) + len(load("holdout")) >= 300
    s = score(decide(pairs, get_embedder().embed), DEFAULT_THRESHOLD)
    assert s.precision >= 0.98, s.wrong
    assert s.hit_rate >= 0.65
