"""Schema migrations on both stores: a new store's schema is exactly the models' (no drift between migrations and
probe/store/schema.py); a store made before migrations (the 0001 tables, no alembic_version) is stamped, upgraded
and keeps its rows; many processes or threads opening a new store at once all succeed and leave it at head."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import datetime, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, inspect, select, text

from probe.store import Store, migrate
from probe.store.schema import Base, Campaign, Item, Label, Response

OPENERS = 8


def revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return migrate.current(conn)
    finally:
        engine.dispose()


def test_new_store_schema_matches_the_models(db_url):
    store = Store(db_url)
    try:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
            assert migrate.current(conn) == migrate.head()
        assert diff == [], diff
    finally:
        store.engine.dispose()


def _old_store(url: str) -> None:
    """A store as create_all made it before migrations: the 0001 tables and no alembic_version; two campaigns,
    one with a pending and a done item, one with every item done."""
    engine = create_engine(url)
    try:
        migrate.upgrade(engine, migrate.BASELINE)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE alembic_version"))
        md = MetaData()
        md.reflect(engine)
        assert "alembic_version" not in md.tables and "state" not in md.tables["campaigns"].c
        now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        spec = {"models": [{"id": "sim/uniform"}], "surveys": ["acs2019"], "samples": 1}
        with engine.begin() as conn:
            for cid in ("old-part", "old-done"):
                conn.execute(md.tables["campaigns"].insert(), [{
                    "id": cid, "created_at": now, "spec": spec, "prompt_hashes": {"prompts/surveys/acs2019.yaml": "x"},
                    "code_revision": "abc", "package_versions": {"probe": "0.0"}, "n_items": 2, "mode": "embedded"}])
            items = [("k-part-1", "old-part", "done"), ("k-part-2", "old-part", "pending"),
                     ("k-done-1", "old-done", "done"), ("k-done-2", "old-done", "done")]
            conn.execute(md.tables["items"].insert(), [
                {"key": k, "campaign_id": c, "model": "sim/uniform", "kind": "survey", "source": "acs2019",
                 "item_id": f"Q{i}", "sample": 0, "seed": i, "permutation": [1, 2], "status": st,
                 "attempts": 1 if st == "done" else 0} for i, (k, c, st) in enumerate(items)])
            done = [k for k, _, st in items if st == "done"]
            conn.execute(md.tables["responses"].insert(), [
                {"key": k, "messages": [{"role": "user", "content": "q"}], "params": {"model": "sim/uniform"},
                 "raw_text": "A", "attempts": 1, "created_at": now} for k in done])
            conn.execute(md.tables["labels"].insert(), [
                {"key": k, "labeller": "answers", "labeller_version": "logprobs", "label": "answered",
                 "option_code": 1, "created_at": now} for k in done])
    finally:
        engine.dispose()


def test_store_made_before_migrations_is_stamped_upgraded_and_keeps_its_rows(db_url):
    _old_store(db_url)
    assert revision(db_url) is None
    store = Store(db_url)
    try:
        with store.engine.connect() as conn:
            assert migrate.current(conn) == migrate.head()
            assert inspect(conn).has_table("alembic_version")
        with store.session() as s:
            states = {c.id: (c.state, c.n_items, c.spec["samples"]) for c in s.scalars(select(Campaign))}
            assert states == {"old-part": ("paused", 2, 1), "old-done": ("done", 2, 1)}
            items = {i.key: (i.status, i.attempts, i.permutation, i.lease_until) for i in s.scalars(select(Item))}
            assert items == {"k-part-1": ("done", 1, [1, 2], None), "k-part-2": ("pending", 0, [1, 2], None),
                             "k-done-1": ("done", 1, [1, 2], None), "k-done-2": ("done", 1, [1, 2], None)}
            responses = {r.key: (r.raw_text, r.messages) for r in s.scalars(select(Response))}
            assert responses == {k: ("A", [{"role": "user", "content": "q"}]) for k in ("k-part-1", "k-done-1", "k-done-2")}
            labels = {(lab.key, lab.labeller): (lab.option_code, lab.letter_mass, lab.reason) for lab in s.scalars(select(Label))}
            assert labels == {(k, "answers"): (1, None, None) for k in ("k-part-1", "k-done-1", "k-done-2")}
        assert store.progress("old-part") == {"done": 1, "pending": 1}
        # and it is a working store: the old paused campaign moves on like any other
        assert store.set_state("old-part", "running", only_from=("paused",))
        assert store.unleased_pending("old-part") == ["k-part-2"]
    finally:
        store.engine.dispose()
    assert revision(db_url) == migrate.head()


def _open_in_process(url: str, barrier, errors) -> None:
    try:
        barrier.wait(timeout=120)
        Store(url).engine.dispose()
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        errors.put(f"{type(e).__name__}: {e}")


@pytest.mark.parametrize("how", ["processes", "threads"])
def test_many_openers_of_a_new_store_all_succeed(db_url, how):
    """Eight workers starting together on a new database: one migrates under the lock, the rest wait and go on."""
    if how == "processes":
        ctx = multiprocessing.get_context("spawn")  # each imports probe afresh, as separate `probe worker`s do
        barrier, errors = ctx.Barrier(OPENERS), ctx.Queue()
        procs = [ctx.Process(target=_open_in_process, args=(db_url, barrier, errors)) for _ in range(OPENERS)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=240)
        codes = [p.exitcode for p in procs]
        failures = []
        while not errors.empty():
            failures.append(errors.get())
        assert codes == [0] * OPENERS and failures == [], (codes, failures)
    else:
        import queue

        barrier, errors = threading.Barrier(OPENERS), queue.Queue()
        threads = [threading.Thread(target=_open_in_process, args=(db_url, barrier, errors)) for _ in range(OPENERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
        failures = list(errors.queue)
        assert not any(t.is_alive() for t in threads) and failures == [], failures
    assert revision(db_url) == migrate.head()
    store = Store(db_url)
    try:
        with store.engine.connect() as conn:  # one alembic_version row, every table there
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
            assert {"campaigns", "items", "responses", "labels"} <= set(inspect(conn).get_table_names())
    finally:
        store.engine.dispose()


def test_the_head_constant_names_the_newest_migration():
    """Stores at head open with one query and no Alembic import: migrate.HEAD must be the scripts' head."""
    from probe.store import migrate

    assert migrate.HEAD == migrate.head()
