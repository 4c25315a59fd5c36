"""The pgvector backend against the real PostgreSQL at 127.0.0.1:5432, in its own database
(cache_vectors_test, created here; scripts/test.sh builds and installs pgvector). Skipped,
loudly, only when the server or the extension is missing."""

from __future__ import annotations

import asyncio
import json
import os

import numpy as np
import psycopg
import pytest

from routing.cache.semantic import DEFAULT_THRESHOLD, EmbeddingIndex, semantic_available
from routing.cache.semantic.embedder import DIM, get_embedder
from routing.cache.semantic.guard import features
from routing.cache.semantic.pgvector import (EF_SEARCH, HNSW_EF_CONSTRUCTION, HNSW_M, SEARCH_SQL, TABLE, PgVectorIndex,
                                             index_statements, session_settings)

SERVER = os.environ.get("TEST_PGVECTOR_SERVER", "postgresql://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("TEST_PGVECTOR_DB", "cache_vectors_test")  # another name keeps parallel runs apart
DB_URL = f"{SERVER}/{DB_NAME}"


def _prepare() -> str | None:
    try:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True, connect_timeout=3) as conn:
            if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone() is None:
                return "the pgvector extension is not installed in this PostgreSQL (scripts/test.sh installs it)"
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')
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
    with psycopg.connect(DB_URL) as conn:
        options = conn.execute("SELECT reloptions FROM pg_class WHERE relname = %s", (f"{TABLE}_hnsw",)).fetchone()[0]
    assert set(options) == {f"m={HNSW_M}", f"ef_construction={HNSW_EF_CONSTRUCTION}"}


async def test_every_pooled_connection_searches_with_the_session_settings(idx: EmbeddingIndex) -> None:
    pool = await idx.store._pool()
    async with pool.connection() as a, pool.connection() as b:  # two connections of the pool
        for conn in (a, b):
            cur = await conn.execute("SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan'),"
                                     " current_setting('plan_cache_mode'), current_setting('jit')")
            assert await cur.fetchone() == (str(EF_SEARCH), "relaxed_order", "force_custom_plan", "off")


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


async def test_the_namespace_filter_finds_k_rows_of_a_namespace_whose_neighbours_are_elsewhere(
        idx: EmbeddingIndex) -> None:
    # 3,000 rows of namespace "crowd" lie nearer the query than any of the 3,000 of "mine",
    # and the planner takes the HNSW index for "mine" (asserted): a scan that stopped at
    # ef_search candidates would find none of "mine". The search must still return k rows
    # of "mine" (the iterative scan), nearly the nearest ones, and nothing of "crowd"; also
    # once psycopg has prepared the statement (after 5 runs); and for a namespace of a few
    # rows, the planner's exact scan by the primary key.
    from pgvector.psycopg import register_vector
    from psycopg.types.json import Jsonb

    rng = np.random.default_rng(5)
    centre = _unit(rng.standard_normal(DIM))
    crowd = _unit(centre + 0.02 * rng.standard_normal((3000, DIM)))
    mine = _unit(centre + 0.045 * rng.standard_normal((3000, DIM)))
    few = _unit(centre + 0.045 * rng.standard_normal((5, DIM)))
    assert (crowd @ centre).min() > (mine @ centre).max()
    feats = Jsonb(features("x").to_json())
    await idx.store._pool()  # the schema
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        register_vector(conn)
        conn.execute(f"DROP INDEX {TABLE}_hnsw")  # built once after the rows: faster than 6,000 inserts
        with conn.cursor().copy(f"COPY {TABLE} (namespace, entry_id, embedding, features, expires_at) FROM STDIN") as copy:
            for ns, rows in (("crowd", crowd), ("mine", mine), ("few", few)):
                for i, v in enumerate(rows):
                    copy.write_row((ns, f"{ns}{i}", v, feats, "2999-01-01"))
        conn.execute(index_statements()[f"{TABLE}_hnsw"])
        conn.execute(f"ANALYZE {TABLE}")
        for statement in session_settings():
            conn.execute(statement)
        for ns, index in (("mine", f"{TABLE}_hnsw"), ("few", f"{TABLE}_pkey")):
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + SEARCH_SQL, {"v": centre, "ns": ns, "k": 8}))
            assert f"Index Scan using {index}" in plan, plan
    for ns, rows in (("mine", mine), ("few", few)):
        expected = [f"{ns}{i}" for i in np.argsort(-(rows @ centre))[:8]]
        for _ in range(7):  # the last runs use the prepared statement
            found = await idx.store.search(ns, centre, 8, 0.0)
            assert all(c.entry_id.startswith(ns) for c in found) and len(found) == len(expected)
            assert found[0].entry_id == expected[0]  # HNSW is approximate: the nearest, and most of the 8
            assert len({c.entry_id for c in found} & set(expected)) >= len(expected) - 2


async def test_paraphrase_hits_and_look_alikes_miss(idx: EmbeddingIndex) -> None:
    await idx.add("ns", "What is 15% of 80?", "e80", 60)
    await idx.add("ns", "How do I enable dark mode?", "dark", 60)
    match = await idx.lookup("ns", "What's fifteen percent of 80?", DEFAULT_THRESHOLD)
    assert match is not None and match.entry_id == "e80"
    assert await idx.lookup("ns", "What is 15% of 90?", 0.5) is None
    assert await idx.lookup("ns", "How do I disable dark mode?", 0.5) is None


async def test_the_alignment_check_reads_what_postgresql_stored(idx: EmbeddingIndex) -> None:
    # the stored question's alignment (reader_align.py) goes through the jsonb column and back:
    # a look-alike that only the alignment check tells apart still misses
    await idx.add("ns", "How do I become a nurse?", "nurse", 60)
    with psycopg.connect(DB_URL) as conn:
        stored = conn.execute(f"SELECT features FROM {TABLE} WHERE entry_id = 'nurse'").fetchone()[0]
    assert stored["al"]["s"] and stored["al"]["v"] and "nurse" not in json.dumps(stored)
    assert await idx.lookup("ns", "How do I become a nurse anesthetist?", 0.75) is None
    assert (await idx.lookup("ns", "How can I become a nurse?", DEFAULT_THRESHOLD)).entry_id == "nurse"


async def test_namespaces_ttl_and_purge(idx: EmbeddingIndex) -> None:
    await idx.add("3:0:team:a:c", "How do I reset my password?", "a", 60)
    await idx.add("3:0:team:b:c", "How do I reset my password?", "b", 2)
    await idx.add("30:0:team:a:c", "How do I reset my password?", "c", 60)
    assert (await idx.lookup("3:0:team:a:c", "How do I reset my password?", 0.5)).entry_id == "a"
    assert (await idx.lookup("3:0:team:b:c", "How do I reset my password?", 0.5)).entry_id == "b"
    await asyncio.sleep(2.2)
    assert await idx.lookup("3:0:team:b:c", "How do I reset my password?", 0.5) is None
    assert await idx.purge("3:") == 2  # "a" and the expired "b"; "30:" untouched
    assert await idx.lookup("3:0:team:a:c", "How do I reset my password?", 0.5) is None
    assert (await idx.lookup("30:0:team:a:c", "How do I reset my password?", 0.5)).entry_id == "c"


async def test_an_unreachable_server_is_a_miss_not_an_error() -> None:
    broken = EmbeddingIndex(PgVectorIndex("postgresql://postgres@127.0.0.1:1/none", DIM), get_embedder().embed)
    assert await broken.lookup("ns", "How do I reset my password?", 0.5) is None
    await broken.add("ns", "How do I reset my password?", "e", 60)  # logged, not raised
