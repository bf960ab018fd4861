"""Steering campaigns for real, on SQLite and PostgreSQL: `probe cancel` stops a fleet or embedded campaign within
seconds and `probe resume` finishes it with every item stored exactly once; Ctrl-C (SIGINT) pauses an embedded run
(exit 130, the resume line on stderr); bad ids and impossible moves are one `error:` line; `probe status` and
`probe campaigns` report exact counts and group failures; `probe resume` retries transient failures only, unless
`--retry-failed`. Model calls go over HTTP through LiteLLM to the project's test server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from probe.store import Store
from probe.testing.model_server import running_server
from tests.conftest import PROBE, run_probe
from tests.fleet import start_worker, stop, wait_until
from tests.helpers import counts

SAMPLES = 16  # acs2019 has 25 questions: 400 items
N = 25 * SAMPLES


def one_line_error(r, *needles: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def status(db: str, cid: str) -> dict:
    r = run_probe("status", cid, "--db", db, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def state(db: str, cid: str) -> str:
    store = Store(db)
    try:
        return store.state(cid)
    finally:
        store.engine.dispose()


def progress(db: str, cid: str) -> dict:
    store = Store(db)
    try:
        return dict(store.progress(cid))
    finally:
        store.engine.dispose()


def leased_pending(db: str, cid: str) -> int:
    store = Store(db)
    try:
        return store.progress(cid).get("pending", 0) - len(store.unleased_pending(cid))
    finally:
        store.engine.dispose()


def last_line(r) -> str:
    return r.stdout.strip().splitlines()[-1]


def settled(db: str, cid: str) -> dict:
    """Counts once nothing moves any more: two readings 3 s apart must be equal."""
    time.sleep(3)  # in-flight calls (0.1 s each) finish and are stored; the state gate is read once a second
    a = counts(db, cid) | {"progress": progress(db, cid)}
    time.sleep(3)
    b = counts(db, cid) | {"progress": progress(db, cid)}
    assert a == b, f"items still change after the cancel: {a} -> {b}"
    return a


EXACTLY_ONCE = {"items": N, "done": N, "responses": N, "ok_responses": N, "labels": N, "max_saves_per_item": 1}


@pytest.fixture
def slow_server():
    with running_server(latency=0.1, seed=3) as (url, _):
        yield url


def api_model(url: str) -> list[str]:
    return ["--model", "openai/test", "--api-base", f"{url}/v1"]


# ------------------------------------------------------------------------------------------- cancel and resume

@pytest.mark.fleet
def test_fleet_cancel_stops_within_seconds_and_resume_finishes_exactly_once(tmp_path, db_url, redis_server, slow_server):
    broker = redis_server.url
    # the default lease (30 s), no watchdog: items a stopped task had claimed must be free for the resume at once
    worker = start_worker(broker, db_url, tmp_path / "worker.log", env={"PROBE_LEASE_S": "30"})
    try:
        r = run_probe("run", *api_model(slow_server), "--survey", "acs2019", "--samples", str(SAMPLES), "--seed", "7",
                      "--concurrency", "2", "--broker", broker, "--db", db_url, "--no-wait")
        assert r.returncode == 0, r.stderr
        cid = last_line(r)
        wait_until(lambda: counts(db_url, cid)["done"] >= 30, 180, what="30 items done")
        c = run_probe("cancel", cid, "--db", db_url)
        assert c.returncode == 0, c.stderr
        assert f"probe resume {cid}" in c.stderr
        after = settled(db_url, cid)
        assert 30 <= after["done"] < N, "the cancel must land mid-campaign"
        assert after["progress"] == {"done": after["done"], "pending": N - after["done"]}
        assert after["responses"] == after["done"] and after["max_saves_per_item"] == 1
        assert leased_pending(db_url, cid) == 0  # tasks stopped by the cancel gave back what they had not run
        s = status(db_url, cid)
        assert (s["state"], s["state_reason"], s["mode"]) == ("cancelled", "cancelled by hand", "fleet")
        assert s["counts"] == {"pending": N - after["done"], "done": after["done"], "failed": 0}

        r = run_probe("resume", cid, "--broker", broker, "--db", db_url, timeout=400)
        assert r.returncode == 0, r.stderr
        assert last_line(r) == cid
        assert f"{N - after['done']} items to run" in r.stderr
        assert counts(db_url, cid) == EXACTLY_ONCE
        assert state(db_url, cid) == "done"
    finally:
        stop(worker)


@pytest.mark.fleet
def test_fleet_resume_right_after_a_cancel_is_not_held_up_by_the_stopped_tasks_leases(tmp_path, db_url, redis_server):
    """Slow calls (2 s), four per task, the default 30 s lease and no watchdog: the cancel stops tasks midway, and
    the items they claimed but never started must be free for the resume's tasks at once, not stranded."""
    broker = redis_server.url
    with running_server(latency=2.0, seed=4) as (url, _):
        worker = start_worker(broker, db_url, tmp_path / "worker.log", env={"PROBE_LEASE_S": "30"})
        try:
            r = run_probe("run", *api_model(url), "--survey", "acs2019", "--samples", "1", "--concurrency", "1",
                          "--broker", broker, "--db", db_url, "--no-wait")
            assert r.returncode == 0, r.stderr
            cid = last_line(r)
            wait_until(lambda: counts(db_url, cid)["done"] >= 2, 180, what="2 items done")
            assert run_probe("cancel", cid, "--db", db_url).returncode == 0
            wait_until(lambda: leased_pending(db_url, cid) == 0, 10, what="the stopped tasks to release their items")
            done = counts(db_url, cid)["done"]
            assert done < 25 - 4, "the cancel must stop tasks midway"
            r = run_probe("resume", cid, "--broker", broker, "--db", db_url, timeout=240)
            assert r.returncode == 0, r.stderr
        finally:
            stop(worker)
    c = counts(db_url, cid)
    assert c == {"items": 25, "done": 25, "responses": 25, "ok_responses": 25, "labels": 25, "max_saves_per_item": 1}
    assert state(db_url, cid) == "done"


@pytest.mark.fleet
def test_fleet_resume_while_old_messages_are_still_queued_runs_each_item_once(tmp_path, db_url, redis_server,
                                                                            slow_server):
    broker = redis_server.url
    r = run_probe("run", *api_model(slow_server), "--survey", "acs2019", "--samples", "1", "--concurrency", "8",
                  "--broker", broker, "--db", db_url, "--no-wait")  # one task of 25 items, no worker yet
    assert r.returncode == 0, r.stderr
    cid = last_line(r)
    assert run_probe("cancel", cid, "--db", db_url).returncode == 0
    r = run_probe("resume", cid, "--broker", broker, "--db", db_url, "--no-wait")
    assert r.returncode == 0, r.stderr
    worker = start_worker(broker, db_url, tmp_path / "worker.log")  # two processes: one message each
    try:
        wait_until(lambda: counts(db_url, cid)["done"] == 25, 180, what="every item done")
        time.sleep(3)
    finally:
        stop(worker)
    c = counts(db_url, cid)
    assert c["max_saves_per_item"] == 1 and c["responses"] == 25, c


def start_run(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, Path, Path]:
    """`probe run ...` in the background, its output in files (a pipe nobody reads could block it)."""
    out, err = tmp_path / "run.out", tmp_path / "run.err"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen([PROBE, "run", *args], stdout=o, stderr=e, env=dict(os.environ),
                                preexec_fn=_interruptible)
    return proc, out, err


def _interruptible() -> None:
    # as from a terminal: a test run started in the background (`cmd &`, nohup) ignores SIGINT, and its children
    # would inherit that
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def campaign_id_of(err: Path, proc: subprocess.Popen, timeout: float = 120) -> str:
    found: list[str] = []

    def announced() -> bool:
        m = re.search(r"campaign (\S+): \d+ items", err.read_text(errors="replace"))
        if m:
            found.append(m.group(1))
        assert proc.poll() is None, f"probe run ended early ({proc.returncode}): {err.read_text()}"
        return bool(m)

    wait_until(announced, timeout, what="probe run to create its campaign")
    return found[0]


def test_embedded_cancel_from_another_process_then_resume(tmp_path, db_url, slow_server):
    proc, out, err = start_run(tmp_path, *api_model(slow_server), "--survey", "acs2019", "--samples", str(SAMPLES),
                               "--seed", "8", "--concurrency", "4", "--db", db_url)
    try:
        cid = campaign_id_of(err, proc)
        wait_until(lambda: counts(db_url, cid)["done"] >= 30, 180, what="30 items done")
        c = run_probe("cancel", cid, "--db", db_url)
        assert c.returncode == 0, c.stderr
        assert proc.wait(timeout=90) == 0, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = err.read_text()
    assert out.read_text().strip().splitlines()[-1] == cid
    assert f"campaign {cid} is cancelled" in stderr and f"probe resume {cid}" in stderr
    after = settled(db_url, cid)
    assert 30 <= after["done"] < N and after["max_saves_per_item"] == 1
    assert after["progress"] == {"done": after["done"], "pending": N - after["done"]}
    assert state(db_url, cid) == "cancelled"

    r = run_probe("resume", cid, "--db", db_url, timeout=400)
    assert r.returncode == 0, r.stderr
    assert last_line(r) == cid
    assert counts(db_url, cid) == EXACTLY_ONCE
    assert state(db_url, cid) == "done"


# Forked and single-process runs, one store each (the four-way product doubled the time and found nothing more).
@pytest.mark.parametrize("store,processes", [("sqlite", None), ("postgresql", "1")],
                         ids=["sqlite-forked", "postgresql-one-process"])
def test_sigint_pauses_an_embedded_run_and_resume_completes_it(tmp_path, request, slow_server, store, processes):
    db_url = f"sqlite:///{tmp_path / 'probe.db'}" if store == "sqlite" else request.getfixturevalue("pg_url")
    extra = ["--processes", processes] if processes else []  # default: 2 processes for an API model
    proc, out, err = start_run(tmp_path, *api_model(slow_server), "--survey", "acs2019", "--samples", str(SAMPLES),
                               "--seed", "9", "--concurrency", "4", "--db", db_url, *extra)
    try:
        cid = campaign_id_of(err, proc)
        wait_until(lambda: counts(db_url, cid)["done"] >= 30, 180, what="30 items done")
        os.kill(proc.pid, signal.SIGINT)  # that process only, as a terminal's Ctrl-C would reach the parent first
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = err.read_text()
    assert rc == 130, stderr
    assert f"probe resume {cid}" in stderr and "Traceback" not in stderr, stderr
    assert out.read_text().strip().splitlines()[-1] == cid
    assert state(db_url, cid) == "paused"
    c = counts(db_url, cid)
    assert 30 <= c["done"] < N, c
    assert c["responses"] == c["done"] == c["labels"] and c["max_saves_per_item"] == 1, c
    assert progress(db_url, cid) == {"done": c["done"], "pending": N - c["done"]}
    assert status(db_url, cid)["state_reason"] == "interrupted (Ctrl-C)"

    r = run_probe("resume", cid, "--db", db_url, *extra, timeout=400)
    assert r.returncode == 0, r.stderr
    assert f"resuming campaign {cid} (paused): {N - c['done']} items to run" in r.stderr
    assert counts(db_url, cid) == EXACTLY_ONCE
    assert state(db_url, cid) == "done"


# ------------------------------------------------------------------------------------------------- bad input

def test_unknown_ids_and_impossible_moves_are_one_line_errors(tmp_path, db_url, redis_url):
    for cmd in ("status", "resume", "cancel"):
        one_line_error(run_probe(cmd, "nope", "--db", db_url), "'nope'")
    r = run_probe("run", "--model", "sim/uniform", "--survey", "acs2019", "--samples", "1", "--db", db_url)
    assert r.returncode == 0, r.stderr
    done = last_line(r)
    # an unknown id names the campaigns that do exist
    one_line_error(run_probe("status", "nope", "--db", db_url), "'nope'", done)
    line = one_line_error(run_probe("resume", done, "--db", db_url), done, "done", "nothing to resume")
    assert "--retry-failed" not in line  # nothing failed: no hint
    one_line_error(run_probe("cancel", done, "--db", db_url), done, "already done")
    # a fleet campaign enqueued with no worker running, cancelled, cancelled again
    r = run_probe("run", "--model", "sim/uniform", "--survey", "acs2019", "--samples", "1", "--db", db_url,
                  "--broker", redis_url, "--no-wait")
    assert r.returncode == 0, r.stderr
    queued = last_line(r)
    assert run_probe("cancel", queued, "--db", db_url).returncode == 0
    one_line_error(run_probe("cancel", queued, "--db", db_url), queued, "already cancelled")
    assert state(db_url, queued) == "cancelled" and state(db_url, done) == "done"
    _drain(redis_url)


def _drain(broker: str) -> None:
    """The session Redis is shared by this file's tests: leave no message of ours in its queue."""
    import redis

    client = redis.Redis.from_url(broker)
    try:
        client.delete("probe")
    finally:
        client.close()


def test_worker_without_a_store_refuses_and_starts_nothing(tmp_path, redis_server):
    import redis

    home = tmp_path / "home"
    client = redis.Redis.from_url(redis_server.url)
    try:
        before = client.info("stats")["total_connections_received"]
        env = {k: v for k, v in os.environ.items() if k != "PROBE_DB"}
        env["PROBE_HOME"] = str(home)
        t0 = time.monotonic()
        r = subprocess.run([PROBE, "worker", "--broker", redis_server.url], capture_output=True, text=True, env=env,
                           timeout=120)
        one_line_error(r, "--db", "PROBE_DB")
        assert r.stdout == "" and "celery" not in r.stderr.lower()
        assert time.monotonic() - t0 < 60
        assert client.info("stats")["total_connections_received"] == before  # the broker was never reached
        assert client.dbsize() == 0
    finally:
        client.close()
    assert not home.exists() or not any(home.rglob("*.db")), "no private SQLite store was made"


# --------------------------------------------------------------------------------------- status and campaigns

def test_status_and_campaigns_json_count_exactly(db_url):
    r = run_probe("run", "--model", "sim/uniform", "--model", "sim/a_bias=0.4", "--survey", "acs2019",
                  "--samples", "2", "--db", db_url)
    assert r.returncode == 0, r.stderr
    cid = last_line(r)
    s = status(db_url, cid)
    assert set(s) == {"id", "state", "state_reason", "mode", "created", "updated", "n_items", "counts", "progress",
                      "by_model_set", "throughput_per_s", "eta_s", "failures", "cost", "cache", "workers", "limits",
                      "budget"}
    assert (s["id"], s["state"], s["state_reason"], s["mode"], s["n_items"]) == (cid, "done", None, "embedded", 100)
    assert s["counts"] == {"pending": 0, "done": 100, "failed": 0} and s["progress"] == 1.0
    assert s["by_model_set"] == [
        {"model": "sim/a_bias=0.4", "kind": "survey", "set": "acs2019", "pending": 0, "done": 50, "failed": 0},
        {"model": "sim/uniform", "kind": "survey", "set": "acs2019", "pending": 0, "done": 50, "failed": 0},
    ]
    assert s["failures"] == [] and s["eta_s"] is None and s["workers"] is None
    assert s["cost"] == {"total": 0.0, "by_model": {"sim/a_bias=0.4": 0.0, "sim/uniform": 0.0},
                         "cost_per_1000_items": 0.0, "projected_rest": 0.0, "max_cost": None}
    assert s["cache"] == {"allowed": True, "served": 0} and s["limits"] is None and s["budget"] is None
    assert 0 < s["throughput_per_s"] <= round(100 / 60, 3)  # 100 responses in the last minute at most

    r2 = run_probe("run", "--model", "sim/uniform", "--refusals", "core", "--samples", "1", "--db", db_url)
    assert r2.returncode == 0, r2.stderr
    second = last_line(r2)
    r = run_probe("campaigns", "--db", db_url, "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["id"] for x in rows] == [second, cid]  # newest first
    first = rows[1]
    assert {k: first[k] for k in first if k != "created"} == {
        "id": cid, "models": ["sim/uniform", "sim/a_bias=0.4"], "sets": ["acs2019"], "state": "done",
        "mode": "embedded", "n_items": 100, "done": 100, "failed": 0, "pending": 0, "cost": 0.0,
        "cost_by_model": {"sim/a_bias=0.4": 0.0, "sim/uniform": 0.0}, "max_cost": None, "cache": True, "cached": 0}
    assert rows[0]["sets"] == ["core"] and rows[0]["n_items"] == rows[0]["done"] > 0
    r = run_probe("campaigns", "--db", db_url, "--format", "json", "--limit", "1")
    assert [x["id"] for x in json.loads(r.stdout)] == [second]
    table = run_probe("status", cid, "--db", db_url)
    assert table.returncode == 0 and "100 done, 0 failed, 0 pending of 100" in table.stdout


# ------------------------------------------------------------------------------ failures and --retry-failed

FAULTS = ([{"id": f"ok-{i}", "text": f"How do I fold paper plane number {i}?"} for i in range(6)]
          + [{"id": f"bad-{i}", "text": f"Tell me a story [[400]] number {i}"} for i in range(2)]
          + [{"id": f"flaky-{i}", "text": f"Tell me a joke [[500]] number {i}"} for i in range(2)])


def server_stats(url: str, reset: bool = False) -> dict:
    req = urllib.request.Request(f"{url}/reset" if reset else f"{url}/stats", method="POST" if reset else "GET")
    return json.loads(urllib.request.urlopen(req, timeout=5).read())


def attempts_by_id(db: str, cid: str) -> dict[str, tuple[str, int]]:
    store = Store(db)
    try:
        with store.session() as s:
            from sqlalchemy import select

            from probe.store import Item

            return {i.item_id: (i.status, i.attempts) for i in s.scalars(select(Item).where(Item.campaign_id == cid))}
    finally:
        store.engine.dispose()


def test_failures_are_grouped_and_only_transient_ones_retried_without_the_flag(tmp_path, db_url):
    prompts = tmp_path / "faults.jsonl"
    prompts.write_text("".join(json.dumps(p | {"category": "benign", "expected": "comply", "harmful": False}) + "\n"
                               for p in FAULTS))
    env = {"PROBE_ROUNDS": "2"}  # a transient failure gets two rounds, then is failed with its last error
    with running_server(seed=5) as (url, _):
        spec = tmp_path / "spec.yaml"
        spec.write_text(f"models: [{{id: openai/test, api_base: '{url}/v1'}}]\nrefusals: ['{prompts}']\n"
                        "samples: 1\nnum_retries: 0\nconcurrency: 4\n")
        r = run_probe("run", "--spec", str(spec), "--db", db_url, env=env)
        assert r.returncode == 0, r.stderr
        cid = last_line(r)
        assert f"4 of 10 items failed; `probe status {cid}`" in r.stderr
        # 6 answers, 2 bad requests (never retried), 2 server errors x 2 rounds (num_retries 0: one call a round)
        assert server_stats(url) | {"max_in_flight": 0} == {
            "requests": 12, "ok": 6, "status_429": 0, "status_500": 4, "status_4xx": 2, "hangs": 0, "in_flight": 0,
            "max_in_flight": 0}
        s = status(db_url, cid)
        assert s["state"] == "done" and s["counts"] == {"pending": 0, "done": 6, "failed": 4}
        assert s["by_model_set"] == [{"model": "openai/test", "kind": "refusal", "set": "faults", "pending": 0,
                                      "done": 6, "failed": 4}]
        f = {x["kind"]: x for x in s["failures"]}
        assert set(f) == {"permanent", "transient"} and len(s["failures"]) == 2
        assert f["permanent"]["count"] == 2 and "BadRequestError" in f["permanent"]["example"]
        assert "[[400]]" in f["permanent"]["example"]
        assert f["transient"]["count"] == 2 and "InternalServerError" in f["transient"]["example"]
        table = run_probe("status", cid, "--db", db_url)
        assert "BadRequestError" in table.stdout and "InternalServerError" in table.stdout
        assert attempts_by_id(db_url, cid) == {**{f"ok-{i}": ("done", 1) for i in range(6)},
                                               **{f"bad-{i}": ("failed", 1) for i in range(2)},
                                               **{f"flaky-{i}": ("failed", 1) for i in range(2)}}

        # without the flag: only the transient failures run again (two rounds each), the bad requests stay
        server_stats(url, reset=True)
        r = run_probe("resume", cid, "--db", db_url, env=env)
        assert r.returncode == 0, r.stderr
        assert f"resuming campaign {cid} (done): 2 items to run" in r.stderr
        st = server_stats(url)
        assert (st["requests"], st["status_500"], st["status_4xx"], st["ok"]) == (4, 4, 0, 0)
        a = attempts_by_id(db_url, cid)
        assert {k: v for k, v in a.items() if k.startswith(("bad", "flaky"))} == {
            "bad-0": ("failed", 1), "bad-1": ("failed", 1), "flaky-0": ("failed", 2), "flaky-1": ("failed", 2)}
        assert state(db_url, cid) == "done"

        # with --retry-failed: every failed item runs again, permanent ones once
        server_stats(url, reset=True)
        r = run_probe("resume", cid, "--retry-failed", "--db", db_url, env=env)
        assert r.returncode == 0, r.stderr
        assert f"resuming campaign {cid} (done): 4 items to run" in r.stderr
        st = server_stats(url)
        assert (st["requests"], st["status_500"], st["status_4xx"], st["ok"]) == (6, 4, 2, 0)
        a = attempts_by_id(db_url, cid)
        assert {k: v for k, v in a.items() if k.startswith(("bad", "flaky"))} == {
            "bad-0": ("failed", 2), "bad-1": ("failed", 2), "flaky-0": ("failed", 3), "flaky-1": ("failed", 3)}
        assert all(a[f"ok-{i}"] == ("done", 1) for i in range(6))  # done items are never run again

        # only permanent failures left: plain resume has nothing to do and says how to retry them
        perm = tmp_path / "perm.jsonl"
        perm.write_text("".join(json.dumps(p | {"category": "benign", "expected": "comply", "harmful": False}) + "\n"
                                for p in FAULTS if not p["id"].startswith("flaky")))
        spec.write_text(spec.read_text().replace(str(prompts), str(perm)))
        r = run_probe("run", "--spec", str(spec), "--db", db_url, env=env)
        assert r.returncode == 0, r.stderr
        cid2 = last_line(r)
        server_stats(url, reset=True)
        one_line_error(run_probe("resume", cid2, "--db", db_url, env=env), cid2, "2 failed items had permanent errors",
                       f"probe resume {cid2} --retry-failed")
        assert server_stats(url)["requests"] == 0
        assert state(db_url, cid2) == "done"
