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
    progress, costs = store.progress_many(ids), store.costs(ids)
    out = []
    for c in rows:
        p = progress[c.id]
        out.append({"id": c.id, "created": _iso(c.created_at), "models": [m["id"] for m in c.spec["models"]],
                    "sets": _sets(c.spec), "state": c.state, "mode": c.mode, "n_items": c.n_items,
                    "done": p.get("done", 0), "failed": p.get("failed", 0), "pending": p.get("pending", 0),
                    "cost": round(sum(costs[c.id].values()), 6)})
    return out


def status(store: Store, campaign_id: str, broker: str | None = None) -> dict:
    c = store.campaign(campaign_id)
    by: dict[tuple, dict] = {}
    totals = {"pending": 0, "done": 0, "failed": 0}
    for model, kind, source, st, n in store.progress_by(campaign_id):
        row = by.setdefault((model, kind, source), {"model": model, "kind": kind, "set": source,
                                                    "pending": 0, "done": 0, "failed": 0})
        row[st] = row.get(st, 0) + n
        totals[st] = totals.get(st, 0) + n
    recent = store.done_since(campaign_id, THROUGHPUT_WINDOW_S)
    rate = recent / THROUGHPUT_WINDOW_S
    eta = totals["pending"] / rate if rate > 0 and c.state == "running" else None
    cost = store.costs([campaign_id])[campaign_id]
    out = {
        "id": c.id, "state": c.state, "state_reason": c.state_reason, "mode": c.mode, "created": _iso(c.created_at),
        "updated": _iso(c.updated_at), "n_items": c.n_items, "counts": totals,
        "progress": round((totals["done"] + totals["failed"]) / c.n_items, 4) if c.n_items else 1.0,
        "by_model_set": sorted(by.values(), key=lambda r: (r["model"], r["kind"], r["set"])),
        "throughput_per_s": round(rate, 3), "eta_s": round(eta, 1) if eta is not None else None,
        "failures": [{"kind": k, "count": n, "example": e} for k, e, n in store.failures(campaign_id)],
        "cost": {"total": round(sum(cost.values()), 6), "by_model": cost},
        "workers": None,
    }
    if broker:
        out["workers"] = workers_holding(broker, campaign_id)
    return out


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
