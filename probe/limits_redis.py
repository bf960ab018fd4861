"""The fleet's limiter: the state of probe.limits.LocalLimiter in Redis, changed only by atomic Lua scripts that
read Redis's own clock (TIME), so every worker on every machine sees one limit, one backoff and one budget.

Keys (all under probe:lim: or probe:budget:, expiring when idle): per model key a hash (tat_r, tat_t, cool),
a sorted set of calls in flight (scored by when their hold lapses, so a dead worker's calls free themselves),
per-minute start counters, and an info hash (learned limits, 429s); per campaign a budget hash (spent and
reserved, in nano-dollars).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
import uuid

from probe.limits import DEFAULT_RETRY_AFTER_S, HORIZON_S, NANO, Limiter, Permit, limits_of, missed, model_key
from probe.spec import ModelSpec

log = logging.getLogger(__name__)
# How long a call waits for a Redis that went away (a restart) before its task fails and is retried.
RIDE_OUT_S = float(os.environ.get("PROBE_FLUSH_RETRY_S", "180"))

_NOW = "local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

# KEYS: state, inflight, minute-counter prefix. ARGV: rpm, tpm, max_concurrency, tokens, holder, hold_ms, horizon_ms
# Returns {granted (1|0), ms to wait}: granted, sleep until the slot; refused, ask again after the wait (-1: soon).
ACQUIRE = _NOW + """
local rpm, tpm, maxc = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens, holder, hold, horizon = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local v = redis.call('HMGET', KEYS[1], 'tat_r', 'tat_t', 'cool')
local tat_r, tat_t, cool = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0
local at = now
if cool > at then at = cool end
if rpm > 0 and tat_r > at then at = tat_r end
if tpm > 0 and tat_t > at then at = tat_t end
if at - now > horizon then return {0, at - now - horizon} end
if maxc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= maxc then return {0, -1} end
  redis.call('ZADD', KEYS[2], at + hold, holder)
  redis.call('PEXPIRE', KEYS[2], 3600000)
end
if rpm > 0 then redis.call('HSET', KEYS[1], 'tat_r', at + 60000 / rpm) end
if tpm > 0 then redis.call('HSET', KEYS[1], 'tat_t', math.max(tat_t, at) + tokens * 60000 / tpm) end
redis.call('PEXPIRE', KEYS[1], 3600000)
local m = KEYS[3] .. math.floor(at / 60000)
redis.call('INCR', m)
redis.call('EXPIRE', m, 180)
return {1, at - now}
"""

# After sleeping until its slot: is a 429's backoff now in force? Returns ms left of it (0: go).
COOLING = _NOW + """
local cool = tonumber(redis.call('HGET', KEYS[1], 'cool')) or 0
if cool > now then redis.call('ZREM', KEYS[2], ARGV[1]); return cool - now end
return 0
"""

# KEYS: state, inflight. ARGV: holder, tpm, tokens given back (estimate - real)
RELEASE = _NOW + """
redis.call('ZREM', KEYS[2], ARGV[1])
local tpm, back = tonumber(ARGV[2]), tonumber(ARGV[3])
if tpm > 0 and back ~= 0 then
  local tat_t = tonumber(redis.call('HGET', KEYS[1], 'tat_t')) or 0
  redis.call('HSET', KEYS[1], 'tat_t', math.max(tat_t - back * 60000 / tpm, now))
end
return 1
"""

# KEYS: state, info, minute-counter prefix. ARGV: wait ms. The first 429 of a stretch records the starts of the
# minute before it: the rate the provider really allowed.
BACKOFF = _NOW + """
local cool = tonumber(redis.call('HGET', KEYS[1], 'cool')) or 0
if cool <= now then
  local minute = math.floor(now / 60000)
  local cur = tonumber(redis.call('GET', KEYS[3] .. minute)) or 0
  local prev = tonumber(redis.call('GET', KEYS[3] .. (minute - 1))) or 0
  redis.call('HSET', KEYS[2], 'rpm_at_429', math.floor(cur + prev * (1 - (now % 60000) / 60000)))
end
local new = math.max(cool, now + tonumber(ARGV[1]))
local tat_r = tonumber(redis.call('HGET', KEYS[1], 'tat_r')) or 0
redis.call('HSET', KEYS[1], 'cool', new, 'tat_r', math.max(tat_r, new))
redis.call('PEXPIRE', KEYS[1], 3600000)
redis.call('HINCRBY', KEYS[2], 'n_429', 1)
redis.call('HSET', KEYS[2], 'last_429', t[1])
return new - now
"""

# KEYS: budget. ARGV: estimate, cap (nano-dollars). -1: not initialised (the caller sets spent from the store).
RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent')) or 0
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved')) or 0
if spent + reserved + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], 'reserved', ARGV[1])
return 1
"""


# KEYS: budget. ARGV: spent so far by the store (nano-dollars). A budget Redis lost (or a resume reset) is counted
# again from the store.
INIT = """
redis.call('HSETNX', KEYS[1], 'spent', ARGV[1])
redis.call('HSETNX', KEYS[1], 'reserved', 0)
redis.call('EXPIRE', KEYS[1], 2592000)
return 1
"""

# KEYS: budget. ARGV: reserved, real (nano-dollars). A budget reset meanwhile (a resume) is left alone: it is
# counted again from the store, and a negative reservation must not appear in it.
SETTLE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'reserved', -tonumber(ARGV[1]))
redis.call('HINCRBY', KEYS[1], 'spent', ARGV[2])
return 1
"""


class RedisLimiter(Limiter):
    def __init__(self, url: str):
        self.url = url
        self._clients: dict[int, tuple] = {}  # id(event loop) -> (client, scripts): redis.asyncio is per loop

    def _c(self):
        loop = asyncio.get_running_loop()
        got = self._clients.get(id(loop))
        if got is None or got[0] is not loop:
            import redis.asyncio as aioredis

            r = aioredis.from_url(self.url, socket_timeout=10, socket_connect_timeout=5)
            got = (loop, r, {n: r.register_script(s) for n, s in
                             (("acquire", ACQUIRE), ("cooling", COOLING), ("release", RELEASE),
                              ("backoff", BACKOFF), ("reserve", RESERVE), ("settle", SETTLE), ("init", INIT))})
            self._clients[id(loop)] = got
        return got[1], got[2]

    async def _run(self, name: str, keys: list[str], args: list, must: bool = True):
        """A script, tried again while Redis is unreachable (a restart: calls wait for it rather than go past the
        fleet's limits or budget); must=False (releases, 429 notes): one try, a failure only logged, since holds
        lapse by themselves and the store keeps the real costs."""
        import redis

        deadline, pause = time.monotonic() + RIDE_OUT_S, 0.2
        while True:
            try:
                return await self._c()[1][name](keys=keys, args=args)
            except (redis.ConnectionError, redis.TimeoutError) as e:
                if not must:
                    log.warning("limiter: %s skipped, Redis unreachable (%s)", name, str(e)[:120])
                    return None
                if time.monotonic() > deadline:
                    raise
                log.warning("limiter: Redis unreachable (%s); trying again in %.1f s", str(e)[:120], pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

    @staticmethod
    def _keys(spec: ModelSpec) -> tuple[str, str, str, str]:
        k = f"probe:lim:{model_key(spec)}"
        return f"{k}:state", f"{k}:inflight", f"{k}:starts:", f"{k}:info"

    async def acquire(self, spec: ModelSpec, tokens: int, hold_s: float) -> Permit:
        rpm, tpm, maxc = limits_of(spec)
        st, inflight, starts, info = self._keys(spec)
        holder, tries = uuid.uuid4().hex[:12], 0
        while True:
            ok, wait_ms = await self._run("acquire", [st, inflight, starts],
                                          [rpm, tpm, maxc, tokens, holder, int(hold_s * 1000), int(HORIZON_S * 1000)])
            if not ok:
                await asyncio.sleep(0.05 if wait_ms < 0 else min(wait_ms / 1000, HORIZON_S))
                continue
            if wait_ms > 0:
                at = time.monotonic() + wait_ms / 1000
                await asyncio.sleep(wait_ms / 1000)
                if await self._run("cooling", [st, inflight], [holder]):
                    continue  # a 429 came while this call waited for its slot: queue again behind the backoff
                if missed(at, rpm, tries):  # woke late (a busy loop): a fresh slot, not a burst with the others
                    await self._run("release", [st, inflight], [holder, 0, 0], must=False)
                    tries += 1
                    continue
            return Permit(model_key(spec), holder, tokens)

    async def release(self, permit: Permit, spec: ModelSpec, real_tokens: int | None) -> None:
        _, tpm, _ = limits_of(spec)
        st, inflight, _, _ = self._keys(spec)
        back = permit.tokens - real_tokens if real_tokens is not None else 0
        await self._run("release", [st, inflight], [permit.holder, tpm, back], must=False)

    async def backoff(self, spec: ModelSpec, retry_after: float | None) -> float:
        st, _, starts, info = self._keys(spec)
        wait = retry_after if retry_after is not None else DEFAULT_RETRY_AFTER_S
        left = await self._run("backoff", [st, info, starts], [int(wait * 1000)])
        return left / 1000

    async def observe(self, spec: ModelSpec, rate_limits: dict) -> None:
        import redis

        try:
            await self._c()[0].hset(self._keys(spec)[3], mapping={f"provider_{k}_per_min": v for k, v in
                                                                  rate_limits.items()})
        except (redis.ConnectionError, redis.TimeoutError):
            pass  # a note for `probe status`; the next response brings it again

    async def reserve(self, campaign_id: str, usd: float, cap: float, spent) -> bool:
        key = f"probe:budget:{campaign_id}"
        while True:
            got = await self._run("reserve", [key], [math.ceil(usd * NANO), round(cap * NANO)])
            if got >= 0:
                return bool(got)
            done = round(await asyncio.to_thread(spent) * NANO)
            await self._run("init", [key], [done])  # the first worker's figure wins

    async def settle(self, campaign_id: str, reserved: float, real: float) -> None:
        await self._run("settle", [f"probe:budget:{campaign_id}"], [math.ceil(reserved * NANO), round(real * NANO)],
                        must=False)

    # -- synchronous reads and resets for the CLI --------------------------------------------------------------
    def _sync(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=3)

    def reset_budget(self, campaign_id: str) -> None:
        self._sync().delete(f"probe:budget:{campaign_id}")

    def budget(self, campaign_id: str) -> dict | None:
        b = self._sync().hgetall(f"probe:budget:{campaign_id}")
        if not b:
            return None
        return {"spent": int(b.get(b"spent", 0)) / NANO, "reserved": int(b.get(b"reserved", 0)) / NANO}

    def model_info(self, spec: ModelSpec) -> dict:
        r = self._sync()
        st, _, _, info = self._keys(spec)
        raw = {k.decode(): v.decode() for k, v in r.hgetall(info).items()}
        out: dict = {k: (int(v) if v.isdigit() else v) for k, v in raw.items() if k not in ("model", "api_base")}
        cool = r.hget(st, "cool")
        secs, micros = r.time()
        out["cooling_down_s"] = round(max(float(cool or 0) - (secs * 1000 + micros / 1000), 0.0) / 1000, 3)
        if "last_429" in out:
            out["last_429_s_ago"] = round(time.time() - out.pop("last_429"), 1)
        return out
