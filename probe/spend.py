"""What a campaign has cost: per model, per 1,000 items, the projected cost of the rest, and how many responses
the response cache served (they cost nothing). `probe status`, `probe report` and `probe campaigns` show it."""

from __future__ import annotations

from sqlalchemy import case, func, select

from probe.store import Store
from probe.store.schema import Campaign, Item, Response


def summary(store: Store, campaign_id: str, progress: list[tuple] | None = None, costs: dict | None = None) -> dict:
    """{total, by_model: {model: {cost, done, paid, cached, pending, cost_per_1000_items, projected_rest}},
    cost_per_1000_items, projected_rest, cached, cache_allowed, max_cost}. Costs in USD; a model's projected
    rest is its pending items at its mean cost per paid response so far (None before any was paid).
    progress: store.progress_by's rows when the caller has them (counts come from that index-only scan; costs
    join responses of finished items only, never every pending item of a big campaign). costs: model -> (cost,
    cached, paid) over the finished items' responses when the caller has summed them (probe.report_columns)."""
    progress = store.progress_by(campaign_id) if progress is None else progress
    with store.session() as s:
        spec = s.scalar(select(Campaign.spec).where(Campaign.id == campaign_id)) or {}
        if costs is not None:
            rows = [(m, *v) for m, v in costs.items()]
        else:
            q = (select(Item.model, func.sum(Response.cost),
                        func.sum(case((Response.cached.is_(True), 1), else_=0)),
                        func.sum(case((Response.cost.is_not(None) & (Item.status == "done")
                                       & ~Response.cached.is_(True), 1), else_=0)))
                 .join(Response, Response.key == Item.key)
                 .where(Item.campaign_id == campaign_id, Item.status.in_(("done", "failed")))
                 .group_by(Item.model))
            rows = s.execute(q).all()
    by: dict[str, dict] = {}
    for model, _kind, _source, status, n in progress:
        m = by.setdefault(model, {"cost": 0.0, "done": 0, "paid": 0, "cached": 0, "pending": 0})
        if status in ("done", "pending"):
            m[status] += n
    for model, cost, cached, paid in rows:
        m = by.setdefault(model, {"cost": 0.0, "done": 0, "paid": 0, "cached": 0, "pending": 0})
        m["cost"] += float(cost or 0.0)
        m["cached"] += int(cached or 0)
        m["paid"] += int(paid or 0)
    for m in by.values():
        m["cost"] = round(m["cost"], 6)
        m["cost_per_1000_items"] = round(1000 * m["cost"] / m["done"], 6) if m["done"] else None
        m["projected_rest"] = round(m["pending"] * m["cost"] / m["paid"], 6) if m["paid"] else (0.0 if not m["pending"] else None)
    total = round(sum(m["cost"] for m in by.values()), 6)
    done_n = sum(m["done"] for m in by.values())
    rests = [m["projected_rest"] for m in by.values()]
    return {"total": total, "by_model": by,
            "cost_per_1000_items": round(1000 * total / done_n, 6) if done_n else None,
            "projected_rest": None if any(r is None for r in rests) else round(sum(rests), 6),
            "cached": sum(m["cached"] for m in by.values()), "cache_allowed": spec.get("cache", True),
            "max_cost": spec.get("max_cost")}


def line(sp: dict) -> str:
    """One line for people: cost so far, per 1,000 items, projected rest, budget, cache."""
    money = lambda x: "n/a" if x is None else f"${x:,.4f}"  # noqa: E731
    parts = [f"cost {money(sp['total'])}", f"{money(sp['cost_per_1000_items'])} per 1,000 items",
             f"projected rest {money(sp['projected_rest'])}"]
    if sp.get("max_cost") is not None:
        parts.append(f"budget ${sp['max_cost']:,.2f}")
    parts.append(f"{sp['cached']} from the cache" if sp["cache_allowed"] else "cache off")
    return " · ".join(parts)
