"""Audit schedules in the store (in-process; the race on SQLite and PostgreSQL): the conditional claim fires a due audit once however many
schedulers race for it, a missed stretch of periods gives one catch-up run on the grid, a run still going makes the
next slot skip, paused audits never fire, cron expressions give the right next times, and the audit spec turns
the response cache off unless it says otherwise."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from probe import audits
from probe.errors import ProbeError
from probe.store import Store
from probe.store.schema import Audit, AuditRun, utcnow

SPEC = {"models": [{"id": "sim/uniform"}], "refusals": ["core"], "samples": 1}


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 's.db'}")
    yield s
    s.engine.dispose()


def add(store: Store, name: str, next_run_at: datetime, every_s: float | None = 5.0, cron: str | None = None,
        paused: bool = False) -> None:
    with store.session.begin() as s:
        s.add(Audit(name=name, spec=audits.AuditSpec.model_validate(SPEC).model_dump(mode="json"), every_s=every_s,
                    cron=cron, paused=paused, next_run_at=next_run_at, created_at=utcnow()))


def test_racing_schedulers_fire_a_due_audit_once(db_url):
    url = db_url
    first = Store(url)
    now = utcnow()
    for i in range(20):
        add(first, f"a{i}", now - timedelta(seconds=1))
    won: list[str] = []
    stores = [Store(url) for _ in range(6)]  # six beat replicas' workers, each its own engine
    barrier = threading.Barrier(len(stores))

    def claim(s: Store) -> None:
        barrier.wait()
        won.extend(a.name for a, _ in audits.claim_due(s, now))

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == sorted(f"a{i}" for i in range(20))  # each exactly once
    assert audits.claim_due(first, now) == []
    assert all(audits.aware(a.next_run_at) > now for a in audits.all_audits(first))
    for s in stores + [first]:
        s.engine.dispose()


def test_missed_periods_give_one_catch_up_slot_on_the_grid(store):
    t0 = datetime(2026, 1, 1, 3, 0, tzinfo=timezone.utc)
    add(store, "a", t0)
    now = t0 + timedelta(seconds=5 * 7 + 2)  # seven periods missed (beat was down)
    [(a, slot)] = audits.claim_due(store, now)
    assert slot == t0
    assert audits.aware(audits.get(store, "a").next_run_at) == t0 + timedelta(seconds=40)  # the next slot after now
    assert audits.claim_due(store, now + timedelta(seconds=2)) == []  # not once per missed period
    assert [x.name for x, _ in audits.claim_due(store, t0 + timedelta(seconds=40))] == ["a"]


def test_paused_audits_never_fire_and_resume_from_the_next_slot(store):
    add(store, "p", utcnow() - timedelta(seconds=60), paused=True)
    assert audits.claim_due(store) == []
    audits.set_paused(store, "p", False)
    nxt = audits.aware(audits.get(store, "p").next_run_at)
    assert utcnow() < nxt <= utcnow() + timedelta(seconds=5)  # no backlog of the paused periods


def test_a_run_still_going_skips_the_next_slot(store):
    add(store, "busy", utcnow() - timedelta(seconds=1))
    a = audits.get(store, "busy")
    with store.session.begin() as s:
        s.execute(Audit.__table__.update().values(next_run_at=utcnow() + timedelta(days=1)))
    cid = audits.start_run(store, a, None, "manual")  # queued: still going
    with store.session.begin() as s:
        s.execute(Audit.__table__.update().values(next_run_at=utcnow() - timedelta(seconds=1)))
    out = audits.tick(store, None)
    assert out == {"finished": [], "started": [], "skipped": ["busy"]}
    with store.session() as s:
        assert [r.campaign_id for r in s.query(AuditRun)] == [cid]
    run_spec = store.campaign(cid).spec
    assert run_spec["cache"] is False and "alerts" not in run_spec  # the run's campaign: cache off, a plain spec


@pytest.mark.parametrize("expr, after, expected", [
    ("0 3 * * *", "2026-03-10T02:59:30", "2026-03-10T03:00:00"),
    ("0 3 * * *", "2026-03-10T03:00:00", "2026-03-11T03:00:00"),
    ("*/15 * * * *", "2026-03-10T10:07:00", "2026-03-10T10:15:00"),
    ("30 9 * * 1", "2026-03-10T12:00:00", "2026-03-16T09:30:00"),  # Mondays (10 March 2026 is a Tuesday)
    ("0 0 1 1 *", "2026-03-10T00:00:00", "2027-01-01T00:00:00"),
    ("0 12 1 * 0", "2026-03-02T00:00:00", "2026-03-08T12:00:00"),  # day of month OR Sunday, as cron does
])
def test_cron_next_times(expr, after, expected):
    t = datetime.fromisoformat(after).replace(tzinfo=timezone.utc)
    assert audits.next_cron(expr, t) == datetime.fromisoformat(expected).replace(tzinfo=timezone.utc)


@pytest.mark.parametrize("every, cron, needle", [
    ("24x", None, "--every: '24x' is not a period"),
    (None, "61 * * * *", "--cron: '61 * * * *': cannot read '61'"),
    (None, "* * *", "needs 5 fields"),
])
def test_bad_schedules(every, cron, needle):
    with pytest.raises(ProbeError, match=needle.replace("*", r"\*")):
        if every:
            audits.parse_every(every)
        else:
            audits.parse_cron(cron)


def test_audit_spec_cache_off_unless_asked():
    assert audits.AuditSpec.model_validate(SPEC).campaign().cache is False
    assert audits.AuditSpec.model_validate(SPEC | {"cache": True}).campaign().cache is True
    assert audits.parse_every("24h") == 86400 and audits.parse_every("1.5m") == 90
