"""The fleet for real: a Redis server, `probe worker` processes, the test model server injecting 429s and
500s over HTTP through LiteLLM, on SQLite and on PostgreSQL. Every planned item gets exactly one stored
response, even across a kill -9 of the worker."""

from __future__ import annotations

import json
import signal

import pytest

from probe.testing.model_server import running_server
from tests.conftest import run_probe
from tests.fleet import start_worker, stop, wait_until
from tests.helpers import counts

pytestmark = pytest.mark.fleet


def all_done(n: int) -> dict:
    return {"items": n, "done": n, "responses": n, "ok_responses": n, "labels": n, "max_saves_per_item": 1}


def state_of(cid: str, db: str) -> str:
    r = run_probe("status", cid, "--format", "json", "--db", db, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["state"]


def fleet_state(broker: str, db: str, cid: str) -> str:
    """What the store and Redis hold, for a failure message."""
    import redis

    from sqlalchemy import func, select

    from probe.store import Item, Store

    store = Store(db)
    with store.session() as s:
        by_status = dict(s.execute(select(Item.status, func.count()).where(Item.campaign_id == cid)
                                   .group_by(Item.status)).all())
        leases = s.execute(select(Item.lease_owner, func.count(), func.max(Item.lease_until))
                           .where(Item.campaign_id == cid, Item.status == "pending").group_by(Item.lease_owner)).all()
    store.engine.dispose()
    r = redis.Redis.from_url(broker)
    try:
        return (f"store: {counts(db, cid)}, by status {by_status}, pending by lease owner {leases}; "
                f"redis: queue {r.llen('probe')}, unacked {r.hlen('unacked')}, "
                f"unacked_index {r.zcard('unacked_index')}, unacked_mutex ttl {r.ttl('unacked_mutex')} s")
    finally:
        r.close()


@pytest.fixture
def server():
    with running_server(latency=0.05, p429=0.05, p500=0.02, retry_after=1, seed=11) as (url, _):
        yield url


def test_fleet_with_faults_stores_each_item_exactly_once(tmp_path, db_url, redis_server, server):
    worker = start_worker(redis_server.url, db_url, tmp_path / "worker.log")
    try:
        r = run_probe("run", "--model", "openai/test", "--api-base", f"{server}/v1", "--survey", "acs2019",
                      "--samples", "8", "--seed", "4", "--broker", redis_server.url, "--db", db_url,
                      "--concurrency", "8", timeout=240)
        assert r.returncode == 0, r.stderr
        cid = r.stdout.strip().splitlines()[-1]
        assert counts(db_url, cid) == all_done(200)
        assert state_of(cid, db_url) == "done"
        rep = run_probe("report", cid, "--db", db_url, "--format", "json")
        assert rep.returncode == 0, rep.stderr
        q = json.loads(rep.stdout)["models"]["openai/test"]["surveys"]["acs2019"]["questions"]
        assert sum(x["n"] for x in q.values()) == 200
        assert all(abs(sum(x["distribution"].values()) - 1) < 1e-9 for x in q.values())
    finally:
        stop(worker)


def test_worker_killed_mid_campaign_loses_nothing_and_duplicates_nothing(tmp_path, db_url, redis_server, server):
    worker = start_worker(redis_server.url, db_url, tmp_path / "worker1.log")
    worker2 = None
    try:
        r = run_probe("run", "--model", "openai/test", "--api-base", f"{server}/v1", "--survey", "acs2019",
                      "--samples", "24", "--seed", "5", "--broker", redis_server.url, "--db", db_url,
                      "--concurrency", "4", "--no-wait", timeout=120)
        assert r.returncode == 0, r.stderr
        cid = r.stdout.strip().splitlines()[-1]
        wait_until(lambda: counts(db_url, cid)["done"] >= 60, 120, what="60 items done")
        stop(worker, signal.SIGKILL)  # kill -9 the worker and its pool processes, tasks in hand
        before = counts(db_url, cid)["done"]
        assert 0 < before < 600, "the kill must land mid-campaign"
        worker2 = start_worker(redis_server.url, db_url, tmp_path / "worker2.log")
        # the killed worker's tasks come back after the visibility timeout (15 s in tests.fleet.FAST)
        try:
            wait_until(lambda: counts(db_url, cid)["done"] >= 600, 180, poll=0.5, what="all 600 items done")
        except AssertionError as e:
            raise AssertionError(f"{e}; {fleet_state(redis_server.url, db_url, cid)}") from None
        assert counts(db_url, cid) == all_done(600)
        wait_until(lambda: state_of(cid, db_url) == "done", 30, poll=1, what="campaign state done")
    finally:
        if worker.poll() is None:
            stop(worker, signal.SIGKILL)
        if worker2 is not None:
            stop(worker2)
