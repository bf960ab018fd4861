"""Spend control shared by every call a campaign makes: per-model rate limits (requests and tokens per minute,
calls in flight), a common backoff on 429s that honours Retry-After, and the campaign's budget.

Two implementations with one interface: `LocalLimiter` holds the state in this process (embedded mode), and
`probe.limits_redis.RedisLimiter` holds it in Redis behind atomic Lua scripts, so the limits and the budget hold
across the whole fleet, not per worker process. Both space requests by a generic cell rate algorithm (GCRA): each
call reserves the next free slot (one every 60/rpm s, and its estimated tokens at tpm), sleeps until it and
settles its real token count afterwards. There is no burst allowance, so no window of any length sees more than
its share plus one. Without limits a call only checks the common backoff.

Why not LiteLLM's Router: its TPM check reads the local process's counters only, so N processes allow N x TPM
(litellm issues #27736, #40291), and its Redis counters have drifted (#8430). LiteLLM's own retries would also
swallow 429s before any outer limiter saw them: calls go out with num_retries=0 and probe.execute retries them,
telling the limiter about each 429.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

from probe.spec import ModelSpec

# Requests are spaced this much wider than the limit asks: a call that leaves late (a busy event loop) and the next
# on time must still arrive within the provider's count.
MARGIN = float(os.environ.get("PROBE_RATE_MARGIN", "0.03"))
HORIZON_S = 2.0  # a call reserves a slot at most this far ahead; further off, it waits and asks again
DEFAULT_RETRY_AFTER_S = 1.0  # a 429 without Retry-After
NANO = 1e9  # budgets are kept in nano-dollars (integers: Redis adds them exactly)


def model_key(spec: ModelSpec) -> str:
    """Limits are per model and server (one key at one provider), whichever campaign calls it."""
    return hashlib.sha1(f"{spec.id}|{spec.api_base or ''}".encode()).hexdigest()[:16]


def limits_of(spec: ModelSpec) -> tuple[float, float, int]:
    """(rpm, tpm, max_concurrency) as enforced: rates MARGIN below the spec's; 0 is no limit."""
    return (spec.rpm or 0.0) * (1 - MARGIN), (spec.tpm or 0.0) * (1 - MARGIN), spec.max_concurrency or 0


def has_limits(spec: ModelSpec) -> bool:
    return any(limits_of(spec))


def missed(at: float, rpm: float, tries: int) -> bool:
    """Whether a call woke so late for its slot (a busy event loop: calls whose slots passed meanwhile would all go
    at once) that it should take a new slot instead; at most 3 times, so a loaded process still gets its turn."""
    return bool(rpm) and tries < 3 and time.monotonic() - at > max(60.0 / rpm, 0.05)


@dataclass
class Permit:
    model: str
    holder: str
    tokens: int


@dataclass
class _ModelState:
    tat_r: float = 0.0  # when the next request may start (monotonic seconds)
    tat_t: float = 0.0  # when the token budget has room again
    cool: float = 0.0  # no call starts before this (a 429's Retry-After)
    holders: dict[str, float] = field(default_factory=dict)  # holder -> expiry
    grants: deque = field(default_factory=deque)  # start times in the last minute, oldest first
    info: dict = field(default_factory=dict)


class Limiter:
    """The interface execute uses; see LocalLimiter for the semantics."""

    async def acquire(self, spec: ModelSpec, tokens: int, hold_s: float) -> Permit:
        raise NotImplementedError

    async def release(self, permit: Permit, spec: ModelSpec, real_tokens: int | None) -> None:
        raise NotImplementedError

    async def backoff(self, spec: ModelSpec, retry_after: float | None) -> float:
        raise NotImplementedError

    async def observe(self, spec: ModelSpec, rate_limits: dict) -> None:
        raise NotImplementedError

    async def reserve(self, campaign_id: str, usd: float, cap: float, spent) -> bool:
        """Reserve `usd` of the campaign's budget `cap` if done plus reserved plus it stays within the cap;
        spent() gives the store's total when the budget is first used (or after a resume reset it)."""
        raise NotImplementedError

    async def settle(self, campaign_id: str, reserved: float, real: float) -> None:
        raise NotImplementedError

    def reset_budget(self, campaign_id: str) -> None:
        raise NotImplementedError

    def budget(self, campaign_id: str) -> dict | None:
        raise NotImplementedError

    def model_info(self, spec: ModelSpec) -> dict:
        raise NotImplementedError


class LocalLimiter(Limiter):
    """Limits and budgets in this process (embedded mode: one event loop; run_embedded uses one process when a
    campaign has limits or a budget, so they hold as given)."""

    def __init__(self):
        self.models: dict[str, _ModelState] = {}
        self.budgets: dict[str, dict[str, int]] = {}

    def _state(self, spec: ModelSpec) -> _ModelState:
        return self.models.setdefault(model_key(spec), _ModelState(info={"model": spec.id, "api_base": spec.api_base}))

    async def acquire(self, spec: ModelSpec, tokens: int, hold_s: float) -> Permit:
        rpm, tpm, maxc = limits_of(spec)
        st = self._state(spec)
        holder, tries = uuid.uuid4().hex[:12], 0
        while True:
            now = time.monotonic()
            at = max(now, st.cool, st.tat_r if rpm else now, st.tat_t if tpm else now)
            if maxc:
                st.holders = {h: e for h, e in st.holders.items() if e > now}
            if at - now > HORIZON_S or (maxc and len(st.holders) >= maxc):
                await asyncio.sleep(min(max(at - now - HORIZON_S, 0.02), HORIZON_S))
                continue
            if rpm:
                st.tat_r = at + 60.0 / rpm
            if tpm:
                st.tat_t = max(st.tat_t, at) + tokens * 60.0 / tpm
            if maxc:
                st.holders[holder] = at + hold_s
            while st.grants and st.grants[0] <= now - 60:  # not a new list per call: ~6,000 at 100 calls/s
                st.grants.popleft()
            st.grants.append(at)
            if at > now:
                await asyncio.sleep(at - now)
                cooling, late = st.cool > time.monotonic(), missed(at, rpm, tries)
                if cooling or late:  # a 429 came while this call waited for its slot, or a busy loop woke it late
                    st.holders.pop(holder, None)
                    tries += late
                    continue
            return Permit(model_key(spec), holder, tokens)

    async def release(self, permit: Permit, spec: ModelSpec, real_tokens: int | None) -> None:
        st = self._state(spec)
        st.holders.pop(permit.holder, None)
        _, tpm, _ = limits_of(spec)
        if tpm and real_tokens is not None and real_tokens != permit.tokens:
            st.tat_t = max(st.tat_t - (permit.tokens - real_tokens) * 60.0 / tpm, time.monotonic())

    async def backoff(self, spec: ModelSpec, retry_after: float | None) -> float:
        st = self._state(spec)
        now = time.monotonic()
        wait = retry_after if retry_after is not None else DEFAULT_RETRY_AFTER_S
        if st.cool <= now:  # the first 429 of a stretch: how many calls started in the minute before it
            st.info["rpm_at_429"] = len([g for g in st.grants if now - 60 < g <= now])
        st.cool = max(st.cool, now + wait)
        st.tat_r = max(st.tat_r, st.cool)
        st.info["n_429"] = st.info.get("n_429", 0) + 1
        st.info["last_429"] = time.time()
        return st.cool - now

    async def observe(self, spec: ModelSpec, rate_limits: dict) -> None:
        self._state(spec).info.update({f"provider_{k}_per_min": v for k, v in rate_limits.items()})

    async def reserve(self, campaign_id: str, usd: float, cap: float, spent) -> bool:
        b = self.budgets.get(campaign_id)
        if b is None:  # after the await another call may have opened it (and reserved): keep that one
            total = round(await asyncio.to_thread(spent) * NANO)
            b = self.budgets.setdefault(campaign_id, {"spent": total, "reserved": 0})
        est = math.ceil(usd * NANO)
        if b["spent"] + b["reserved"] + est > round(cap * NANO):
            return False
        b["reserved"] += est
        return True

    async def settle(self, campaign_id: str, reserved: float, real: float) -> None:
        b = self.budgets.get(campaign_id)
        if b is None:  # reset meanwhile (a resume): counted again from the store
            return
        b["reserved"] -= math.ceil(reserved * NANO)
        b["spent"] += round(real * NANO)

    def reset_budget(self, campaign_id: str) -> None:
        self.budgets.pop(campaign_id, None)

    def budget(self, campaign_id: str) -> dict | None:
        b = self.budgets.get(campaign_id)
        return {"spent": b["spent"] / NANO, "reserved": b["reserved"] / NANO} if b else None

    def model_info(self, spec: ModelSpec) -> dict:
        st = self._state(spec)
        return st.info | {"cooling_down_s": round(max(st.cool - time.monotonic(), 0.0), 3)}


_local: LocalLimiter | None = None
_shared: dict[str, Limiter] = {}


def local() -> LocalLimiter:
    global _local
    if _local is None:
        _local = LocalLimiter()
    return _local


def shared(broker: str | None) -> Limiter:
    """The fleet's limiter in the broker's Redis; without a Redis broker, this process's."""
    if not broker or not broker.startswith(("redis://", "rediss://", "unix://")):
        return local()
    if broker not in _shared:
        from probe.limits_redis import RedisLimiter

        _shared[broker] = RedisLimiter(broker)
    return _shared[broker]
