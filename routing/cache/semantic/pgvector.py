"""The PostgreSQL + pgvector index (production): one table shared by every gateway process.

Created on first use, idempotently: the `vector` extension, the table (namespace in the C
collation so one btree serves both `=` and prefix purges), an HNSW index on cosine
distance, and a btree on expires_at for the sweep. A search filters by namespace and
expiry and orders by distance; with `hnsw.iterative_scan` (pgvector >= 0.8) the HNSW scan
keeps going until it has k rows of the namespace, and for a small namespace the planner
picks the btree and an exact scan.

Connections: psycopg async connections belong to the event loop that opened them, and the
gateway's callers use several loops (the server's, async_to_sync in the admin, tests), so
each loop gets its own small pool.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import Any

import numpy as np

from .guard import Features
from .memory import Candidate

log = logging.getLogger("gateway.cache")

TABLE = "gateway_semantic_cache_minilm_l6"  # one table per embedding model (vectors differ)


def _sql(dim: int) -> list[str]:
    return [
        "CREATE EXTENSION IF NOT EXISTS vector",
        f"""CREATE TABLE IF NOT EXISTS {TABLE} (
            namespace text COLLATE "C" NOT NULL,
            entry_id text NOT NULL,
            embedding vector({dim}) NOT NULL,
            features jsonb NOT NULL,
            expires_at timestamptz NOT NULL,
            PRIMARY KEY (namespace, entry_id))""",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_hnsw ON {TABLE} USING hnsw (embedding vector_cosine_ops)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_expires ON {TABLE} (expires_at)",
    ]


class PgVectorIndex:
    def __init__(self, url: str, dim: int, pool_size: int = 4) -> None:
        self.url = url.replace("postgres://", "postgresql://", 1)
        self.dim = dim
        self.pool_size = pool_size
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._ready = False

    async def _pool(self) -> Any:
        from pgvector.psycopg import register_vector_async
        from psycopg_pool import AsyncConnectionPool

        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            if not self._ready:
                await self._create_schema()
            pool = AsyncConnectionPool(self.url, min_size=1, max_size=self.pool_size, open=False,
                                       configure=register_vector_async, kwargs={"autocommit": True})
            await pool.open()
            self._pools[loop] = pool
        return pool

    async def _create_schema(self) -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            # Two processes starting at once must not race on CREATE ... IF NOT EXISTS.
            await conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (TABLE,))
            try:
                for statement in _sql(self.dim):
                    await conn.execute(statement)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (TABLE,))
        self._ready = True

    async def add(self, namespace: str, entry_id: str, vector: np.ndarray, feats: Features, ttl_s: float) -> None:
        pool = await self._pool()
        async with pool.connection() as conn:
            await conn.execute(
                f"""INSERT INTO {TABLE} (namespace, entry_id, embedding, features, expires_at)
                    VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s))
                    ON CONFLICT (namespace, entry_id) DO UPDATE
                    SET embedding = EXCLUDED.embedding, features = EXCLUDED.features, expires_at = EXCLUDED.expires_at""",
                (namespace, entry_id, vector, json.dumps(feats.to_json()), float(ttl_s)),
            )

    async def search(self, namespace: str, vector: np.ndarray, k: int, min_similarity: float) -> list[Candidate]:
        pool = await self._pool()
        async with pool.connection() as conn:
            async with conn.transaction():
                await conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                await conn.execute("SET LOCAL hnsw.ef_search = 40")
                cur = await conn.execute(
                    f"""SELECT entry_id, 1 - (embedding <=> %s) AS similarity, features FROM {TABLE}
                        WHERE namespace = %s AND expires_at > now()
                        ORDER BY embedding <=> %s LIMIT %s""",
                    (vector, namespace, vector, k),
                )
                rows = await cur.fetchall()
        found = [Candidate(entry_id, float(sim), Features.from_json(feats)) for entry_id, sim, feats in rows]
        return sorted((c for c in found if c.similarity >= min_similarity), key=lambda c: -c.similarity)

    async def purge(self, namespace_prefix: str) -> int:
        pool = await self._pool()
        pattern = namespace_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        async with pool.connection() as conn:
            cur = await conn.execute(f"DELETE FROM {TABLE} WHERE namespace LIKE %s", (pattern,))
            await conn.execute(f"DELETE FROM {TABLE} WHERE expires_at <= now()")  # the sweep rides along
            return cur.rowcount

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        pool = self._pools.pop(loop, None)
        if pool is not None:
            await pool.close()
