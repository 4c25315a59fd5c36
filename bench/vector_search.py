"""Vector search at N entries in ONE namespace (issue 12's target: <= 5 ms over 100,000):
p50/p95 search latency and recall against exact search, for the in-process index (int8
scan + exact re-rank, and the plain float32 scan it replaces) and, with --pgvector URL,
the PostgreSQL + pgvector one, each through the code path the gateway calls
(MemoryVectorIndex.search, PgVectorIndex.search).

    .venv/bin/python bench/vector_search.py                     # in-process, N = 100,000
    .venv/bin/python bench/vector_search.py --pgvector postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/vector_search.py --entries 200000 --queries 2000 --no-float32

Vectors: the real embedder's vectors (of GATEWAY_CACHE_EMBEDDER's kind) of every text the
project ships (the labelled pairs in routing/cache/corpus/, the replay workload's intents
and requests: 3,648 distinct questions at this writing, which cluster by topic as real
traffic does), embedded once and kept by text under --cache-dir. To reach N, copies of
them, each moved part of the way toward another text (beta ~ U(0, 0.6)) and blurred with
isotropic noise, renormalised: a copy's cosine to its source spreads over ~0.6-0.99, so a
query meets dense neighbourhoods of close and not-so-close questions, not one exact twin.
Queries: --queries, a fifth of them real texts held out of the index (their paraphrases
are in it), the rest fresh copies made the same way.

Recall is against exact float32 search over the same entries, counted on the queries that
have at least one entry at or above the threshold (0.80): recall@1 = the index's first
result is the exact nearest (or ties it to 1e-6), recall@8 = share of the exact top 8
(above the threshold) that the index returned. "exact sims" checks that every similarity
returned is the float32 one. Latency: each query searched once, in order, after warm-up;
the machine's other load is reported (a shared 2-core machine makes p95 noisy).

pgvector: point --pgvector at a scratch database. The table of
routing/cache/semantic/pgvector.py is emptied (refused if it holds rows other than a
bench's), filled by COPY, its indexes built (HNSW as PgVectorIndex creates it, or with
--hnsw-m/--hnsw-ef-construction; the build time is reported), ANALYZEd; --other-rows M
adds M rows in 1,000 other namespaces (the namespace filter then matters, and one of
those small namespaces is measured too). At the end the table is emptied again and its
indexes are the gateway's, unless --keep-table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from procs import NoiseMeter, machine_info, rss_kb, run_main, wait_quiet  # noqa: E402

from routing.cache.semantic import CANDIDATES, DEFAULT_THRESHOLD  # noqa: E402
from routing.cache.semantic.embedder import DIM, MODEL_ID, configured_kind, get_embedder  # noqa: E402
from routing.cache.semantic.guard import features  # noqa: E402
from routing.cache.semantic.pgvector import EF_SEARCH, HNSW_EF_CONSTRUCTION, HNSW_M  # noqa: E402

NAMESPACE = "bench:0:team:vectors:ctx"
OTHER_NAMESPACES = 1000  # --other-rows are spread over this many namespaces
ENTRY = "e{}".format


def shipped_texts() -> list[str]:
    """Every distinct question the repository ships, sorted (the order is the seed's)."""
    found: set[str] = set()
    for path in sorted((ROOT / "routing/cache/corpus").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                pair = json.loads(line)
                found.update((pair["a"], pair["b"]))
    workload = HERE / "cache_workload"
    for line in (workload / "intents.jsonl").read_text().splitlines():
        found.update(json.loads(line)["texts"])
    for line in (workload / "requests.jsonl").read_text().splitlines():
        found.add(json.loads(line)["text"])
    return sorted(found)


def real_vectors(texts: list[str], cache_dir: Path) -> np.ndarray:
    """The embedder's vectors of the texts, kept by text in cache_dir (one file per embedder
    kind, GATEWAY_CACHE_EMBEDDER) so a changed corpus only embeds its new texts."""
    kind = configured_kind()
    path = cache_dir / f"vectors-{MODEL_ID}-{kind}.npz"
    known: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as cached:
            known = dict(zip(cached["texts"].tolist(), cached["vectors"]))
    missing = [t for t in texts if t not in known]
    if missing:
        print(f"embedding {len(missing)} texts (kept in {path}) ...", file=sys.stderr, flush=True)
        embed = get_embedder(kind).embed
        known.update((t, embed(t)) for t in missing)
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.savez(path, texts=np.array(list(known)), vectors=np.stack(list(known.values())))
    return np.stack([known[t] for t in texts])


def copies(base: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` vectors near `base`'s rows: each part of the way toward another row, plus noise."""
    src = base[rng.integers(0, len(base), count)]
    toward = base[rng.integers(0, len(base), count)]
    beta = rng.uniform(0.0, 0.6, (count, 1)).astype(np.float32)
    sigma = rng.uniform(0.0, 0.03, (count, 1)).astype(np.float32)
    out = src + beta * (toward - src) + sigma * rng.standard_normal((count, base.shape[1]), dtype=np.float32)
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def dataset(entries: int, queries: int, cache_dir: Path, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(entries' vectors, queries' vectors, real texts shipped)."""
    real = real_vectors(shipped_texts(), cache_dir)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(real))
    held_out = min(queries // 5, len(real) // 10)
    kept = real[order[held_out:]][:entries]
    stored = np.concatenate([kept, copies(kept, entries - len(kept), rng)])
    asked = np.concatenate([real[order[:held_out]], copies(kept, queries - held_out, rng)])
    return stored[rng.permutation(entries)], asked[rng.permutation(queries)], len(real)


def exact_top(stored: np.ndarray, asked: np.ndarray, k: int, threshold: float) -> list[list[tuple[int, float]]]:
    """Exact float32 search: per query, the k best (row, similarity) at or above threshold."""
    out = []
    for start in range(0, len(asked), 256):
        sims = stored @ asked[start:start + 256].T
        for col in range(sims.shape[1]):
            s = sims[:, col]
            rows = np.flatnonzero(s >= threshold)
            rows = rows[np.argsort(-s[rows], kind="stable")[:k]]
            out.append([(int(r), float(s[r])) for r in rows])
    return out


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(values, p))


def score(name: str, found: list[list[tuple[int, float]]], truth: list[list[tuple[int, float]]],
          times_s: list[float], stored: np.ndarray, asked: np.ndarray, extra: dict) -> dict:
    with_hit = [i for i, t in enumerate(truth) if t]
    first = sum(1 for i in with_hit if found[i] and (found[i][0][0] == truth[i][0][0]
                                                     or abs(found[i][0][1] - truth[i][0][1]) < 1e-6))
    missed = sum(1 for i in with_hit if not found[i])
    want = sum(len(truth[i]) for i in with_hit)
    got = sum(len({r for r, _ in found[i]} & {r for r, _ in truth[i]}) for i in with_hit)
    sims_exact = all(abs(s - float(stored[r] @ asked[i])) < 1e-5 for i, res in enumerate(found) for r, s in res)
    return {
        "index": name, "entries": len(stored), "queries": len(asked),
        "queries_with_hit": len(with_hit),
        "p50_ms": round(pct(times_s, 50) * 1e3, 3), "p95_ms": round(pct(times_s, 95) * 1e3, 3),
        "p99_ms": round(pct(times_s, 99) * 1e3, 3),
        "recall_at_1": round(first / max(1, len(with_hit)), 4), "recall_at_8": round(got / max(1, want), 4),
        "hits_missed": missed,
        "exact_sims": sims_exact, **extra,
    }


def bench_memory(stored: np.ndarray, asked: np.ndarray, truth: list, quantized: bool, warmup: int) -> dict:
    from routing.cache.semantic.memory import MemoryVectorIndex

    feats = features("How do I reset my password?")
    rss0 = rss_kb([os.getpid()])
    store = MemoryVectorIndex(DIM, len(stored) + 1, quantized=quantized)
    t0 = time.perf_counter()
    for row, vector in enumerate(stored):
        store.add(NAMESPACE, ENTRY(row), vector, feats, 3600)
    fill_s = time.perf_counter() - t0
    rss_mb = (rss_kb([os.getpid()]) - rss0) / 1024
    for q in asked[:warmup]:
        store.search(NAMESPACE, q, CANDIDATES, DEFAULT_THRESHOLD)
    found, times = [], []
    for q in asked:
        t = time.perf_counter()
        result = store.search(NAMESPACE, q, CANDIDATES, DEFAULT_THRESHOLD)
        times.append(time.perf_counter() - t)
        found.append([(int(c.entry_id[1:]), c.similarity) for c in result])
    name = "in-process, int8 scan + float32 re-rank" if quantized else "in-process, float32 scan"
    out = score(name, found, truth, times, stored, asked, {
        "index_mb": round(store.nbytes() / 2**20, 1), "rss_growth_mb": round(rss_mb, 1),
        "fill_s": round(fill_s, 1)})
    del store
    return out


def other_namespace(row: int) -> tuple[str, int]:
    """(namespace, entry number in it) of row `row` of the rows in other namespaces."""
    return f"bench:0:team:other{row % OTHER_NAMESPACES}:ctx", row // OTHER_NAMESPACES


def fill_pgvector(url: str, stored: np.ndarray, others: np.ndarray, hnsw: dict) -> dict:
    """The table emptied, filled by COPY (indexes dropped first: one bulk build beats
    100,000 inserts into the graph), its indexes built as PgVectorIndex creates them."""
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg.types.json import Jsonb

    from routing.cache.semantic.pgvector import TABLE, index_statements

    feats = Jsonb(features("How do I reset my password?").to_json())
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        foreign = conn.execute(f"SELECT count(*) FROM {TABLE} WHERE namespace NOT LIKE 'bench:%%'").fetchone()[0]
        if foreign:
            sys.exit(f"{TABLE} at {url} holds {foreign:,} rows of a gateway: use a scratch database")
        conn.execute(f"TRUNCATE {TABLE}")
        for name in index_statements():
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        t0 = time.perf_counter()
        expires = conn.execute("SELECT now() + interval '1 day'").fetchone()[0]
        with conn.cursor().copy(f"COPY {TABLE} (namespace, entry_id, embedding, features, expires_at) "
                                "FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["text", "text", "vector", "jsonb", "timestamptz"])
            for row, vector in enumerate(stored):
                copy.write_row((NAMESPACE, ENTRY(row), vector, feats, expires))
            for row, vector in enumerate(others):
                namespace, number = other_namespace(row)
                copy.write_row((namespace, ENTRY(number), vector, feats, expires))
        copy_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '2GB'")  # the graph is built in memory
        for statement in index_statements(**hnsw).values():
            conn.execute(statement)
        build_s = time.perf_counter() - t0
        conn.execute(f"VACUUM ANALYZE {TABLE}")
        sizes = conn.execute("SELECT pg_total_relation_size(%s), pg_relation_size(%s)",
                             (TABLE, f"{TABLE}_hnsw")).fetchone()
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
    return {"version": version, **hnsw, "copy_s": round(copy_s, 1), "index_build_s": round(build_s, 1),
            "table_mb": round(sizes[0] / 2**20, 1), "hnsw_mb": round(sizes[1] / 2**20, 1)}


def reset_pgvector(url: str) -> None:
    """The table emptied, with the gateway's own indexes (rebuilt: instant on no rows)."""
    import psycopg

    from routing.cache.semantic.pgvector import TABLE, index_statements

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLE}")
        for name, statement in index_statements().items():
            conn.execute(f"DROP INDEX IF EXISTS {name}")
            conn.execute(statement)


def explain(url: str, namespace: str, vector: np.ndarray, ef_search: int) -> str:
    """The plan of one search, run with the pool's session settings (EXPLAIN ANALYZE)."""
    import psycopg
    from pgvector.psycopg import register_vector

    from routing.cache.semantic.pgvector import SEARCH_SQL, session_settings

    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        for statement in session_settings(ef_search):
            conn.execute(statement)
        rows = conn.execute("EXPLAIN (ANALYZE, COSTS OFF, BUFFERS) " + SEARCH_SQL,
                            {"v": vector, "ns": namespace, "k": CANDIDATES}).fetchall()
    return "\n".join(re.sub(r"'\[[^]]*\]'", "'[...]'", r[0]) for r in rows)


async def search_pgvector(url: str, namespace: str, stored: np.ndarray, asked: np.ndarray, truth: list,
                          ef_search: int, warmup: int, filled: dict) -> dict:
    from routing.cache.semantic.pgvector import PgVectorIndex

    index = PgVectorIndex(url, DIM, ef_search=ef_search)
    try:
        for q in asked[:warmup]:
            await index.search(namespace, q, CANDIDATES, DEFAULT_THRESHOLD)
        found, times = [], []
        for q in asked:
            t = time.perf_counter()
            result = await index.search(namespace, q, CANDIDATES, DEFAULT_THRESHOLD)
            times.append(time.perf_counter() - t)
            found.append([(int(c.entry_id[1:]), c.similarity) for c in result])
    finally:
        await index.aclose()
    name = f"pgvector {filled['version']}, HNSW m {filled['m']}, ef_construction {filled['ef_construction']}, ef_search {ef_search}"
    if filled["other_rows"]:
        name += f"; table {filled['table_rows']:,} rows in {OTHER_NAMESPACES + 1:,} namespaces"
    return score(name, found, truth, times, stored, asked, {**filled, "ef_search": ef_search})


def markdown(rows: list[dict]) -> str:
    lines = ["| index | entries in the namespace | p50 ms | p95 ms | recall@1 | recall@8 | "
             "queries with a hit (none found) | memory |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        memory = (f"{r['index_mb']} MB arrays (+{r['rss_growth_mb']} MB RSS)" if "index_mb" in r
                  else f"{r['table_mb']} MB table+indexes (HNSW {r['hnsw_mb']} MB)")
        recall = (f"{r['recall_at_1']:.4f} | {r['recall_at_8']:.4f}" if r["queries_with_hit"] else "- | -")
        lines.append(f"| {r['index']} | {r['entries']:,} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {recall} | "
                     f"{r['queries_with_hit']}/{r['queries']} ({r['hits_missed']}) | {memory} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--pgvector", metavar="URL",
                    help="also the PostgreSQL + pgvector index, in this (scratch) database")
    ap.add_argument("--other-rows", type=int, default=0, help="pgvector: rows in other namespaces too")
    ap.add_argument("--ef-search", type=int, nargs="+", default=[EF_SEARCH],
                    help="pgvector: hnsw.ef_search values to measure (default: the gateway's)")
    ap.add_argument("--hnsw-m", type=int, default=HNSW_M, help="pgvector: the HNSW index's m (default: the gateway's)")
    ap.add_argument("--hnsw-ef-construction", type=int, default=HNSW_EF_CONSTRUCTION,
                    help="pgvector: the HNSW index's ef_construction (default: the gateway's)")
    ap.add_argument("--keep-table", action="store_true", help="pgvector: leave the rows in the table")
    ap.add_argument("--no-float32", action="store_true", help="skip the plain float32 scan (the old search)")
    ap.add_argument("--no-memory", action="store_true", help="skip the in-process index")
    ap.add_argument("--wait-quiet", type=float, default=60, help="wait up to S seconds for an idle machine")
    ap.add_argument("--cache-dir", type=Path, default=Path("/tmp/gw-bench-vectors"))
    ap.add_argument("--json", type=Path, help="write the rows (and machine facts) here")
    args = ap.parse_args()

    stored, asked, real = dataset(args.entries, args.queries, args.cache_dir, args.seed)
    truth = exact_top(stored, asked, CANDIDATES, DEFAULT_THRESHOLD)
    print(f"{args.entries:,} entries in one namespace from {real:,} real texts, {args.queries} queries, "
          f"threshold {DEFAULT_THRESHOLD}, k = {CANDIDATES}", file=sys.stderr)
    busy = wait_quiet(args.wait_quiet)
    noise = NoiseMeter()
    rows = []
    if not args.no_memory:
        from routing.cache.semantic.memory import _faiss

        if _faiss() is not None:
            rows.append(bench_memory(stored, asked, truth, True, args.warmup))
        else:
            print("faiss-cpu is not installed: the int8 scan is not measured", file=sys.stderr)
        if not args.no_float32:
            rows.append(bench_memory(stored, asked, truth, False, args.warmup))
    if args.pgvector:
        from routing.cache.semantic.pgvector import PgVectorIndex

        url = PgVectorIndex(args.pgvector, DIM).url
        asyncio.run(PgVectorIndex(url, DIM)._create_schema())
        hnsw = {"m": args.hnsw_m, "ef_construction": args.hnsw_ef_construction}
        others = copies(stored, args.other_rows, np.random.default_rng(args.seed + 1))
        filled = {**fill_pgvector(url, stored, others, hnsw), "other_rows": args.other_rows,
                  "table_rows": len(stored) + len(others)}
        print(f"pgvector table filled: {filled}", file=sys.stderr)
        # With --other-rows, also one small namespace of the same table (the filter's other end).
        small = others[0::OTHER_NAMESPACES]
        spaces = [(NAMESPACE, stored, truth)]
        if len(small):
            spaces.append((other_namespace(0)[0], small, exact_top(small, asked, CANDIDATES, DEFAULT_THRESHOLD)))
        try:
            for ef in args.ef_search:
                for namespace, vectors, expected in spaces:
                    rows.append(asyncio.run(search_pgvector(url, namespace, vectors, asked, expected, ef,
                                                            args.warmup, filled)))
            for namespace, _, _ in spaces:
                print(explain(url, namespace, asked[0], args.ef_search[0]), file=sys.stderr)
        finally:
            if not args.keep_table:
                reset_pgvector(url)
    for r in rows:
        print(json.dumps(r), file=sys.stderr)
    machine = {**machine_info(), "busy_pct_before": busy, **noise.report()}
    print(f"machine: {machine['cpu']}, {machine['cores']} cores; other processes used "
          f"{machine['other_cpu_pct_of_machine']}% of it while measuring", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "machine": machine, "args": vars(args)}, default=str, indent=1))
    print(markdown(rows))


if __name__ == "__main__":
    run_main(main)
