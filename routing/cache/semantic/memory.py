"""The in-process vector index (the embedded default): per namespace a normalised float32
matrix; entries expire (TTL) and the whole index holds at most `max_entries`, evicting the
least recently used (a hit counts as a use).

Search, with faiss-cpu installed: every row also has an int8 copy (round(127 x): 384
bytes instead of 1536) that faiss scans with SIMD (QT_8bit_direct_signed, the query
rounded the same way); the rows whose int8 score comes within MARGIN of the threshold are
then scored exactly with their float32 rows, and only those scores are returned. The
scan reads 38 MB instead of 154 MB per 100,000 rows, and the search is memory-bound:
100,000 rows of one namespace ~2 ms p50 instead of ~14 ms (bench/vector_search.py).
The int8 score's error is ~0.003 (std) and at most 0.018 over 10^8 pairs of real
question vectors, so a row left out at MARGIN = 0.04 would have needed twice the worst
error seen to reach the threshold: the result is the exact search's (measured: recall 1.0). Without faiss: one float32
matrix-vector product, exact by construction.

Removals (TTL, LRU, purge) move the last row into the hole, in the float32 matrix and the
int8 copy alike, so both stay dense and row-aligned; expired rows are swept before a scan.

Thread-safe: one lock around every read and write (the callers run it in worker threads;
faiss and numpy release the GIL while they scan).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from .guard import Features

SCALE = 127.0  # int8 code = round(SCALE * x); a unit vector's components are within [-1, 1]
MARGIN = 0.04  # int8 scores this far below the threshold are still checked exactly
COARSE_ROWS = 256  # int8 scores read per pass (a second pass, 8x more, only if they might not be enough)


@dataclass(frozen=True, slots=True)
class Candidate:
    entry_id: str
    similarity: float
    features: Features


@lru_cache(maxsize=1)
def _faiss() -> Any:
    """The faiss module, or None when faiss-cpu is not installed (or cannot load)."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


class _Codes:
    """The int8 copies of a namespace's rows, in a faiss index that owns the buffer.
    QT_8bit_direct_signed stores value + 128 as uint8 and scores q . (code - 128)."""

    def __init__(self, dim: int) -> None:
        faiss = _faiss()
        self.dim = dim
        self.index = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit_direct_signed,
                                                faiss.METRIC_INNER_PRODUCT)

    @staticmethod
    def encode(vector: np.ndarray) -> np.ndarray:
        return (np.rint(np.clip(vector, -1.0, 1.0) * SCALE) + 128.0).astype(np.uint8)

    def rows(self) -> np.ndarray:
        """A writable view of faiss's buffer (valid until the next resize)."""
        n = self.index.ntotal
        return _faiss().rev_swig_ptr(self.index.codes.data(), n * self.dim).reshape(n, self.dim)

    def resize(self, n: int) -> None:
        self.index.codes.resize(n * self.dim)  # a std::vector: grows geometrically, never shrinks
        self.index.ntotal = n

    def search(self, vector: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """The `rows` best int8 scores (as cosines, best first) and their rows."""
        # The query goes in rounded to integers too: faiss's byte kernels (x86, d % 16 == 0)
        # truncate a float query to int8, its float kernel does not; with integers both
        # compute the same exact dot product of two int8 vectors.
        query = np.rint(np.clip(vector, -1.0, 1.0) * SCALE).reshape(1, -1)
        # One query is one thread's work, but faiss opens an OpenMP team for it and waits
        # at the team's barrier for the other core, which may be busy: 100,000 rows took
        # 12 ms p50 with the default two threads on a loaded 2-core machine, 2.1 ms with
        # one. The setting belongs to the calling thread, hence on every call.
        _faiss().omp_set_num_threads(1)
        scores, found = self.index.search(query, rows)
        return scores[0] / (SCALE * SCALE), found[0]


@dataclass(slots=True)
class _Space:
    """One namespace: rows 0..size-1 of `vectors` (and of `codes`, if any) are live."""

    dim: int
    quantized: bool
    vectors: np.ndarray = field(init=False)
    expires: np.ndarray = field(init=False)
    codes: _Codes | None = field(init=False)
    ids: list[str] = field(default_factory=list)
    features: list[Features] = field(default_factory=list)
    row_of: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vectors = np.empty((8, self.dim), dtype=np.float32)
        self.expires = np.empty(8, dtype=np.float64)
        self.codes = _Codes(self.dim) if self.quantized else None

    @property
    def size(self) -> int:
        return len(self.ids)

    def put(self, entry_id: str, vector: np.ndarray, feats: Features, expires_at: float) -> None:
        row = self.row_of.get(entry_id)
        if row is None:
            row = self.size
            if row == len(self.vectors):
                self.vectors = np.concatenate([self.vectors, np.empty_like(self.vectors)])
                self.expires = np.concatenate([self.expires, np.empty_like(self.expires)])
            self.ids.append(entry_id)
            self.features.append(feats)
            self.row_of[entry_id] = row
            if self.codes is not None:
                self.codes.resize(row + 1)
        else:
            self.features[row] = feats
        self.vectors[row] = vector
        self.expires[row] = expires_at
        if self.codes is not None:
            self.codes.rows()[row] = _Codes.encode(vector)

    def remove(self, entry_id: str) -> None:
        row = self.row_of.pop(entry_id)
        last = self.size - 1
        if row != last:  # move the last row into the hole
            moved = self.ids[last]
            self.vectors[row] = self.vectors[last]
            self.expires[row] = self.expires[last]
            self.ids[row], self.features[row] = moved, self.features[last]
            self.row_of[moved] = row
            if self.codes is not None:
                codes = self.codes.rows()
                codes[row] = codes[last]
        self.ids.pop()
        self.features.pop()
        if self.codes is not None:
            self.codes.resize(last)

    def nearest(self, vector: np.ndarray, k: int, min_similarity: float) -> tuple[np.ndarray, np.ndarray]:
        """(rows, exact similarities) of the k nearest rows at or above min_similarity, nearest first."""
        n = self.size
        if self.codes is None:
            rows = np.arange(n)
            sims = self.vectors[:n] @ vector
        else:
            rows, sims = self._rescored(vector, k, min_similarity)
        keep = sims >= min_similarity
        rows, sims = rows[keep], sims[keep]
        order = np.argsort(-sims, kind="stable")[:k]
        return rows[order], sims[order]

    def _rescored(self, vector: np.ndarray, k: int, min_similarity: float) -> tuple[np.ndarray, np.ndarray]:
        """The int8 scan's candidates, scored exactly. A pass reads the best `wanted` int8
        scores; if even the last of them is within MARGIN of what a row must beat (the
        threshold, or the k-th exact similarity found), rows past it might too: read 8x more."""
        n = self.size
        wanted = max(COARSE_ROWS, k)
        while True:
            coarse, rows = self.codes.search(vector, min(wanted, n))
            close = rows[(rows >= 0) & (coarse >= min_similarity - MARGIN)]
            sims = self.vectors[close] @ vector
            if wanted >= n or len(close) < len(rows):
                return close, sims
            above = np.sort(sims[sims >= min_similarity])
            bar = above[-k] if len(above) >= k else min_similarity
            if coarse[-1] + MARGIN < bar:
                return close, sims
            wanted *= 8


class MemoryVectorIndex:
    def __init__(self, dim: int, max_entries: int, quantized: bool | None = None) -> None:
        """quantized: the int8 scan (None = when faiss-cpu is installed; True requires it)."""
        if quantized is None:
            quantized = _faiss() is not None
        elif quantized and _faiss() is None:
            raise RuntimeError("the int8 scan needs faiss-cpu (pip install faiss-cpu)")
        self.dim = dim
        self.max_entries = max_entries
        self.quantized = quantized
        self._spaces: dict[str, _Space] = {}
        self._lru: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._lru)

    def add(self, namespace: str, entry_id: str, vector: np.ndarray, feats: Features, ttl_s: float) -> None:
        with self._lock:
            space = self._spaces.get(namespace)
            if space is None:
                space = self._spaces[namespace] = _Space(self.dim, self.quantized)
            space.put(entry_id, vector, feats, time.time() + ttl_s)
            self._lru[(namespace, entry_id)] = None
            self._lru.move_to_end((namespace, entry_id))
            while len(self._lru) > self.max_entries:
                old_ns, old_id = self._lru.popitem(last=False)[0]
                self._drop(old_ns, old_id)

    def search(self, namespace: str, vector: np.ndarray, k: int, min_similarity: float) -> list[Candidate]:
        """The k nearest unexpired entries at or above min_similarity, nearest first."""
        with self._lock:
            space = self._spaces.get(namespace)
            if space is None:
                return []
            self._expire(namespace, space)  # first, so the scan sees live rows only
            if space.size == 0:
                return []
            rows, sims = space.nearest(vector, k, min_similarity)
            return [Candidate(space.ids[r], float(s), space.features[r]) for r, s in zip(rows, sims)]

    def touch(self, namespace: str, entry_id: str) -> None:
        with self._lock:
            if (namespace, entry_id) in self._lru:
                self._lru.move_to_end((namespace, entry_id))

    def purge(self, namespace_prefix: str) -> int:
        with self._lock:
            doomed = [ns for ns in self._spaces if ns.startswith(namespace_prefix)]
            count = 0
            for ns in doomed:
                space = self._spaces.pop(ns)
                count += space.size
                for entry_id in space.ids:
                    self._lru.pop((ns, entry_id), None)
            return count

    def nbytes(self) -> int:
        """Bytes of the float32 and expiry arrays (as allocated) and of the int8 copies."""
        with self._lock:
            total = 0
            for space in self._spaces.values():
                total += space.vectors.nbytes + space.expires.nbytes
                if space.codes is not None:
                    total += space.codes.index.codes.size()
            return total

    def _expire(self, namespace: str, space: _Space) -> None:
        """Drop this namespace's expired rows."""
        n = space.size
        dead = np.flatnonzero(space.expires[:n] <= time.time())
        for entry_id in [space.ids[r] for r in dead]:
            self._lru.pop((namespace, entry_id), None)
            space.remove(entry_id)
        if space.size == 0:
            del self._spaces[namespace]

    def _drop(self, namespace: str, entry_id: str) -> None:
        space = self._spaces[namespace]
        space.remove(entry_id)
        if space.size == 0:
            del self._spaces[namespace]
