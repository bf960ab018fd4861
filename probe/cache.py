"""The response cache: asking the exact same request twice pays once. It lives in the store, so every worker
of the fleet, a resumed campaign, a rerun and another campaign share it.

The key is a hash of the model, its api_base, every parameter sent (temperature, max_tokens, seed, logprobs,
top_logprobs: `execute.sent_params`, so what LiteLLM dropped is not part of it) and the exact messages. Only
answers with content are kept: an error, a 500 or an empty answer is never stored, so never served.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from sqlalchemy import delete, func, select

from probe.store import Store
from probe.store.schema import CachedResponse, Response, aware, utcnow

PARAMS = ("model", "api_base", "temperature", "max_tokens", "seed", "logprobs", "top_logprobs")


def key(params: dict, messages: list[dict]) -> str:
    body = {"params": {k: params.get(k) for k in PARAMS}, "messages": messages}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def entry(cache_key: str, model: str, response: dict, letter_probs: dict | None) -> dict | None:
    """The cache row for a stored response, or None when it must not be cached (an error, no content)."""
    if response.get("error") or not (response.get("raw_text") or "").strip():
        return None
    completion = {k: response.get(k) for k in ("raw_text", "top_logprobs", "finish_reason", "usage")}
    completion["letter_probs"] = letter_probs
    return {"key": cache_key, "model": model, "completion": completion, "cost": response.get("cost"),
            "created_at": utcnow()}


def lookup(store: Store, cache_key: str) -> dict | None:
    with store.session() as s:
        return s.scalar(select(CachedResponse.completion).where(CachedResponse.key == cache_key))


def lookup_many(store: Store, keys: list[str]) -> dict[str, dict]:
    """key -> cached completion, for those of the keys the cache holds."""
    out: dict[str, dict] = {}
    with store.session() as s:
        for i in range(0, len(keys), 500):
            q = select(CachedResponse.key, CachedResponse.completion).where(CachedResponse.key.in_(keys[i:i + 500]))
            out.update(s.execute(q).all())
    return out


def stats(store: Store) -> dict:
    """Entries per model with their age range, and responses served from the cache."""
    with store.session() as s:
        rows = s.execute(select(CachedResponse.model, func.count(), func.min(CachedResponse.created_at),
                                func.max(CachedResponse.created_at), func.sum(CachedResponse.cost))
                         .group_by(CachedResponse.model).order_by(CachedResponse.model)).all()
        served = s.scalar(select(func.count()).select_from(Response).where(Response.cached.is_(True))) or 0
    models = [{"model": m, "entries": n, "oldest": aware(lo).isoformat(timespec="seconds"),
               "newest": aware(hi).isoformat(timespec="seconds"), "cost_when_made": round(c or 0.0, 6)}
              for m, n, lo, hi, c in rows]
    return {"entries": sum(m["entries"] for m in models), "models": models, "responses_served": served}


def clear(store: Store, model: str | None = None, older_than: timedelta | None = None) -> int:
    q = delete(CachedResponse)
    if model:
        q = q.where(CachedResponse.model == model)
    if older_than is not None:
        q = q.where(CachedResponse.created_at < utcnow() - older_than)
    with store.session.begin() as s:
        return s.execute(q).rowcount


def parse_age(text: str) -> timedelta:
    """'30d', '12h', '45m', '90s' -> timedelta; ValueError otherwise."""
    units = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    t = text.strip().lower()
    if len(t) < 2 or t[-1] not in units or not t[:-1].replace(".", "", 1).isdigit():
        raise ValueError(f"'{text}' is not an age like 30d, 12h, 45m or 90s")
    return timedelta(**{units[t[-1]]: float(t[:-1])})

