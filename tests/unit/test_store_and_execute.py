"""Idempotence: running a task twice, or saving a result twice, stores one response per item; on SQLite and
PostgreSQL alike."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from probe import campaigns, dispatch, execute, sim
from probe.errors import ProbeError
from probe.spec import CampaignSpec, ModelSpec
from probe.store import Item, Response, Store


@pytest.fixture
def store(db_url):
    """A new store, once on SQLite and once on PostgreSQL (tests/conftest.py's db_url)."""
    s = Store(db_url)
    yield s
    s.engine.dispose()


def n_responses(store):
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(Response))


def test_rerunning_items_is_harmless(store):
    spec = CampaignSpec(models=[ModelSpec(id="sim/uniform")], surveys=["acs2019"], samples=2)
    cid, n = campaigns.create(store, spec, "embedded")
    assert n == 50
    dispatch.run_embedded(store, cid, 8)
    keys = store.keys(cid, status=None)
    assert n_responses(store) == 50
    # a redelivered task: done items are skipped, nothing is written again
    assert asyncio.run(execute.process(store, keys, 8)) == {}
    with store.session() as s:
        assert s.scalar(select(func.max(Item.attempts))) == 1
    # the same result saved twice (two workers racing) is an upsert, not a second row
    row = {"key": keys[0], "status": "done", "labels": [], "response": {
        "messages": [], "params": {}, "raw_text": "B", "top_logprobs": None, "finish_reason": "stop", "usage": None,
        "cost": None, "latency_s": 0.1, "error": None, "error_kind": None, "attempts": 2}}
    store.save_results([row])
    store.save_results([row])
    assert n_responses(store) == 50
    with store.session() as s:
        assert s.get(Response, keys[0]).raw_text == "B"


def test_failed_items_keep_their_last_error(store):
    spec = CampaignSpec(models=[ModelSpec(id="sim/uniform")], surveys=["acs2019"], samples=1)
    cid, _ = campaigns.create(store, spec, "embedded")
    keys = store.keys(cid)[:3]
    execute.mark_failed(store, {k: "RateLimitError: slow down" for k in keys})
    assert store.progress(cid)["failed"] == 3
    assert store.first_error(cid) == "RateLimitError: slow down"


def test_campaign_and_items_written_together_or_not_at_all(store, monkeypatch):
    spec = CampaignSpec(models=[ModelSpec(id="sim/uniform")], surveys=["acs2019"], samples=1)
    from probe import plan

    real = plan.iter_items
    big = spec.model_copy(update={"samples": 300})

    def broken(_spec, cid, *a, **k):  # items are streamed into the write: crash after 7,500 rows went in
        yield from real(big, cid)
        raise RuntimeError("crash midway through the items")

    monkeypatch.setattr(plan, "iter_items", broken)
    with pytest.raises(RuntimeError, match="midway"):
        campaigns.create(store, spec, "embedded")
    assert store.campaigns() == []
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 0


def test_sim_behaviours():
    b = sim.parse("a_bias=0.4,prefer=first")
    assert sim.letter_probs(b, "q", ["x", "y"]) == pytest.approx([1.0, 0.0])
    b = sim.parse("a_bias=0.2,prefer=uniform")
    p = sim.letter_probs(b, "q", ["x", "y", "z", "w"])
    assert p[0] - 0.25 == pytest.approx(0.2)  # the declared A-bias is the measured one
    pref = sim.preference(sim.parse("prefer=seed:3"), "q", ["x", "y", "z"])
    assert pref == sim.preference(sim.parse("prefer=seed:3"), "q", ["z", "x", "y"])[1:] + \
        sim.preference(sim.parse("prefer=seed:3"), "q", ["z", "x", "y"])[:1]  # follows the text, not the slot
    for bad in ("a_bias=x", "nope=1", "prefer=sideways", "a_bias"):
        with pytest.raises(ProbeError):
            sim.parse(bad)
