"""The fleet for real: a Redis server, `probe worker` processes, the test model server injecting 429s and
500s over HTTP through LiteLLM. Every planned item gets exactly one stored response, even across a kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from probe.testing.model_server import running_server
from tests.conftest import PROBE, run_probe
from tests.helpers import counts

pytestmark = pytest.mark.fleet


def start_worker(redis_url: str, db: str, log_path) -> subprocess.Popen:
    env = dict(os.environ, PROBE_VISIBILITY_TIMEOUT="15")  # redelivery after a kill comes 15 s later
    log = open(log_path, "ab")
    return subprocess.Popen([PROBE, "worker", "--broker", redis_url, "--db", db, "--concurrency", "2",
                             "--loglevel", "WARNING"], env=env, stdout=log, stderr=log, start_new_session=True)


def kill_group(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


@pytest.fixture
def server():
    with running_server(latency=0.05, p429=0.05, p500=0.02, retry_after=1, seed=11) as (url, _):
        yield url


def test_fleet_with_faults_stores_each_item_exactly_once(tmp_path, redis_url, server):
    db = f"sqlite:///{tmp_path / 'fleet.db'}"
    worker = start_worker(redis_url, db, tmp_path / "worker.log")
    try:
        r = run_probe("run", "--model", "openai/test", "--api-base", f"{server}/v1", "--survey", "acs2019",
                      "--samples", "8", "--seed", "4", "--broker", redis_url, "--db", db, "--concurrency", "8",
                      timeout=240)
        assert r.returncode == 0, r.stderr
        cid = r.stdout.strip().splitlines()[-1]
        c = counts(db, cid)
        assert c == {"items": 200, "done": 200, "responses": 200, "ok_responses": 200, "labels": 200,
                     "max_saves_per_item": 1}
        rep = run_probe("report", cid, "--db", db, "--format", "json")
        import json

        q = json.loads(rep.stdout)["models"]["openai/test"]["surveys"]["acs2019"]["questions"]
        assert sum(x["n"] for x in q.values()) == 200
        assert all(abs(sum(x["distribution"].values()) - 1) < 1e-9 for x in q.values())
    finally:
        kill_group(worker, signal.SIGTERM)


def test_worker_killed_mid_campaign_loses_nothing_and_duplicates_nothing(tmp_path, redis_url, server):
    db = f"sqlite:///{tmp_path / 'kill.db'}"
    worker = start_worker(redis_url, db, tmp_path / "worker1.log")
    try:
        r = run_probe("run", "--model", "openai/test", "--api-base", f"{server}/v1", "--survey", "acs2019",
                      "--samples", "24", "--seed", "5", "--broker", redis_url, "--db", db, "--concurrency", "4",
                      "--no-wait")
        assert r.returncode == 0, r.stderr
        cid = r.stdout.strip().splitlines()[-1]
        deadline = time.time() + 120
        while counts(db, cid)["done"] < 60 and time.time() < deadline:
            time.sleep(0.2)
        before = counts(db, cid)["done"]
        assert 0 < before < 600, "the kill must land mid-campaign"
        kill_group(worker)  # kill -9 the worker and its pool processes, tasks in hand
    finally:
        if worker.poll() is None:
            kill_group(worker)
    worker2 = start_worker(redis_url, db, tmp_path / "worker2.log")
    try:
        deadline = time.time() + 180
        while counts(db, cid)["done"] < 600 and time.time() < deadline:
            time.sleep(0.5)
        c = counts(db, cid)
        assert c == {"items": 600, "done": 600, "responses": 600, "ok_responses": 600, "labels": 600,
                     "max_saves_per_item": 1}, c
    finally:
        kill_group(worker2, signal.SIGTERM)
