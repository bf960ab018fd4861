"""The fleet's limiter in a real Redis, shared by several processes: its Lua scripts make the budget and the rpm
exact whoever asks."""

from __future__ import annotations

import asyncio
import multiprocessing
import time

import pytest

from probe.limits_redis import RedisLimiter
from probe.spec import ModelSpec
from tests.unit.test_limits import starts

pytestmark = pytest.mark.fleet


def _reserver(url: str, q) -> None:
    lim = RedisLimiter(url)

    async def main():
        n = 0
        while await lim.reserve("shared", 0.01, 1.0, lambda: 0.0):
            n += 1
        return n

    q.put(asyncio.run(main()))


def _starter(url: str, api_base: str, q) -> None:
    s = ModelSpec(id="openai/unit", api_base=api_base, rpm=3000)
    q.put(asyncio.run(starts(RedisLimiter(url), s, 10)))


def test_redis_budget_and_rpm_hold_across_processes(redis_url):
    """Four processes race for one budget; three share one rpm: Redis's scripts make both exact."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    RedisLimiter(redis_url).reset_budget("shared")
    procs = [ctx.Process(target=_reserver, args=(redis_url, q)) for _ in range(4)]
    for p in procs:
        p.start()
    got = [q.get(timeout=60) for _ in procs]
    assert sum(got) == 100, got  # $1.00 in $0.01 reservations: exactly 100, whoever got them
    assert RedisLimiter(redis_url).budget("shared")["reserved"] == pytest.approx(1.0)

    api_base = f"http://127.0.0.1:1/{time.monotonic_ns()}"
    procs = [ctx.Process(target=_starter, args=(redis_url, api_base, q)) for _ in range(3)]
    for p in procs:
        p.start()
    # monotonic clocks are one per machine (CLOCK_MONOTONIC), so the processes' start times compare
    t = sorted(x for _ in procs for x in q.get(timeout=60))
    assert len(t) == 30
    assert t[-1] - t[0] >= 29 * 0.020 * 0.95, t[-1] - t[0]  # 3000 rpm: 20 ms apart across all three
    for p in procs:
        p.join(10)
