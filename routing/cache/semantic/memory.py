"""The in-process vector index (the embedded default): per namespace a normalised float32
matrix searched with one matrix-vector product; entries expire (TTL) and the whole index
holds at most `max_entries`, evicting the least recently used (a hit counts as a use).

Thread-safe: one lock around every read and write (the callers run it in worker threads).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from .guard import Features


@dataclass(frozen=True, slots=True)
class Candidate:
    entry_id: str
    similarity: float
    features: Features


@dataclass(slots=True)
class _Space:
    """One namespace: rows 0..size-1 of `vectors` are live."""

    dim: int
    vectors: np.ndarray = field(init=False)
    expires: np.ndarray = field(init=False)
    ids: list[str] = field(default_factory=list)
    features: list[Features] = field(default_factory=list)
    row_of: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vectors = np.empty((8, self.dim), dtype=np.float32)
        self.expires = np.empty(8, dtype=np.float64)

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
        else:
            self.features[row] = feats
        self.vectors[row] = vector
        self.expires[row] = expires_at

    def remove(self, entry_id: str) -> None:
        row = self.row_of.pop(entry_id)
        last = self.size - 1
        if row != last:  # move the last row into the hole
            moved = self.ids[last]
            self.vectors[row] = self.vectors[last]
            self.expires[row] = self.expires[last]
            self.ids[row], self.features[row] = moved, self.features[last]
            self.row_of[moved] = row
        self.ids.pop()
        self.features.pop()


class MemoryVectorIndex:
    def __init__(self, dim: int, max_entries: int) -> None:
        self.dim = dim
        self.max_entries = max_entries
        self._spaces: dict[str, _Space] = {}
        self._lru: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._lru)

    def add(self, namespace: str, entry_id: str, vector: np.ndarray, feats: Features, ttl_s: float) -> None:
        with self._lock:
            space = self._spaces.get(namespace)
            if space is None:
                space = self._spaces[namespace] = _Space(self.dim)
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
            if space is None or space.size == 0:
                return []
            n = space.size
            sims = space.vectors[:n] @ vector
            sims[space.expires[:n] <= time.time()] = -2.0
            if n > k:
                top = np.argpartition(sims, n - k)[n - k:]
                top = top[np.argsort(-sims[top])]
            else:
                top = np.argsort(-sims)
            found = [Candidate(space.ids[r], float(sims[r]), space.features[r]) for r in top if sims[r] >= min_similarity]
            self._expire(namespace, space)
            return found

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

    def _expire(self, namespace: str, space: _Space) -> None:
        """Drop this namespace's expired rows (a search already paid for the scan)."""
        n = space.size
        dead = np.nonzero(space.expires[:n] <= time.time())[0]
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
