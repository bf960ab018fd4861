"""Embedded mode (no broker) holds the same limits and budget in-process, over LiteLLM's HTTP path to the test
server: requests are spaced by --rpm as counted at the server, and --max-cost pauses the campaign within budget."""

from __future__ import annotations

import httpx
import pytest

from probe import campaigns, dispatch, lifecycle, limits
from probe.spec import CampaignSpec, ModelSpec
from probe.store import Store
from probe.testing.model_server import running_server
from tests.integration.test_spend_control import arrivals, max_in_window, planned_words


@pytest.fixture
def server():
    with running_server(seed=2) as (url, _):
        yield url


def test_embedded_rpm_and_budget(tmp_path, server):
    store = Store(f"sqlite:///{tmp_path / 'probe.db'}")
    model = ModelSpec(id="openai/test", api_base=f"{server}/v1", rpm=1200)  # 20 a second
    cid, n = campaigns.create(store, CampaignSpec(models=[model], surveys=["acs2019"], samples=2), "embedded")
    dispatch.run_embedded(store, cid, 16)
    t = arrivals(server)
    assert len(t) == n == 50 and store.progress(cid) == {"done": 50}
    # the first few calls wait together for LiteLLM's first connection and may land together; after them, no
    # second holds more than its 20 (+1)
    assert max_in_window(t[5:], 1.0) <= 21, max_in_window(t[5:], 1.0)
    assert t[-1] - t[5] >= 44 / 20 * 0.97, t[-1] - t[5]
    httpx.post(f"{server}/reset")

    # priced so that the 50 calls cost $0.50 (the server counts a prompt's words as its tokens); the budget: $0.20
    plain = CampaignSpec(models=[ModelSpec(id="openai/test")], surveys=["acs2019"], samples=2, seed=9)
    priced = ModelSpec(id="openai/test", api_base=f"{server}/v1", price_in=0.50 / planned_words(plain) * 1e6,
                       price_out=0)
    spec = plain.model_copy(update={"models": [priced], "max_cost": 0.20, "concurrency": 2})
    cid, _ = campaigns.create(store, spec, "embedded")
    dispatch.run_embedded(store, cid, 2)
    c = store.campaign(cid)
    spent = store.cost_total(cid)
    assert c.state == "paused" and c.state_reason.startswith("budget"), (c.state, c.state_reason)
    assert 0.15 <= spent <= 0.20 + 1e-9, spent
    assert len(arrivals(server, 200)) == store.progress(cid)["done"]  # every paid call stored, none beyond
    lifecycle.set_budget(store, cid, 1.0)
    lifecycle.prepare_resume(store, cid)
    limits.local().reset_budget(cid)
    dispatch.run_embedded(store, cid, 2)
    assert store.state(cid) == "done" and store.cost_total(cid) == pytest.approx(0.50)
    assert len(arrivals(server, 200)) == 50  # each item paid once
