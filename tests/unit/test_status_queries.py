"""The store's status queries count exactly one campaign's rows: done_since (throughput window) and failures
(failed items, and pending items waiting on a transient retry; never done ones); on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from probe import campaigns
from probe.spec import CampaignSpec, ModelSpec
from probe.store import Response, Store, utcnow


@pytest.fixture
def store(db_url):
    s = Store(db_url)
    yield s
    s.engine.dispose()


def result(key: str, status: str, error: str | None = None, cost: float | None = None) -> dict:
    return {"key": key, "status": status, "labels": [], "response": {
        "messages": [], "params": {}, "raw_text": None if error else "A", "top_logprobs": None, "finish_reason": None,
        "usage": None, "cost": cost, "latency_s": 0.1, "error": error,
        "error_kind": ("transient" if error.startswith("RateLimit") else "permanent") if error else None,
        "attempts": 1}}


def test_done_since_and_failures_count_one_campaign(store):
    spec = CampaignSpec(models=[ModelSpec(id="sim/uniform")], surveys=["acs2019"], samples=1)
    cid, _ = campaigns.create(store, spec, "fleet")
    other, _ = campaigns.create(store, spec, "fleet")
    k = store.keys(cid)
    store.save_results([result(k[0], "done", cost=0.5), result(k[1], "done"), result(k[2], "done"),
                        result(k[3], "failed", "BadRequestError: no"),
                        result(k[4], "pending", "RateLimitError: slow down"),  # waiting on a retry
                        result(k[5], "done", "RateLimitError: earlier")])  # done: not a failure
    store.save_results([result(o, "done") for o in store.keys(other)[:4]]
                       + [result(store.keys(other)[4], "failed", "BadRequestError: other")])
    with store.session.begin() as s:  # k[2] was stored two minutes ago: outside a 60 s window
        s.execute(update(Response).where(Response.key == k[2]).values(created_at=utcnow() - timedelta(minutes=2)))

    assert store.done_since(cid, 60) == 5
    assert store.done_since(cid, 600) == 6
    assert store.done_since(other, 60) == 5
    # failed items only: a pending item's error is a past one that a resume is retrying (tasks store transient
    # errors only when an item gives up), and reading failed items is an index range
    assert sorted(store.failures(cid)) == [("permanent", "BadRequestError: no", 1)]
    assert store.costs([cid]) == {cid: {"sim/uniform": 0.5}}
