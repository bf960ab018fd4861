"""The limiter and the budget in-process (LocalLimiter; the Redis one is in tests/integration/test_limiter_redis.py),
and the response cache's key: what must and must not make two requests the same."""

from __future__ import annotations

import asyncio
import time

import pytest

from probe import cache, limits
from probe.spec import ModelSpec


def spec(**kw) -> ModelSpec:
    return ModelSpec(id="openai/unit", api_base=f"http://127.0.0.1:1/{time.monotonic_ns()}", **kw)


async def starts(lim: limits.Limiter, s: ModelSpec, n: int, hold: float = 0.0) -> list[float]:
    out = []

    async def one():
        p = await lim.acquire(s, 10, 30)
        out.append(time.monotonic())
        await asyncio.sleep(hold)
        await lim.release(p, s, 10)

    await asyncio.gather(*(one() for _ in range(n)))
    return sorted(out)


def test_local_rpm_spaces_every_start():
    s = spec(rpm=1200)  # one start per 50 ms (51.5 with the margin)
    t = asyncio.run(starts(limits.LocalLimiter(), s, 20))
    spans = [t[i + 5] - t[i] for i in range(len(t) - 5)]  # a late wake-up moves one start, not the schedule
    assert min(spans) >= 5 * 0.0515 * 0.85, spans
    assert 19 * 0.05 <= t[-1] - t[0] <= 19 * 0.0515 + 0.3


def test_local_tpm_reserves_the_estimate_and_settles_the_real_count():
    s = spec(tpm=60_000 / 0.97)  # 1,000 tokens a second once the margin is taken
    lim = limits.LocalLimiter()

    async def main():
        t = []
        for real in (100, 100, 10, 10):  # each estimated at 100 tokens; the last two gave back 90 of them
            p = await lim.acquire(s, 100, 30)
            t.append(time.monotonic())
            await lim.release(p, s, real)
        return [b - a for a, b in zip(t, t[1:])]

    gaps = asyncio.run(main())
    assert gaps[0] >= 0.095 and gaps[1] >= 0.095  # 100 tokens at 1,000/s
    assert gaps[2] < 0.05, gaps  # the 90 tokens given back were credited


def test_local_max_concurrency_holds():
    s = spec(max_concurrency=3)
    lim, live, peak = limits.LocalLimiter(), [0], [0]

    async def one():
        p = await lim.acquire(s, 1, 30)
        live[0] += 1
        peak[0] = max(peak[0], live[0])
        await asyncio.sleep(0.03)
        live[0] -= 1
        await lim.release(p, s, 1)

    async def main():
        await asyncio.gather(*(one() for _ in range(12)))

    asyncio.run(main())
    assert peak[0] == 3


def test_local_backoff_holds_every_start_for_retry_after():
    s = spec()
    lim = limits.LocalLimiter()

    async def main():
        await lim.backoff(s, 0.4)
        t0 = time.monotonic()
        await lim.acquire(s, 1, 30)
        return time.monotonic() - t0

    assert asyncio.run(main()) >= 0.39
    assert lim.model_info(s)["n_429"] == 1


def test_local_budget_reserves_and_settles():
    lim = limits.LocalLimiter()

    async def main():
        got = [await lim.reserve("c", 0.3, 1.0, lambda: 0.1) for _ in range(4)]  # 0.1 already spent
        assert got == [True, True, True, False]
        await lim.settle("c", 0.3, 0.2)  # paid less than reserved: room for one more of 0.1
        assert await lim.reserve("c", 0.1, 1.0, lambda: 0.0)
        assert not await lim.reserve("c", 0.01, 1.0, lambda: 0.0)
        return lim.budget("c")

    b = asyncio.run(main())
    assert b["spent"] == pytest.approx(0.3) and b["reserved"] == pytest.approx(0.7)


def test_local_budget_opened_by_concurrent_first_calls_keeps_every_reservation():
    """The first calls of a campaign read its spend from the store in a thread; one that opens the budget after
    another did must not replace it (it lost that call's reservation: test_spend_embedded passed its cap in CI)."""
    lim = limits.LocalLimiter()

    def spent() -> float:
        time.sleep(0.05)  # the store's query: both first calls wait here together
        return 0.1

    async def main():
        got = await asyncio.gather(*(lim.reserve("c", 0.4, 1.0, spent) for _ in range(3)))
        return sorted(got), lim.budget("c")

    got, b = asyncio.run(main())
    assert got == [False, True, True] and b["reserved"] == pytest.approx(0.8) and b["spent"] == pytest.approx(0.1)


def test_cache_key_is_every_sent_parameter_and_the_messages():
    base = {"model": "openai/x", "api_base": None, "temperature": 1.0, "max_tokens": 8, "seed": 1,
            "logprobs": True, "top_logprobs": 20, "sent": ["temperature"], "dropped": []}
    msgs = [{"role": "user", "content": "Q?"}]
    k = cache.key(base, msgs)
    assert cache.key(dict(base, sent=["x"]), msgs) == k  # bookkeeping, not a sent parameter
    for change in ({"seed": 2}, {"temperature": 0.5}, {"api_base": "http://h/v1"}, {"max_tokens": 9},
                   {"logprobs": False}, {"top_logprobs": 5}, {"model": "openai/y"}):
        assert cache.key(base | change, msgs) != k, change
    assert cache.key(base, [{"role": "user", "content": "Q? "}]) != k
    ok = {"raw_text": "B", "error": None}
    assert cache.entry(k, "openai/x", ok, None)["completion"]["raw_text"] == "B"
    assert cache.entry(k, "openai/x", {"raw_text": None, "error": "InternalServerError: 500"}, None) is None
    assert cache.entry(k, "openai/x", {"raw_text": "  ", "error": None}, None) is None  # no content
    assert cache.parse_age("30d").days == 30
    with pytest.raises(ValueError):
        cache.parse_age("30 days")


def test_local_a_429_while_a_call_waits_for_its_slot_holds_it_back():
    s = spec(rpm=600)  # a slot every ~0.1 s
    lim = limits.LocalLimiter()

    async def main():
        await lim.acquire(s, 1, 30)  # the first slot, now
        waiting = asyncio.create_task(lim.acquire(s, 1, 30))  # the next slot, ~0.1 s away
        await asyncio.sleep(0.02)
        t0 = time.monotonic()
        await lim.backoff(s, 0.3)  # a 429 meanwhile: that call must wait for the Retry-After, not its slot
        await waiting
        return time.monotonic() - t0

    assert asyncio.run(main()) >= 0.29
