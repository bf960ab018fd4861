"""Audits on a real fleet: `probe beat` fires a schedule kept in the store, a real `probe worker` runs it, model
calls go over HTTP to the test server.

- Every 5 s over a window: one run per slot, on the schedule's grid, none overlapping (a slot that comes while the
  last run is still going, as on a loaded machine, is skipped: checked against the runs' times); beat killed
  mid-window and restarted after missing two or more slots fires one catch-up run, not one per missed slot, then
  the grid again.
  Default: 10 s before the kill, 7 s down, 6 s after the catch-up; PROBE_TEST_FULL=1: 30 s, 12 s, 10 s.
- A worker killed (SIGKILL) mid-run loses no run: the run completes on a new worker and appears in the history
  once, with every item stored exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime

import pytest

from probe import audits, dispatch
from probe.store import Store
from probe.testing.model_server import running_server
from tests.conftest import run_probe
from tests.fleet import start_beat, start_worker, stop, wait_until
from tests.helpers import counts

pytestmark = pytest.mark.fleet

FULL = bool(os.environ.get("PROBE_TEST_FULL"))
PERIOD = 5.0
UP_S, DOWN_S, AFTER_S = (30.0, 12.0, 10.0) if FULL else (10.0, 7.0, 6.0)  # AFTER_S: from the catch-up run


def write_spec(tmp_path, url: str, prompts: int, extra: str = "") -> str:
    with open(tmp_path / "tiny.jsonl", "w") as f:
        for i in range(prompts):
            f.write(json.dumps({"id": f"t-{i:03d}", "text": f"Fleet audit probe {i}: describe item {i}.",
                                "category": "benign", "expected": "comply", "harmful": False}) + "\n")
    spec = tmp_path / "audit.yaml"
    spec.write_text(f"models:\n  - id: openai/test\n    api_base: {url}/v1\nrefusals: [{tmp_path / 'tiny.jsonl'}]\n"
                    f"samples: 1\nseed: 3\n{extra}")
    return str(spec)


def create(db: str, name: str, spec: str, every: str | None = None, cron: str | None = None) -> float:
    """Create the audit in-process (`probe audit create` is tests/integration/test_audit_cli.py's; this saves a
    process its ~5 s LiteLLM import); returns its first slot as a timestamp."""
    store = Store(db)
    try:
        return audits.create(store, name, audits.load_spec(spec), every, cron).next_run_at.timestamp()
    finally:
        store.engine.dispose()


def audit_runs(db: str, name: str) -> list[dict]:
    store = Store(db)
    try:
        return audits.runs(store, name)
    finally:
        store.engine.dispose()


def ts(x: str | None) -> float:
    return datetime.fromisoformat(x).timestamp()


def campaign_window(db: str, cid: str) -> tuple[float, float]:
    """When a run's campaign was created and when it last changed state (done)."""
    store = Store(db)
    try:
        c = store.campaign(cid)
        return audits.aware(c.created_at).timestamp(), audits.aware(c.updated_at).timestamp()
    finally:
        store.engine.dispose()


def test_beat_fires_every_slot_once_and_one_catch_up_after_beat_was_down(tmp_path, redis_server):
    db = f"sqlite:///{tmp_path / 'fleet.db'}"
    broker = redis_server.url
    env = {"PROBE_AUDIT_TICK_S": "1", "PROBE_WATCHDOG_S": "30"}
    schedule = tmp_path / "beat-schedule"
    with running_server(seed=1) as (url, _):
        spec = write_spec(tmp_path, url, 6, "concurrency: 6\n")
        worker = start_worker(broker, db, tmp_path / "worker.log", env=env)
        beat = start_beat(broker, tmp_path / "beat.log", schedule, env=env)
        beat2 = None
        try:
            wait_until(lambda: dispatch.workers_alive(broker) > 0, 60, what="the worker")
            t0 = create(db, "every5", spec, every="5s")  # the first slot: an --every schedule first fires at once
            time.sleep(max(0.0, t0 + UP_S - 0.5 - time.time()))
            stop(beat, signal.SIGKILL)  # beat dies mid-window
            killed = time.time()
            time.sleep(DOWN_S)
            restarted = time.time()
            beat2 = start_beat(broker, tmp_path / "beat2.log", schedule, env=env)
            wait_until(lambda: any(ts(r["started_at"]) > restarted for r in audit_runs(db, "every5")), 30,
                       what="a run after the restart")
            time.sleep(AFTER_S)
            stop(beat2)
            stopped = time.time()
            # paused, a scheduler pass only finishes the runs still open (beat is gone): their summaries
            assert run_probe("audit", "pause", "every5", "--db", db).returncode == 0

            def finished() -> bool:
                t = run_probe("audit", "tick", "--db", db, "--broker", broker)
                assert t.returncode == 0 and json.loads(t.stdout)["started"] == [], t.stderr
                return all(r["finished_at"] for r in audit_runs(db, "every5"))

            wait_until(finished, 30, poll=0.5, what="runs finished")
            runs = audit_runs(db, "every5")
        finally:
            for p in (beat, beat2, worker):
                if p is not None and p.poll() is None:
                    stop(p, signal.SIGKILL)

    # every run fired for a slot on the grid, each slot at most once, before the next slot was due
    offsets = [ts(r["due_at"]) - t0 for r in runs]
    assert all(abs(o / PERIOD - round(o / PERIOD)) < 1e-6 for o in offsets), offsets
    assert len({round(o / PERIOD) for o in offsets}) == len(runs), "a slot fired twice"
    assert all(ts(r["started_at"]) - ts(r["due_at"]) < PERIOD for r in runs if r["trigger"] == "schedule")
    # none overlap: each run's campaign was done before the next one was created; every run done, 6 items each
    windows = [campaign_window(db, r["campaign_id"]) for r in runs]
    assert all(windows[i][1] <= windows[i + 1][0] for i in range(len(windows) - 1)), windows
    assert all(r["state"] == "done" and r["summary"]["models"]["openai/test"]["refusals"]["tiny"]["n"] == 6
               for r in runs)
    # beat down for two or more slots: exactly one catch-up run, for the first slot it missed, none while down
    [catch] = [i for i, r in enumerate(runs) if r["trigger"] == "catch-up"]
    c_due, c_start = ts(runs[catch]["due_at"]), ts(runs[catch]["started_at"])
    assert not any(killed < ts(r["started_at"]) < restarted for r in runs), "a run started while beat was down"
    assert killed - 2.0 < c_due < restarted and restarted < c_start < restarted + 20.0
    missed = [t0 + k * PERIOD for k in range(100) if c_due <= t0 + k * PERIOD < c_start]
    assert len(missed) >= 2, missed
    assert not any(c_due < ts(r["due_at"]) < c_start for r in runs)
    # every other slot fired, or was skipped because the run before it was still going (never two at once)
    n_skipped = 0
    for k in range(int((stopped - t0) // PERIOD) + 1):
        slot = t0 + k * PERIOD
        if slot > stopped - 2.0 or c_due <= slot < c_start or any(round(o / PERIOD) == k for o in offsets):
            continue
        prev = max(i for i, w in enumerate(windows) if w[0] < slot)
        assert windows[prev][1] > slot, f"slot {k} neither fired nor skipped for a run still going"
        n_skipped += 1
    assert len(runs) - 1 - n_skipped >= (UP_S + AFTER_S) // PERIOD - 2  # most slots fire, even on a busy machine
    print(f"{catch} runs in {UP_S:.0f} s, beat down {DOWN_S:.0f} s ({len(missed)} slots missed), 1 catch-up, "
          f"{len(runs) - catch - 1} more in {AFTER_S:.0f} s; {n_skipped} slot(s) skipped while a run was going")


def test_worker_killed_mid_run_loses_no_run(tmp_path, redis_server):
    db = f"sqlite:///{tmp_path / 'fleet.db'}"
    broker = redis_server.url
    fast = {"PROBE_VISIBILITY_TIMEOUT": "5"}  # the killed worker's task comes back after 5 s
    n = 40
    with running_server(seed=2, latency=0.3) as (url, _):
        # a yearly cron: nothing fires by itself here; `probe audit tick` below only finishes the run
        spec = write_spec(tmp_path, url, n, "concurrency: 2\ntimeout_s: 1\nnum_retries: 0\n")  # 4 waves x 1 s < 5 s
        create(db, "yearly", spec, cron="0 0 1 1 *")
        worker = start_worker(broker, db, tmp_path / "worker1.log", env=fast)
        worker2 = None
        try:
            r = run_probe("audit", "run", "yearly", "--db", db, "--broker", broker, "--no-wait", env=fast)
            assert r.returncode == 0, r.stderr
            cid = r.stdout.strip().splitlines()[-1]
            wait_until(lambda: counts(db, cid)["done"] >= 8, 60, poll=0.2, what="8 items done")
            stop(worker, signal.SIGKILL)  # kill -9 mid-run, tasks in hand
            assert 0 < counts(db, cid)["done"] < n, "the kill must land mid-run"
            worker2 = start_worker(broker, db, tmp_path / "worker2.log", env=fast)
            wait_until(lambda: counts(db, cid)["done"] >= n, 90, poll=0.5, what=f"all {n} items done")
            t = run_probe("audit", "tick", "--db", db, "--broker", broker, env=fast)
            assert t.returncode == 0, t.stderr
            assert json.loads(t.stdout) == {"finished": [cid], "started": [], "skipped": []}
        finally:
            for p in (worker, worker2):
                if p is not None and p.poll() is None:
                    stop(p, signal.SIGKILL)
    assert counts(db, cid) == {"items": n, "done": n, "responses": n, "ok_responses": n, "labels": n,
                               "max_saves_per_item": 1}
    hist = json.loads(run_probe("audit", "history", "yearly", "--db", db, "--format", "json").stdout)
    assert [(h["run"], h["campaign"], h["state"], h["trigger"]) for h in hist] == [(1, cid, "done", "manual")]
    runs = audit_runs(db, "yearly")
    assert runs[0]["summary"]["models"]["openai/test"]["refusals"]["tiny"]["n"] == n
    again = run_probe("audit", "tick", "--db", db, "--broker", broker)  # a second pass counts nothing twice
    assert json.loads(again.stdout) == {"finished": [], "started": [], "skipped": []}
    assert len(audit_runs(db, "yearly")) == 1
