"""The pgvector backend against the real PostgreSQL at 127.0.0.1:5432, in its own database
(cache_vectors_test, created here; scripts/test.sh builds and installs pgvector). Skipped,
loudly, only when the server or the extension is missing."""

from __future__ import annotations

import asyncio
import os

import psycopg
import pytest

from routing.cache.semantic import DEFAULT_THRESHOLD, EmbeddingIndex, semantic_available
from routing.cache.semantic.embedder import DIM, get_embedder
from routing.cache.semantic.pgvector import TABLE, PgVectorIndex

SERVER = os.environ.get("TEST_PGVECTOR_SERVER", "postgresql://postgres@127.0.0.1:5432")
DB_URL = f"{SERVER}/cache_vectors_test"


def _prepare() -> str | None:
    try:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True, connect_timeout=3) as conn:
            if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone() is None:
                return "the pgvector extension is not installed in this PostgreSQL (scripts/test.sh installs it)"
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'cache_vectors_test'").fetchone() is None:
                conn.execute("CREATE DATABASE cache_vectors_test")
        with psycopg.connect(DB_URL, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    except psycopg.OperationalError as exc:
        return f"PostgreSQL at {SERVER} is not reachable: {exc}"
    return None


_WHY = _prepare() if semantic_available()[0] else semantic_available()[1]
pytestmark = pytest.mark.skipif(_WHY is not None, reason=f"!! pgvector tests SKIPPED: {_WHY}")


@pytest.fixture
async def idx():
    index = EmbeddingIndex(PgVectorIndex(DB_URL, DIM), get_embedder().embed)
    yield index
    await index.purge("")
    await index.aclose()


async def test_schema_is_created_idempotently_with_its_indexes(idx: EmbeddingIndex) -> None:
    await idx.add("ns", "How do I reset my password?", "e1", 60)
    await PgVectorIndex(DB_URL, DIM)._create_schema()  # a second process starting
    with psycopg.connect(DB_URL) as conn:
        names = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", (TABLE,))}
        row = conn.execute(f"SELECT features::text FROM {TABLE}").fetchone()
    assert {f"{TABLE}_hnsw", f"{TABLE}_expires", f"{TABLE}_pkey"} <= names
    assert "password" not in row[0]  # features are hashes, the text is not stored


async def test_paraphrase_hits_and_look_alikes_miss(idx: EmbeddingIndex) -> None:
    await idx.add("ns", "What is 15% of 80?", "e80", 60)
    await idx.add("ns", "How do I enable dark mode?", "dark", 60)
    match = await idx.lookup("ns", "What's fifteen percent of 80?", DEFAULT_THRESHOLD)
    assert match is not None and match.entry_id == "e80"
    assert await idx.lookup("ns", "What is 15% of 90?", 0.5) is None
    assert await idx.lookup("ns", "How do I disable dark mode?", 0.5) is None


async def test_namespaces_ttl_and_purge(idx: EmbeddingIndex) -> None:
    await idx.add("3:0:team:a:c", "How do I reset my password?", "a", 60)
    await idx.add("3:0:team:b:c", "How do I reset my password?", "b", 1)
    await idx.add("30:0:team:a:c", "How do I reset my password?", "c", 60)
    assert (await idx.lookup("3:0:team:a:c", "How do I reset my password?", 0.5)).entry_id == "a"
    assert (await idx.lookup("3:0:team:b:c", "How do I reset my password?", 0.5)).entry_id == "b"
    await asyncio.sleep(1.2)
    assert await idx.lookup("3:0:team:b:c", "How do I reset my password?", 0.5) is None
    assert await idx.purge("3:") == 2  # "a" and the expired "b"; "30:" untouched
    assert await idx.lookup("3:0:team:a:c", "How do I reset my password?", 0.5) is None
    assert (await idx.lookup("30:0:team:a:c", "How do I reset my password?", 0.5)).entry_id == "c"


async def test_an_unreachable_server_is_a_miss_not_an_error() -> None:
    broken = EmbeddingIndex(PgVectorIndex("postgresql://postgres@127.0.0.1:1/none", DIM), get_embedder().embed)
    assert await broken.lookup("ns", "How do I reset my password?", 0.5) is None
    await broken.add("ns", "How do I reset my password?", "e", 60)  # logged, not raised
