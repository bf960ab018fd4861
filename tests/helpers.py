"""Helpers for tests that read the store directly."""

from __future__ import annotations

from sqlalchemy import func, select

from probe.store import Item, Label, Response, Store


def counts(db_url: str, campaign_id: str) -> dict:
    store = Store(db_url)
    with store.session() as s:
        items = s.scalar(select(func.count()).select_from(Item).where(Item.campaign_id == campaign_id))
        done = s.scalar(select(func.count()).select_from(Item).where(Item.campaign_id == campaign_id, Item.status == "done"))
        responses = s.scalar(select(func.count()).select_from(Response).join(Item, Item.key == Response.key)
                             .where(Item.campaign_id == campaign_id))
        ok = s.scalar(select(func.count()).select_from(Response).join(Item, Item.key == Response.key)
                      .where(Item.campaign_id == campaign_id, Response.error.is_(None)))
        labels = s.scalar(select(func.count()).select_from(Label).join(Item, Item.key == Label.key)
                          .where(Item.campaign_id == campaign_id))
        max_attempts = s.scalar(select(func.max(Item.attempts)).where(Item.campaign_id == campaign_id))
    store.engine.dispose()
    return {"items": items, "done": done, "responses": responses, "ok_responses": ok, "labels": labels,
            "max_saves_per_item": max_attempts}
