"""Spend control's costs: the limiter's CPU per call (with and without limits; in-process and in Redis) beside
LiteLLM's own CPU per call, and the response cache's lookup time with 1,000,000 entries in the store.

    .venv/bin/python bench/spend.py [--calls 5000] [--entries 1000000] [--lookups 5000] [--db URL] [--write-results]

The limiter is what every API call now passes twice (acquire, release): its cost should be a small fraction of
the ~6 ms of CPU LiteLLM spends per call (bench/RESULTS.md, Throughput). Redis's own CPU (the Lua scripts) is read
from /proc for the redis-server this bench starts. The cache lookup is one primary-key read; with 1,000,000
entries it should stay at a B-tree's depth, not grow with the table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

LITELLM_CPU_MS = 6.05  # bare LiteLLM CPU per call against the test server (bench/throughput.py, 2026-11-25)


def _proc_cpu(pid: int) -> float:
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _limiter_loop(lim, spec, n: int) -> None:
    for _ in range(n):
        p = await lim.acquire(spec, 100, 60)
        await lim.release(p, spec, 90)


def limiter_rows(calls: int) -> list[dict]:
    from probe import limits
    from probe.limits_redis import RedisLimiter
    from probe.spec import ModelSpec

    port = _free_port()
    redis = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    rows = []
    try:
        for where, lim in (("in-process", limits.LocalLimiter()), ("redis", RedisLimiter(f"redis://127.0.0.1:{port}/0"))):
            for label, kw in (("no limits (429 backoff check only)", {}),
                              ("rpm + tpm + max_concurrency", {"rpm": 1e9, "tpm": 1e12, "max_concurrency": 10_000})):
                spec = ModelSpec(id="openai/bench", api_base=f"http://bench/{label}", **kw)
                asyncio.run(_limiter_loop(lim, spec, 200))  # warm: connections, scripts loaded
                r0, c0, t0 = _proc_cpu(redis.pid), time.process_time(), time.perf_counter()
                asyncio.run(_limiter_loop(lim, spec, calls))
                cpu = (time.process_time() - c0) / calls * 1000
                rcpu = (_proc_cpu(redis.pid) - r0) / calls * 1000 if where == "redis" else 0.0
                rows.append({"limiter": where, "limits": label, "client_cpu_ms": cpu, "redis_cpu_ms": rcpu,
                             "wall_ms": (time.perf_counter() - t0) / calls * 1000,
                             "share_of_litellm": (cpu + rcpu) / LITELLM_CPU_MS})
    finally:
        redis.terminate()
        redis.wait(10)
    return rows


def cache_rows(db: str | None, entries: int, lookups: int) -> list[dict]:
    from sqlalchemy import func, insert, select

    from probe import cache
    from probe.store import Store
    from probe.store.schema import CachedResponse, utcnow

    tmp = None
    if db is None:
        tmp = tempfile.mkdtemp(prefix="probe-bench-cache-")
        db = f"sqlite:///{tmp}/cache.db"
    store = Store(db)
    with store.session() as s:
        have = s.scalar(select(func.count()).select_from(CachedResponse)) or 0
    t0 = time.perf_counter()
    completion = {"raw_text": "B", "top_logprobs": [["B", -0.1], ["A", -2.3]], "finish_reason": "stop",
                  "usage": {"prompt_tokens": 70, "completion_tokens": 1, "total_tokens": 71}, "letter_probs": None}
    now = utcnow()
    for start in range(have, entries, 20_000):
        with store.session.begin() as s:
            s.execute(insert(CachedResponse.__table__), [
                {"key": cache.key({"seed": i}, []), "model": f"openai/m{i % 4}", "completion": completion,
                 "cost": 1e-5, "created_at": now} for i in range(start, min(start + 20_000, entries))])
    fill_s = time.perf_counter() - t0
    rng = random.Random(0)
    rows = []
    for kind, keys in (("hit", [cache.key({"seed": rng.randrange(entries)}, []) for _ in range(lookups)]),
                       ("miss", [cache.key({"seed": -1 - i}, []) for i in range(lookups)])):
        for k in keys[:100]:
            cache.lookup(store, k)
        t0 = time.perf_counter()
        found = sum(cache.lookup(store, k) is not None for k in keys)
        us = (time.perf_counter() - t0) / lookups * 1e6
        assert found == (lookups if kind == "hit" else 0)
        rows.append({"store": store.engine.dialect.name, "entries": entries, "lookup": kind, "us_per_lookup": us,
                     "fill_s": fill_s})
    store.engine.dispose()
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--lookups", type=int, default=5000)
    ap.add_argument("--db", help="store URL for the cache (default: a new SQLite file); e.g. a PostgreSQL database")
    ap.add_argument("--write-results", action="store_true")
    a = ap.parse_args()
    lim = limiter_rows(a.calls)
    cac = cache_rows(a.db, a.entries, a.lookups)
    lines = ["| limiter | limits | client CPU ms/call | redis CPU ms/call | wall ms/call (sequential) | share of LiteLLM's "
             f"{LITELLM_CPU_MS} ms/call |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['limiter']} | {r['limits']} | {r['client_cpu_ms']:.3f} | {r['redis_cpu_ms']:.3f} | "
              f"{r['wall_ms']:.3f} | {100 * r['share_of_litellm']:.1f}% |" for r in lim]
    lines += ["", "| store | cache entries | lookup | µs per lookup | filling took s |", "|---|---|---|---|---|"]
    lines += [f"| {r['store']} | {r['entries']:,} | {r['lookup']} | {r['us_per_lookup']:.0f} | {r['fill_s']:.0f} |"
              for r in cac]
    table = "\n".join(lines)
    print(table)
    if a.write_results:
        head = (f"## Spend control: limiter overhead and cache lookups\n\nMachine: {platform.node()} "
                f"({os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}); date "
                f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; command `python bench/spend.py --write-results` "
                f"({a.calls} acquire+release pairs per row, {a.lookups} lookups per row).\n\n")
        res = ROOT / "bench" / "RESULTS.md"
        text = res.read_text()
        marker = "## Spend control: limiter overhead and cache lookups"
        if marker in text:
            before, _, rest = text.partition(marker)
            after = rest.split("\n## ", 1)
            text = before + head + table + "\n" + ("\n## " + after[1] if len(after) > 1 else "")
        else:
            text = text.rstrip() + "\n\n" + head + table + "\n"
        res.write_text(text)


if __name__ == "__main__":
    main()
