"""A fleet campaign through stretches of provider faults: the test model server answers every request with 429
(and Retry-After) for ~5 s, then 500 for ~5 s, then hangs for ~5 s, while two `probe worker` processes run the
campaign over a real Redis, on SQLite and on PostgreSQL. Every item is answered exactly once, none is left
pending, and the campaign ends `done`."""

from __future__ import annotations

import json
import os
import subprocess
import time

import httpx
import pytest

from probe.testing.model_server import running_server, set_fault_plan
from tests.conftest import PROBE, run_probe
from tests.fleet import start_worker, stop, wait_until
from tests.helpers import counts

pytestmark = pytest.mark.fleet

# Worst case of one task: 4 waves x --timeout 3 s x 5 attempts = 60 s (plus backoff), which must stay below the
# visibility timeout or Redis hands a running task to the other worker (FAST's 15 s is too short for that).
LONG_VISIBILITY = {"PROBE_VISIBILITY_TIMEOUT": "120"}
PLAN = [{"mode": "429", "seconds": 5, "retry_after": 2}, {"mode": "500", "seconds": 5},
        {"mode": "hang", "seconds": 5, "hang_seconds": 10}]
ITEMS = 25 * 12  # acs2019 has 25 questions


@pytest.fixture
def server():
    with running_server(latency=0.05, seed=7) as (url, _):
        yield url


def test_fleet_rides_out_429_500_and_hang_stretches(tmp_path, db_url, redis_server, server):
    broker = redis_server.url
    workers = [start_worker(broker, db_url, tmp_path / f"worker{i}.log", concurrency=2, env=LONG_VISIBILITY)
               for i in range(2)]
    run_err = open(tmp_path / "run.stderr", "w+")
    run = None
    try:
        run = subprocess.Popen(
            [PROBE, "run", "--model", "openai/test", "--api-base", f"{server}/v1", "--survey", "acs2019",
             "--samples", "12", "--seed", "3", "--concurrency", "2", "--timeout", "3", "--broker", broker,
             "--db", db_url],
            env=dict(os.environ, **LONG_VISIBILITY), stdout=subprocess.PIPE, stderr=run_err, text=True)
        # The faults start mid-campaign: once the workers have answered a first few dozen items.
        wait_until(lambda: httpx.get(f"{server}/stats").json()["ok"] >= 30 or run.poll() is not None, timeout=180,
                   poll=0.1, what="the first answers")
        assert run.poll() is None, "the campaign ended before the faults began"
        t_faults = time.monotonic()
        set_fault_plan(server, PLAN)
        stdout, _ = run.communicate(timeout=300)
        elapsed = time.monotonic() - t_faults
        run_err.seek(0)
        stderr = run_err.read()
        assert run.returncode == 0, stderr
        cid = stdout.strip().splitlines()[-1]

        faults = httpx.get(f"{server}/faults").json()["counts"]
        # Requests met every stretch, the hang stretch included: the campaign was still running through all three.
        assert faults["429"] > 0 and faults["500"] > 0 and faults["hang"] > 0, faults
        assert elapsed > 10, f"the campaign finished {elapsed:.1f} s after the faults began, before the hang stretch"

        c = counts(db_url, cid)
        assert c == {"items": ITEMS, "done": ITEMS, "responses": ITEMS, "ok_responses": ITEMS, "labels": ITEMS,
                     "max_saves_per_item": 1}, c
        st = run_probe("status", cid, "--db", db_url, "--format", "json")
        assert st.returncode == 0, st.stderr
        status = json.loads(st.stdout)
        assert status["state"] == "done", status
        assert status["counts"] == {"pending": 0, "done": ITEMS, "failed": 0}, status["counts"]
        for w in workers:
            assert w.poll() is None, "a worker died"
    finally:
        if run is not None and run.poll() is None:
            run.kill()
            run.wait(timeout=30)
        run_err.close()
        for w in workers:
            stop(w)
    for i in range(2):
        log = (tmp_path / f"worker{i}.log").read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]
