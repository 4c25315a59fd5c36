"""µs per `billing.keys.authenticate` on the hot path (issue 16, docs/security/keys.md).

    .venv/bin/python bench/keys_hash_cost.py [-n 200000] [--json-out FILE]

In one process, on a scratch SQLite database: issues a key, warms the in-process key
cache, then times N calls of `authenticate("Bearer <key>")` for the valid key (a cache
hit) and for one unknown key (a cached miss), inside one running event loop, and the
hash function alone. Reports the fastest of 5 rounds, in µs per call. No database round
trip happens inside the timed loops (the cache entries are fresh: GATEWAY_CONFIG_TTL_S
is raised to 3600 for the run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("-n", type=int, default=200_000)
    p.add_argument("--json-out")
    args = p.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="gw-keys-cost-"))
    os.environ.update(GATEWAY_VAR_DIR=str(scratch), DATABASE_URL=f"sqlite:///{scratch / 'db.sqlite3'}",
                      GATEWAY_CONFIG_TTL_S="3600", DJANGO_SETTINGS_MODULE="gateway_project.settings",
                      LOG_LEVEL="WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from billing import keys

    secret = keys.issue_key("cost").secret
    valid, unknown = f"Bearer {secret}", "Bearer sk-gw-" + "x" * 43

    async def timed(header: str, n: int) -> float:
        try:
            await keys.authenticate(header)  # warm the cache entry
        except keys.AuthenticationFailed:
            pass
        t0 = time.perf_counter()
        for _ in range(n):
            try:
                await keys.authenticate(header)
            except keys.AuthenticationFailed:
                pass
        return (time.perf_counter() - t0) / n * 1e6

    def hash_only(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            keys.hash_key(secret)
        return (time.perf_counter() - t0) / n * 1e6

    async def rounds() -> dict:
        out: dict[str, list[float]] = {"valid_key_us": [], "unknown_key_us": [], "hash_only_us": []}
        for _ in range(5):
            out["valid_key_us"].append(await timed(valid, args.n))
            out["unknown_key_us"].append(await timed(unknown, args.n))
            out["hash_only_us"].append(hash_only(args.n))
        # The fastest round: on a shared machine the slower ones measure the neighbours.
        return {k: round(min(v), 3) for k, v in out.items()}

    result = asyncio.run(rounds())
    result["n"] = args.n
    print(json.dumps(result, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
