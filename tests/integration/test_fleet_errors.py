"""Fleet operations against a store that is not there: PostgreSQL unreachable when a command starts (one `error:`
line, exit 2, no password shown), and PostgreSQL going away for a few seconds under a running embedded campaign
(saving results retries until it is back: every item is stored exactly once)."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from probe.store import Store
from probe.testing.model_server import running_server
from tests.conftest import PROBE, free_port, run_probe
from tests.fleet import wait_until
from tests.helpers import counts

pytestmark = pytest.mark.fleet

SECRET = "s3cr3t-pw-9f2"


def one_error_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def closed_port() -> int:
    return free_port()  # nothing listens there


@pytest.mark.parametrize("password", [None, SECRET], ids=["no-password", "password"])
@pytest.mark.parametrize("command", [
    ["run", "--model", "sim/uniform", "--survey", "acs2019", "--samples", "1"],
    ["run", "--model", "sim/uniform", "--survey", "acs2019", "--samples", "1", "--broker", "{broker}", "--no-wait"],
    ["worker", "--broker", "{broker}"],
    ["campaigns"],
    ["status", "20260101-000000-abcdef"],
    ["resume", "20260101-000000-abcdef"],
    ["cancel", "20260101-000000-abcdef"],
    ["db", "upgrade"],
    ["db", "current"],
], ids=["run", "run-fleet", "worker", "campaigns", "status", "resume", "cancel", "db-upgrade", "db-current"])
def test_unreachable_postgresql_at_start(command, password, closed_port, redis_url):
    auth = f"postgres:{SECRET}" if password else "postgres"
    db = f"postgresql+psycopg://{auth}@127.0.0.1:{closed_port}/x"
    t0 = time.monotonic()
    r = run_probe(*[a.replace("{broker}", redis_url) for a in command], "--db", db, timeout=120)
    line = one_error_line(r)
    assert f"127.0.0.1:{closed_port}" in line, line  # says which database
    assert SECRET not in r.stderr and SECRET not in r.stdout
    if password:
        assert "postgres:***@" in line, line
    assert time.monotonic() - t0 < 60  # refused at once, not retried for minutes


def test_unreachable_postgresql_from_the_environment(closed_port, redis_url):
    """PROBE_DB gives the same one line, password hidden."""
    env = {"PROBE_DB": f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:{closed_port}/x", "PROBE_BROKER": redis_url}
    for command in (["run", "--model", "sim/uniform", "--survey", "acs2019", "--samples", "1"], ["worker"]):
        r = run_probe(*command, env=env, timeout=120)
        line = one_error_line(r)
        assert SECRET not in r.stderr and "postgres:***@" in line, line


def test_postgresql_down_mid_run_embedded(pg_server, pg_url, tmp_path):
    """PostgreSQL stops for ~5 s under an embedded `probe run` (test server at latency 0.1): the run rides it out
    and ends with every item done exactly once."""
    n_items = 25 * 16
    with running_server(latency=0.1, seed=5) as (server, _):
        err = open(tmp_path / "run.stderr", "w+")
        run = subprocess.Popen([PROBE, "run", "--model", "openai/test", "--api-base", f"{server}/v1", "--survey",
                                "acs2019", "--samples", "16", "--seed", "2", "--concurrency", "4", "--db", pg_url],
                               stdout=subprocess.PIPE, stderr=err, text=True, env=dict(os.environ))
        try:
            store = Store(pg_url)

            def done() -> int:
                with store.engine.connect() as conn:
                    return conn.exec_driver_sql("SELECT count(*) FROM items WHERE status = 'done'").scalar()

            wait_until(lambda: done() >= 40 or run.poll() is not None, timeout=180, poll=0.2, what="first results")
            store.engine.dispose()
            assert run.poll() is None, "the campaign ended before the database went away"
            pg_server.stop()
            assert run.poll() is None, "the campaign ended before the database went away"
            t_down = time.monotonic()
            time.sleep(5)
            pg_server.start()
            down_s = time.monotonic() - t_down
            stdout, _ = run.communicate(timeout=300)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait(timeout=30)
            pg_server.ensure_running()
        err.seek(0)
        stderr = err.read()
        err.close()
    assert run.returncode == 0, stderr[-5000:]
    cid = stdout.strip().splitlines()[-1]
    c = counts(pg_url, cid)
    assert c == {"items": n_items, "done": n_items, "responses": n_items, "ok_responses": n_items,
                 "labels": n_items, "max_saves_per_item": 1}, c
    store = Store(pg_url)
    try:
        assert store.state(cid) == "done"
    finally:
        store.engine.dispose()
    assert down_s >= 5
