"""A paid model call: under the campaign's budget and the model's shared limits (probe.limits), with the retries
that let every 429 reach the limiter. probe.execute calls it for each item the cache did not answer."""

from __future__ import annotations

import asyncio
import math
import os
import random

from probe import limits
from probe.spec import CampaignSpec, ModelSpec
from probe.store import Item, Store


class BudgetReached(Exception):
    """Reserving this call's estimated cost would take committed spend past the campaign's max_cost."""


# per model: the largest ratio of the provider's prompt tokens to ours seen in this process. Budget estimates are
# scaled by it, so a tokenizer that counts fewer tokens than the provider does not let spend pass max_cost.
_undercount: dict[str, float] = {}
RATE_LIMITED_TRIES = int(os.environ.get("PROBE_RATE_LIMITED_TRIES", "30"))  # 429s, each after the fleet's backoff


async def paid_call(store: Store, campaign: CampaignSpec, item: Item, spec: ModelSpec, msgs: list[dict],
                    max_tokens: int, want_lp: bool, gate, limiter: limits.Limiter):
    """One model call under the campaign's budget and the model's shared limits. The budget reserves the call's
    estimated cost (prompt tokens + max_tokens at the model's prices) and settles the real cost afterwards.
    Retries are made here, not by LiteLLM, so every 429 reaches the limiter (the fleet backs off together, for
    Retry-After); other transient errors are retried num_retries times with jittered exponential backoff.
    gate: probe.execute's state gate (its `cap`, the budget now, and `budget_reached`, which pauses the campaign)."""
    from probe import models

    cap = gate.cap if gate else None
    governed = not models.is_offline(spec.id) or limits.has_limits(spec)
    tokens = models.count_tokens(spec, msgs) if (cap is not None or spec.tpm) else 0
    reserved = real = 0.0
    if cap is not None:  # prompt tokens as counted here, scaled up where the provider has counted more
        reserved = models.cost_of(spec, math.ceil(tokens * _undercount.get(spec.id, 1.0)), max_tokens) or 0.0
        if not await limiter.reserve(item.campaign_id, reserved, cap, lambda: store.cost_total(item.campaign_id)):
            await gate.budget_reached(cap)
            raise BudgetReached()
    try:
        attempt = limited = 0
        while True:
            permit = await limiter.acquire(spec, tokens + max_tokens, campaign.timeout_s + 10) if governed else None
            try:
                c = await models.acall(spec, msgs, seed=item.seed, max_tokens=max_tokens, logprobs=want_lp,
                                       timeout=campaign.timeout_s, num_retries=0)
            except models.CallError as e:
                if permit:
                    await limiter.release(permit, spec, 0 if e.rate_limited else None)
                if e.kind != "transient":
                    raise
                if e.rate_limited and governed:
                    limited += 1
                    if limited > RATE_LIMITED_TRIES:
                        raise
                    await limiter.backoff(spec, e.retry_after)
                    continue
                attempt += 1
                if attempt > campaign.num_retries:
                    raise
                await asyncio.sleep(e.retry_after or min(0.5 * 2 ** (attempt - 1), 8.0) * (1 + 0.25 * random.random()))
                continue
            if permit:
                await limiter.release(permit, spec, (c.usage or {}).get("total_tokens"))
            if c.rate_limits:
                await limiter.observe(spec, c.rate_limits)
            real = c.cost or 0.0
            if tokens and (c.usage or {}).get("prompt_tokens"):
                _undercount[spec.id] = max(_undercount.get(spec.id, 1.0), c.usage["prompt_tokens"] / tokens)
            return c
    finally:
        if cap is not None:
            await limiter.settle(item.campaign_id, reserved, real)
