"""A campaign's state for people and programs: `probe status` and `probe campaigns` read it from the store."""

from __future__ import annotations

from datetime import datetime

from probe.store import Store
from probe.store.schema import aware

THROUGHPUT_WINDOW_S = 60.0


def _iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return aware(ts).isoformat(timespec="seconds")


def _sets(spec: dict) -> list[str]:
    return [*spec.get("surveys", []), *spec.get("refusals", [])]


def overview(store: Store, limit: int = 20) -> list[dict]:
    """One row per campaign, newest first."""
    rows = store.campaigns(limit)
    ids = [c.id for c in rows]
    progress, costs, cached = store.progress_many(ids), store.costs(ids), store.cached_counts(ids)
    out = []
    for c in rows:
        p = progress[c.id]
        out.append({"id": c.id, "created": _iso(c.created_at), "models": [m["id"] for m in c.spec["models"]],
                    "sets": _sets(c.spec), "state": c.state, "mode": c.mode, "n_items": c.n_items,
                    "done": p.get("done", 0), "failed": p.get("failed", 0), "pending": p.get("pending", 0),
                    "cost": round(sum(costs[c.id].values()), 6), "cost_by_model": costs[c.id],
                    "max_cost": c.spec.get("max_cost"), "cache": c.spec.get("cache", True), "cached": cached[c.id]})
    return out


def status(store: Store, campaign_id: str, broker: str | None = None) -> dict:
    c = store.campaign(campaign_id)
    by: dict[tuple, dict] = {}
    totals = {"pending": 0, "done": 0, "failed": 0}
    progress = store.progress_by(campaign_id)
    for model, kind, source, st, n in progress:
        row = by.setdefault((model, kind, source), {"model": model, "kind": kind, "set": source,
                                                    "pending": 0, "done": 0, "failed": 0})
        row[st] = row.get(st, 0) + n
        totals[st] = totals.get(st, 0) + n
    recent = store.done_since(campaign_id, THROUGHPUT_WINDOW_S)
    rate = recent / THROUGHPUT_WINDOW_S
    eta = totals["pending"] / rate if rate > 0 and c.state == "running" else None
    from probe import spend

    sp = spend.summary(store, campaign_id, progress)
    cost = {m: x["cost"] for m, x in sp["by_model"].items()}
    out = {
        "id": c.id, "state": c.state, "state_reason": c.state_reason, "mode": c.mode, "created": _iso(c.created_at),
        "updated": _iso(c.updated_at), "n_items": c.n_items, "counts": totals,
        "progress": round((totals["done"] + totals["failed"]) / c.n_items, 4) if c.n_items else 1.0,
        "by_model_set": sorted(by.values(), key=lambda r: (r["model"], r["kind"], r["set"])),
        "throughput_per_s": round(rate, 3), "eta_s": round(eta, 1) if eta is not None else None,
        "failures": [{"kind": k, "count": n, "example": e} for k, e, n in store.failures(campaign_id)],
        "cost": {"total": round(sum(cost.values()), 6), "by_model": cost, "cost_per_1000_items": sp["cost_per_1000_items"],
                 "projected_rest": sp["projected_rest"], "max_cost": sp["max_cost"]},
        "cache": {"allowed": sp["cache_allowed"], "served": sp["cached"]},
        "workers": None, "limits": None, "budget": None,
    }
    if broker:
        out["workers"] = workers_holding(broker, campaign_id)
    out["limits"], out["budget"] = _limits(broker, c.spec, campaign_id)
    return out


def _limits(broker: str | None, spec: dict, campaign_id: str) -> tuple[list[dict] | None, dict | None]:
    """Per model: the limits set, and what the shared limiter learned (the provider's own limits from its
    headers, the requests per minute allowed when its 429s began, 429s seen, backoff in force); the budget's
    committed spend. From the fleet's Redis with a broker, else nothing (an embedded run's limiter is gone)."""
    if not broker:
        return None, None
    from probe import limits
    from probe.spec import ModelSpec

    try:
        lim = limits.shared(broker)
        rows = []
        for m in spec.get("models", []):
            ms = ModelSpec.model_validate(m)
            rows.append({"model": ms.id, "rpm": ms.rpm, "tpm": ms.tpm, "max_concurrency": ms.max_concurrency,
                         "learned": lim.model_info(ms)})
        return rows, lim.budget(campaign_id)
    except Exception:  # noqa: BLE001 - Redis unreachable: status still shows the store's figures
        return None, None


def workers_holding(broker: str, campaign_id: str) -> list[dict] | None:
    """Which workers hold this campaign's tasks (active, or reserved for a retry), where Celery can tell."""
    from probe import dispatch

    try:
        insp = dispatch.celery_app(broker).control.inspect(timeout=1.0)
        held: dict[str, dict] = {}
        for what, replies in (("active", insp.active()), ("reserved", insp.reserved()), ("scheduled", insp.scheduled())):
            for host, tasks in (replies or {}).items():
                for t in tasks:
                    req = t.get("request", t)
                    args = req.get("args") or []
                    if req.get("name") == "probe.run_chunk" and args and args[0] == campaign_id:
                        h = held.setdefault(host, {"worker": host, "active": 0, "reserved": 0, "scheduled": 0})
                        h[what] += 1
        return sorted(held.values(), key=lambda h: h["worker"])
    except Exception:
        return None
