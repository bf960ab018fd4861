"""Spend control on a real fleet: `probe worker` processes over a real Redis, LiteLLM over HTTP to the test model
server, which logs the arrival time of every request (GET /requests), so rates are counted where they land.

- a shared --rpm holds across worker processes: no 10-second window at the server holds more than its share
  (+5%), and the campaign takes no more than 10% longer than the limit implies;
- a 429 storm with Retry-After: 2: the fleet stops sending within a second of the first 429s, resumes after,
  and every item is answered exactly once;
- --max-cost pauses the campaign with spend between 90% and 100% of the budget (never above), and
  `probe resume --max-cost` completes it, every item paid once.

PROBE_TEST_FULL=1 runs the rate test at the issue's full size (3,000 items, ~300 s)."""

from __future__ import annotations

import json
import os
import subprocess
import time

import httpx
import pytest

from probe import plan, render
from probe.campaigns import content_of, probesets_from, surveys_from
from probe.spec import CampaignSpec, ModelSpec
from probe.testing.faults import set_faults
from probe.testing.model_server import running_server
from tests.conftest import PROBE, run_probe
from tests.fleet import start_worker, stop, wait_until
from tests.helpers import counts

pytestmark = pytest.mark.fleet

FULL = os.environ.get("PROBE_TEST_FULL") == "1"
SLOW = {"PROBE_VISIBILITY_TIMEOUT": "300"}  # a rate-limited task waits for its slots: longer than FAST's 15 s


def arrivals(url: str, status: int | None = None) -> list[float]:
    return sorted(t for t, s in httpx.get(f"{url}/requests", timeout=10).json() if status is None or s == status)


def max_in_window(times: list[float], seconds: float) -> int:
    j, best = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - seconds:
            j += 1
        best = max(best, i - j + 1)
    return best


@pytest.fixture(scope="module")
def fleet(redis_url, tmp_path_factory):
    """Three `probe worker` processes (one pool process each) on one Redis and one store, shared by this module's
    tests (starting them is most of a test's time); each test's own model server keeps the limits apart."""
    d = tmp_path_factory.mktemp("spend")
    db = f"sqlite:///{d / 'probe.db'}"
    ws = [start_worker(redis_url, db, d / f"worker{i}.log", concurrency=1, env=SLOW) for i in range(3)]
    try:
        wait_until(lambda: _alive(redis_url) >= 3, timeout=90, poll=0.5, what="3 workers")
        yield redis_url, db
    finally:
        for w in ws:
            stop(w)


def _alive(broker: str) -> int:
    from probe import dispatch

    return dispatch.workers_alive(broker)


def run(*args: str, timeout: float = 600) -> str:
    r = subprocess.run([PROBE, "run", *args], capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, **SLOW))
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.strip().splitlines()[-1]


def status(cid: str, db: str, broker: str | None = None) -> dict:
    r = run_probe("status", cid, "--db", db, "--format", "json", *(["--broker", broker] if broker else []))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.timeout(900 if FULL else 300)
def test_rpm_holds_across_the_fleet(fleet, server_fast):
    broker, db = fleet
    samples = 120 if FULL else 6  # acs2019 has 25 questions: 3,000 or 150 items (15 s at 600 rpm)
    n, rpm = 25 * samples, 600
    cid = run("--model", "openai/test", "--api-base", f"{server_fast}/v1", "--survey", "acs2019", "--samples",
              str(samples), "--rpm", str(rpm), "--concurrency", "8", "--timeout", "10", "--broker", broker, "--db", db)
    t = arrivals(server_fast)
    span, implied = t[-1] - t[0], (n - 1) * 60 / rpm
    worst = max_in_window(t, 10.0)
    print(f"rate: {n} requests in {span:.1f} s (the limit implies {implied:.1f} s); busiest 10-s window {worst} "
          "(limit 100)")
    assert len(t) == n
    assert worst <= 105, worst
    assert implied * 0.95 <= span <= implied * 1.10, (span, implied)
    assert counts(db, cid)["done"] == n
    st = status(cid, db, broker)
    assert st["state"] == "done" and st["limits"][0]["rpm"] == rpm, st


def test_a_429_storm_stops_the_whole_fleet_at_once(fleet, server_fast):
    broker, db = fleet
    n = 25 * 8
    proc = subprocess.Popen([PROBE, "run", "--model", "openai/test", "--api-base", f"{server_fast}/v1",
                             "--survey", "acs2019", "--samples", "8", "--concurrency", "4", "--timeout", "10",
                             "--broker", broker, "--db", db],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, **SLOW))
    wait_until(lambda: httpx.get(f"{server_fast}/stats").json()["ok"] >= 20, timeout=120, poll=0.05,
               what="the first answers")
    set_faults(server_fast, "429", 10, retry_after=2)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    cid = out.strip().splitlines()[-1]
    first = arrivals(server_fast, 429)[0]
    t = arrivals(server_fast)
    quiet = [x for x in t if first + 1.0 < x < first + 1.9]
    in_storm = [x for x in t if first <= x < first + 10]
    print(f"429 storm: {len(in_storm)} requests in its 10 s, {len(quiet)} between 1.0 and 1.9 s after the first 429")
    assert quiet == [], [round(x - first, 3) for x in quiet]
    assert len(in_storm) <= 6 * 12 + 20, len(in_storm)  # at most a wave of the calls in flight per Retry-After
    assert [x for x in t if x >= first + 10.5], "nothing was sent after the storm"
    c = counts(db, cid)
    assert c["done"] == n and c["ok_responses"] == n and c["max_saves_per_item"] == 1, c
    assert len(arrivals(server_fast, 200)) == n  # every item answered exactly once
    learned = status(cid, db, broker)["limits"][0]["learned"]
    assert learned["n_429"] >= 3 and learned["rpm_at_429"] > 0, learned


def planned_words(spec: CampaignSpec) -> int:
    """The prompt tokens the test server will report for the whole campaign: the words of each item's messages."""
    content = content_of(spec)
    surveys, sets = surveys_from(content), probesets_from(content)
    total = 0
    for it in plan.iter_items(spec, "x", surveys, sets):
        msgs = render.survey_messages(surveys[it.source].question(it.item_id), it.permutation, spec.template)
        total += len("\n".join(m["content"] for m in msgs).split())
    return total


def test_max_cost_pauses_then_resume_completes(fleet, server_fast):
    broker, db = fleet
    samples, n = 12, 300
    spec = CampaignSpec(models=[ModelSpec(id="openai/test")], surveys=["acs2019"], samples=samples, seed=4)
    price_in = 3.00 / planned_words(spec) * 1e6  # the whole campaign costs $3.00
    cid = run("--model", "openai/test", "--api-base", f"{server_fast}/v1", "--survey", "acs2019", "--samples",
              str(samples), "--seed", "4", "--concurrency", "2", "--timeout", "10", "--price-in", f"{price_in:.9f}",
              "--price-out", "0", "--max-cost", "1.00", "--broker", broker, "--db", db)
    s = status(cid, db)
    spent = s["cost"]["total"]
    print(f"budget: paused at ${spent:.4f} of $1.00, {s['counts']['done']} of {n} done")
    assert s["state"] == "paused" and s["state_reason"].startswith("budget"), s
    assert 0.90 <= spent <= 1.00, spent
    time.sleep(1.0)  # calls in flight at the pause are stored by now
    assert len(arrivals(server_fast, 200)) == counts(db, cid)["done"]  # every paid call is stored
    r = run_probe("resume", cid, "--max-cost", "5", "--broker", broker, "--db", db, env=SLOW, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    s = status(cid, db)
    assert s["state"] == "done" and s["counts"]["done"] == n, s
    assert abs(s["cost"]["total"] - 3.00) < 1e-3, s["cost"]
    assert len(arrivals(server_fast, 200)) == n  # exactly once: no item paid twice
    assert counts(db, cid)["max_saves_per_item"] == 1


@pytest.fixture
def server_fast():
    with running_server(latency=0.02, seed=3) as (url, _):
        yield url
