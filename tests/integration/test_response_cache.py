"""The response cache over LiteLLM's real HTTP path to the test server: an identical rerun makes no call and reports
the same; another seed or temperature makes every call again; an error (a 500) is never cached or served;
--no-cache calls again; `probe cache stats|clear`."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from probe import campaigns, dispatch, report
from probe.spec import CampaignSpec, ModelSpec
from probe.store import Store
from probe.testing.faults import set_faults
from probe.testing.model_server import running_server
from tests.conftest import run_probe


@pytest.fixture
def server():
    with running_server(seed=5) as (url, _):
        yield url


def calls(url: str) -> int:
    n = httpx.get(f"{url}/stats").json()["requests"]
    httpx.post(f"{url}/reset")
    return n


def campaign(store: Store, url: str, **changes) -> str:
    model = ModelSpec(id="openai/test", api_base=f"{url}/v1", temperature=changes.pop("temperature", 1.0))
    spec = CampaignSpec(models=[model], surveys=["acs2019"], samples=2, num_retries=0, baselines=["uniform"],
                        **({"seed": 1} | changes))
    cid, _ = campaigns.create(store, spec, "embedded")
    dispatch.run_embedded(store, cid, 8)
    return cid


def test_identical_requests_are_paid_once(tmp_path, server, monkeypatch):
    db = f"sqlite:///{tmp_path / 'probe.db'}"
    store = Store(db)
    n = 50
    monkeypatch.setattr("probe.execute.ROUNDS", 1)  # a failed item fails at once

    set_faults(server, "500", 600)  # every call fails: nothing may enter the cache
    failed = campaign(store, server)
    assert store.progress(failed) == {"failed": n} and calls(server) == n
    set_faults(server, "ok", 0)
    first = campaign(store, server)  # the 500s were not cached: every item is called
    assert calls(server) == n and store.progress(first) == {"done": n}

    again = campaign(store, server)
    assert calls(server) == 0  # an identical campaign: everything from the cache
    a, b = report.build(store, first, n_boot=50), report.build(store, again, n_boot=50)
    assert json.dumps(a["models"], sort_keys=True) == json.dumps(b["models"], sort_keys=True)
    assert a["cost"]["cached"] == 0 and b["cost"]["cached"] == n and b["cost"]["cache_allowed"] is True

    campaign(store, server, seed=2)
    assert calls(server) == n  # another seed: other requests
    campaign(store, server, temperature=0.5)
    assert calls(server) == n  # another temperature
    nocache = campaign(store, server, cache=False)
    assert calls(server) == n
    assert report.build(store, nocache, n_boot=50)["cost"]["cache_allowed"] is False

    env = dict(os.environ, PROBE_DB=db)
    st = run_probe("cache", "stats", "--format", "json", env=env)
    assert st.returncode == 0, st.stderr
    stats = json.loads(st.stdout)
    assert stats["entries"] == 3 * n and stats["responses_served"] == n, stats  # first, seed 2, temperature 0.5
    kept = run_probe("cache", "clear", "--older-than", "1h", env=env)
    assert kept.returncode == 0 and kept.stdout.strip() == "0", kept.stderr
    bad = run_probe("cache", "clear", "--older-than", "soon", env=env)
    assert bad.returncode == 2 and "--older-than" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    gone = run_probe("cache", "clear", "--model", "openai/test", env=env)
    assert gone.stdout.strip() == str(3 * n)


def test_budget_flags_fail_in_one_line(tmp_path):
    """--max-cost on a model nothing prices, and a resume budget below what was spent: one line, exit 2, nothing
    written."""
    db = f"sqlite:///{tmp_path / 'probe.db'}"
    r = run_probe("run", "--model", "openai/no-such-priced-model", "--api-base", "http://127.0.0.1:9/v1",
                  "--survey", "acs2019", "--samples", "1", "--max-cost", "1", "--db", db)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "--max-cost needs a price for model 'openai/no-such-priced-model'" in r.stderr
    assert "--price-in" in r.stderr
    store = Store(db)
    assert store.campaigns() == []
    spec = CampaignSpec(models=[ModelSpec(id="sim/uniform")], surveys=["acs2019"], samples=1, max_cost=1.0)
    cid, _ = campaigns.create(store, spec, "embedded")
    r = run_probe("resume", cid, "--max-cost", "0", "--db", db)
    assert r.returncode == 2 and "--max-cost must be above 0" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_cache_read_in_windows_serves_exactly_what_it_holds(tmp_path, server, monkeypatch):
    """process() reads the cache a window of items at a time (execute.PREFETCH): with windows of 7 over 50 items
    and 20 entries removed, a rerun calls exactly those 20 and serves the other 30."""
    from sqlalchemy import delete, select

    from probe.store.schema import CachedResponse

    monkeypatch.setattr("probe.execute.PREFETCH", 7)
    store = Store(f"sqlite:///{tmp_path / 'probe.db'}")
    first = campaign(store, server)
    assert calls(server) == 50 and store.progress(first) == {"done": 50}
    with store.session.begin() as s:
        gone = list(s.scalars(select(CachedResponse.key).order_by(CachedResponse.key).limit(20)))
        s.execute(delete(CachedResponse).where(CachedResponse.key.in_(gone)))
    again = campaign(store, server)
    assert calls(server) == 20 and store.progress(again) == {"done": 50}
    assert report.build(store, again, n_boot=20)["cost"]["cached"] == 30
