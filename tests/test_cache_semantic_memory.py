"""The in-process vector index itself (routing/cache/semantic/memory.py), in both of its
search modes: the int8 scan with exact re-rank (faiss-cpu installed) and the plain
float32 scan. Both must return exactly what brute force returns (same entries, same
float32 similarities), through eviction, expiry, replacement, purges and threads; and the
int8 copy must stay row-aligned with the float32 matrix."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from routing.cache.semantic import memory, semantic_available
from routing.cache.semantic.guard import features
from routing.cache.semantic.memory import COARSE_ROWS, MARGIN, MemoryVectorIndex, _Codes, _faiss

DIM = 384
FEATS = features("How do I reset my password?")
needs_faiss = pytest.mark.skipif(_faiss() is None, reason="!! int8 scan tests SKIPPED: faiss-cpu is not installed")
MODES = [pytest.param(True, id="int8", marks=needs_faiss), pytest.param(False, id="float32")]


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def clustered(n: int, centres: int, spread: float, seed: int) -> np.ndarray:
    """Unit vectors in tight clusters: many rows close to each other, as paraphrases are."""
    rng = np.random.default_rng(seed)
    c = unit(rng.standard_normal((centres, DIM)))
    return unit(c[rng.integers(0, centres, n)] + spread * rng.standard_normal((n, DIM)))


def brute(vectors: dict[str, np.ndarray], query: np.ndarray, k: int, threshold: float) -> list[tuple[str, float]]:
    ids = list(vectors)
    sims = np.stack([vectors[i] for i in ids]) @ query
    order = [r for r in np.argsort(-sims, kind="stable") if sims[r] >= threshold][:k]
    return [(ids[r], float(sims[r])) for r in order]


def same(found: list, expected: list[tuple[str, float]]) -> None:
    assert [c.entry_id for c in found] == [e for e, _ in expected]
    assert [c.similarity for c in found] == pytest.approx([s for _, s in expected], abs=1e-6)


def aligned(store: MemoryVectorIndex) -> None:
    """Every namespace's int8 rows are the codes of its float32 rows, and ids map to rows."""
    for space in store._spaces.values():
        assert all(space.row_of[e] == r for r, e in enumerate(space.ids))
        if space.codes is not None:
            assert space.codes.index.ntotal == space.size
            assert np.array_equal(space.codes.rows(), _Codes.encode(space.vectors[:space.size]))


@pytest.mark.parametrize("quantized", MODES)
def test_search_returns_what_brute_force_returns_in_dense_clusters(quantized: bool) -> None:
    # 40 clusters of ~500. In the tight ones a query has hundreds of rows above the
    # threshold, more than one int8 pass reads (COARSE_ROWS). In the looser ones most rows
    # sit just under the threshold, inside the int8 margin. And 1,500 near-duplicates
    # (cosines ~0.99 to each other, closer than the int8 error): the int8 order among them
    # is noise, so the exact top 8 is found only by the second, wider pass.
    vectors = np.concatenate([clustered(10_000, 20, 0.02, seed=1), clustered(10_000, 20, 0.025, seed=11),
                              clustered(1_500, 1, 0.005, seed=13)])
    store = MemoryVectorIndex(DIM, 50_000, quantized=quantized)
    for row, v in enumerate(vectors):
        store.add("ns", f"e{row}", v, FEATS, 60)
    by_id = {f"e{row}": v for row, v in enumerate(vectors)}
    rng = np.random.default_rng(2)
    queries = unit(vectors[rng.integers(0, 20_000, 60)] + 0.02 * rng.standard_normal((60, DIM)))
    twins = unit(vectors[rng.integers(20_000, len(vectors), 10)] + 0.005 * rng.standard_normal((10, DIM)))
    above = (vectors @ queries.T >= 0.80).sum(0)
    near = (vectors @ queries.T >= 0.80 - MARGIN).sum(0) - above
    assert (above > COARSE_ROWS).sum() > 10 and ((above < 8) & (near > 8)).sum() > 10
    for q in [*queries, *twins]:
        same(store.search("ns", q, 8, 0.80), brute(by_id, q, 8, 0.80))
    for q in queries[:5]:  # and a threshold nothing reaches, and one everything does
        assert store.search("ns", q, 8, 0.9999) == []
        same(store.search("ns", q, 8, -1.0), brute(by_id, q, 8, -1.0))


@pytest.mark.skipif(not semantic_available()[0], reason=semantic_available()[1])
@pytest.mark.parametrize("quantized", MODES)
def test_real_question_embeddings_find_the_exact_neighbours(quantized: bool) -> None:
    # Real vectors cluster (questions of one topic); copies moved toward other questions
    # and blurred fill the namespace to 12,000 rows around them.
    from routing.cache.corpus.scoring import load
    from routing.cache.semantic.embedder import get_embedder

    pairs = load("tuning")[:120]
    embed = get_embedder().embed
    real = np.stack([embed(t) for p in pairs for t in (p.a, p.b)])
    rng = np.random.default_rng(9)
    src, toward = real[rng.integers(0, len(real), 12_000)], real[rng.integers(0, len(real), 12_000)]
    stored = unit(src + rng.uniform(0, 0.6, (12_000, 1)) * (toward - src) + 0.02 * rng.standard_normal((12_000, DIM)))
    store = MemoryVectorIndex(DIM, 20_000, quantized=quantized)
    for row, v in enumerate(stored):
        store.add("ns", f"e{row}", v, FEATS, 60)
    by_id = {f"e{row}": v for row, v in enumerate(stored)}
    hits = 0
    for q in real:
        expected = brute(by_id, q, 8, 0.80)
        hits += bool(expected)
        same(store.search("ns", q, 8, 0.80), expected)
    assert hits > len(real) / 2


@needs_faiss
def test_the_int8_scores_are_within_the_margin_for_a_unit_query_of_384_dimensions() -> None:
    # faiss's byte kernels (x86, d % 16 == 0) truncate a float query to int8: a unit
    # query's components (all below 1) would score 0 against everything. _Codes rounds it.
    vectors = clustered(5_000, 50, 0.05, seed=3)
    codes = _Codes(DIM)
    codes.resize(len(vectors))
    codes.rows()[:] = _Codes.encode(vectors)
    q = vectors[7]
    scores, rows = codes.search(q, len(vectors))
    exact = vectors[rows] @ q
    assert rows[0] == 7 and scores[0] > 0.97
    assert np.abs(scores - exact).max() < MARGIN / 2 and np.std(scores - exact) < 0.005
    int8 = (_Codes.encode(vectors[rows]).astype(np.float64) - 128) @ np.rint(q * 127) / 127**2
    assert scores == pytest.approx(int8, abs=1e-5)


@pytest.mark.parametrize("quantized", MODES)
def test_eviction_replacement_and_expiry_keep_rows_aligned_and_results_exact(quantized: bool) -> None:
    vectors = clustered(3_000, 30, 0.03, seed=4)
    store = MemoryVectorIndex(DIM, 1_000, quantized=quantized)
    live: dict[tuple[str, str], np.ndarray] = {}
    order: list[tuple[str, str]] = []
    for row, v in enumerate(vectors):  # 3,000 adds into 1,000 places: 2,000 evictions
        key = (f"ns{row % 3}", f"e{row % 1_400}")  # ids come back: replacements too
        store.add(*key, v, FEATS, 60)
        live[key] = v
        if key in order:
            order.remove(key)
        order.append(key)
        if len(order) > 1_000:
            del live[order.pop(0)]
    assert len(store) == 1_000 and set(store._lru) == set(live)
    aligned(store)
    for q in vectors[::150]:
        for ns in ("ns0", "ns1", "ns2"):
            in_ns = {e: v for (n, e), v in live.items() if n == ns}
            same(store.search(ns, q, 8, 0.75), brute(in_ns, q, 8, 0.75))
    # A replaced entry is found by its new vector only.
    store.add("ns0", "moved", vectors[0], FEATS, 60)
    store.add("ns0", "moved", vectors[1_500], FEATS, 60)
    assert "moved" not in [c.entry_id for c in store.search("ns0", vectors[0], 50, 0.999)]
    assert store.search("ns0", vectors[1_500], 1, 0.999)[0].entry_id == "moved"
    aligned(store)


@pytest.mark.parametrize("quantized", MODES)
def test_expired_rows_are_swept_before_the_scan_and_never_returned(quantized: bool) -> None:
    vectors = clustered(400, 4, 0.02, seed=5)
    store = MemoryVectorIndex(DIM, 1_000, quantized=quantized)
    for row, v in enumerate(vectors):
        store.add("ns", f"e{row}", v, FEATS, 0.3 if row % 2 else 60)
    time.sleep(0.4)
    found = store.search("ns", vectors[1], 8, 0.5)
    assert found and all(int(c.entry_id[1:]) % 2 == 0 for c in found)
    assert len(store) == 200 and store._spaces["ns"].size == 200
    aligned(store)
    same(found, brute({f"e{r}": v for r, v in enumerate(vectors) if r % 2 == 0}, vectors[1], 8, 0.5))


@pytest.mark.parametrize("quantized", MODES)
def test_purge_drops_the_namespaces_under_a_prefix_and_their_lru_places(quantized: bool) -> None:
    vectors = clustered(90, 3, 0.02, seed=6)
    store = MemoryVectorIndex(DIM, 100, quantized=quantized)
    for row, v in enumerate(vectors):
        store.add(("7:0:a", "7:0:b", "70:0:a")[row % 3], f"e{row}", v, FEATS, 60)
    assert store.purge("7:") == 60
    assert len(store) == 30 and list(store._spaces) == ["70:0:a"]
    assert store.search("7:0:a", vectors[0], 8, 0.0) == []
    assert len(store.search("70:0:a", vectors[2], 8, -1.0)) == 8
    for row in range(70):  # the freed places are usable: nothing of 70: is evicted
        store.add("7:0:a", f"n{row}", vectors[row], FEATS, 60)
    assert len(store) == 100 and store._spaces["70:0:a"].size == 30
    store.add("7:0:a", "one-more", vectors[0], FEATS, 60)  # now the oldest (a 70: entry) goes
    assert len(store) == 100 and store._spaces["70:0:a"].size == 29
    aligned(store)


@pytest.mark.parametrize("quantized", MODES)
def test_threads_adding_searching_touching_and_purging_leave_a_consistent_exact_index(quantized: bool) -> None:
    vectors = clustered(6 * 600, 20, 0.03, seed=7)
    store = MemoryVectorIndex(DIM, 1_500, quantized=quantized)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(600):
                v = vectors[worker * 600 + i]
                ns = f"{worker % 2}:{i % 4}"
                store.add(ns, f"{worker}-{i}", v, FEATS, 60)
                found = store.search(ns, v, 8, 0.5)
                assert all(a.similarity >= b.similarity for a, b in zip(found, found[1:]))
                if found:
                    store.touch(ns, found[-1].entry_id)
                if i % 151 == 0:
                    store.purge(f"{worker % 2}:{i % 4}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store) <= 1_500
    assert len(store) == sum(space.size for space in store._spaces.values())
    aligned(store)
    for ns, space in store._spaces.items():  # what is left answers exactly
        entries = {e: vectors[int(e.split("-")[0]) * 600 + int(e.split("-")[1])] for e in space.ids}
        assert all(np.array_equal(space.vectors[space.row_of[e]], v) for e, v in entries.items())
        q = next(iter(entries.values()))
        same(store.search(ns, q, 8, 0.5), brute(entries, q, 8, 0.5))


def test_without_faiss_the_index_scans_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_faiss", lambda: None)
    store = MemoryVectorIndex(DIM, 10)
    assert store.quantized is False
    v = clustered(1, 1, 0.0, seed=8)[0]
    store.add("ns", "e", v, FEATS, 60)
    assert store.search("ns", v, 8, 0.99)[0].entry_id == "e"
    with pytest.raises(RuntimeError, match="faiss-cpu"):
        MemoryVectorIndex(DIM, 10, quantized=True)
