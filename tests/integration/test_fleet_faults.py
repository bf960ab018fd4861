"""Faults of the fleet's servers, for real: a Redis that restarts with its data lost, a PostgreSQL that restarts
or stops for a while, in the middle of a campaign run by real `probe worker` (and `probe beat`) processes.
Each test ends with every planned item answered exactly once, the campaign `done`, and every process it
started stopped by PID. (A worker killed with SIGKILL is tests/integration/test_fleet.py's kill test.)"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from probe import dispatch, watchdog
from probe.testing.model_server import running_server
from tests.conftest import PROBE, run_probe
from tests.fleet import start_beat, start_worker, stop, wait_until
from tests.helpers import counts

pytestmark = pytest.mark.fleet

SAMPLES = 16  # x 25 acs2019 questions
N = 25 * SAMPLES
CONCURRENCY = 4  # calls in flight per task: 16 items a task, ~0.6 s of model latency each


def all_done(n: int = N) -> dict:
    return {"items": n, "done": n, "responses": n, "ok_responses": n, "labels": n, "max_saves_per_item": 1}


@pytest.fixture
def server():
    # latency leaves time to act mid-campaign; no injected errors: every item must end done, once
    with running_server(latency=0.15, seed=3) as (url, _):
        yield url


class Run:
    """A `probe run` (or `probe resume`) in its own process group, its stdout and stderr in files."""

    def __init__(self, tmp_path: Path, name: str, args: list[str], env: dict | None = None):
        self.out, self.err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        e = dict(os.environ, COLUMNS="400", **(env or {}))
        with open(self.out, "wb") as o, open(self.err, "wb") as er:
            self.proc = subprocess.Popen([PROBE, *args], stdout=o, stderr=er, env=e, start_new_session=True)

    def stderr(self) -> str:
        return " ".join(self.err.read_text(errors="replace").split())  # rich may wrap long lines

    def campaign_id(self, timeout: float = 60) -> str:
        found: list[str] = []

        def created() -> bool:
            assert self.proc.poll() is None or self.proc.returncode == 0, self.stderr()
            m = re.search(r"campaign (\S+): (\d+) items", self.stderr())
            if m:
                found.append(m.group(1))
            return bool(m)

        wait_until(created, timeout, what="the campaign to be created")
        return found[0]

    def finish(self, timeout: float) -> str:
        """Wait for it to exit 0; its stdout's last line (the campaign id)."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(self.proc)
            raise AssertionError(f"still running after {timeout:.0f} s; stderr: {self.stderr()[-2000:]}")
        assert rc == 0, self.stderr()[-2000:]
        return self.out.read_text().strip().splitlines()[-1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            stop(self.proc)


def run_args(server: str, broker: str, db: str, seed: int) -> list[str]:
    return ["run", "--model", "openai/test", "--api-base", f"{server}/v1", "--survey", "acs2019",
            "--samples", str(SAMPLES), "--seed", str(seed), "--broker", broker, "--db", db,
            "--concurrency", str(CONCURRENCY)]


def status(cid: str, db: str) -> dict:
    r = run_probe("status", cid, "--format", "json", "--db", db, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def done(db: str, cid: str) -> int:
    return counts(db, cid)["done"]


@contextlib.contextmanager
def logs_on_failure(tmp_path: Path):
    """A failed assertion carries the tails of the logs of the processes the test started."""
    try:
        yield
    except AssertionError as e:
        tails = []
        for f in sorted(tmp_path.glob("*.log")) + sorted(tmp_path.glob("*.err")):
            text = f.read_text(errors="replace")
            tails.append(f"--- {f.name} (last 3000 characters) ---\n{text[-3000:]}")
        raise AssertionError(f"{e}\n" + "\n".join(tails)) from e


def worker_ready(broker: str) -> None:
    """Wait until a worker answers a ping, so a campaign's progress starts when it is enqueued."""
    wait_until(lambda: dispatch.workers_alive(broker) > 0, 90, poll=0.5, what="the worker to answer")


@pytest.fixture
def started():
    """started(proc) registers a process (or a Run) the test started; all are stopped by PID at teardown,
    the last started first."""
    procs: list = []

    def register(p):
        procs.append(p)
        return p

    yield register
    for p in reversed(procs):
        if isinstance(p, Run):
            p.stop()
        elif p.poll() is None:
            stop(p)


# ------------------------------------------------------------------------------ Redis restarts, its data lost

def test_redis_lost_mid_campaign_is_healed_by_the_watchdog(tmp_path, db_url, redis_server, server, started):
    """`probe beat` running: the watchdog re-enqueues what the lost Redis held, with no person; the waiting
    `probe run` ends by itself."""
    broker = redis_server.url
    started(start_worker(broker, db_url, tmp_path / "worker.log"))
    started(start_beat(broker, tmp_path / "beat.log", tmp_path / "beat-schedule"))
    with logs_on_failure(tmp_path):
        worker_ready(broker)
        run = started(Run(tmp_path, "run", run_args(server, broker, db_url, seed=21)))
        cid = run.campaign_id()
        wait_until(lambda: done(db_url, cid) >= N // 5, 90, what=f"{N // 5} items done")
        redis_server.restart(lose_data=True)
        at_loss = done(db_url, cid)
        assert at_loss < N // 2, "the loss must land mid-campaign"
        assert run.finish(timeout=90) == cid
        assert counts(db_url, cid) == all_done()
        assert status(cid, db_url)["state"] == "done"
        assert "pending items had no task; enqueued again" in (tmp_path / "worker.log").read_text()


def test_redis_lost_without_beat_stalls_until_resume(tmp_path, db_url, redis_server, server, started):
    """No beat: the items the lost Redis held stay pending with no message; the waiting `probe run` warns that
    nothing moves; `probe resume` enqueues exactly those and the campaign completes, each item once."""
    broker = redis_server.url
    started(start_worker(broker, db_url, tmp_path / "worker.log"))
    with logs_on_failure(tmp_path):
        worker_ready(broker)
        run = started(Run(tmp_path, "run", run_args(server, broker, db_url, seed=22), env={"PROBE_STALL_S": "5"}))
        cid = run.campaign_id()
        wait_until(lambda: done(db_url, cid) >= N // 5, 90, what=f"{N // 5} items done")
        warned = run.stderr().count("no progress on campaign")
        redis_server.restart(lose_data=True)
        assert done(db_url, cid) < N // 2, "the loss must land mid-campaign"

        wait_until(lambda: run.stderr().count("no progress on campaign") > warned, 60, what="the stall warning")
        assert f"probe resume {cid}" in run.stderr()
        assert run.proc.poll() is None, "a stalled `probe run` keeps waiting"
        s = status(cid, db_url)
        assert s["state"] == "running" and s["counts"]["pending"] > 0, s
        assert cid not in watchdog.live_keys(broker), "no message names its items any more"
        assert done(db_url, cid) == s["counts"]["done"], "nothing runs them"

        resume = started(Run(tmp_path, "resume", ["resume", cid, "--broker", broker, "--db", db_url]))
        assert resume.finish(timeout=90) == cid
        assert f"{s['counts']['pending']} items" in resume.stderr()  # it sends exactly the items not done
        assert run.finish(timeout=30) == cid  # the first `probe run` sees it complete too
        assert counts(db_url, cid) == all_done()
        assert status(cid, db_url)["state"] == "done"
        assert "enqueued again" not in (tmp_path / "worker.log").read_text(), "no watchdog ran"


# ------------------------------------------------------------------------------ PostgreSQL restarts or stops

@pytest.mark.parametrize("outage", ["restart", "stop-start"])
def test_postgresql_outage_mid_campaign(tmp_path, outage, pg_server, pg_url, redis_server, server, started):
    """The store goes away for a moment (a fast restart, or stopped for ~5 s): workers ride it out (saving
    retries, tasks retry) and the waiting `probe run` too; every item is answered once."""
    broker = redis_server.url
    started(start_worker(broker, pg_url, tmp_path / "worker.log"))
    with logs_on_failure(tmp_path):
        worker_ready(broker)
        run = started(Run(tmp_path, "run", run_args(server, broker, pg_url, seed=23)))
        cid = run.campaign_id()
        wait_until(lambda: done(pg_url, cid) >= N // 5, 90, what=f"{N // 5} items done")
        if outage == "restart":
            pg_server.restart()
        else:
            pg_server.stop()
            time.sleep(5)
            pg_server.start()
        assert done(pg_url, cid) < N, "the outage must land mid-campaign"
        assert run.finish(timeout=90) == cid
        assert counts(pg_url, cid) == all_done()
        assert status(cid, pg_url)["state"] == "done"
