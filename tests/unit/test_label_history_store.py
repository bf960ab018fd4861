"""Labels in the store with labeller history (migration 0003), on SQLite and PostgreSQL: a store from before keeps
its labels and gets each campaign's chosen labeller (the one that labelled most of its responses); refusal
labellers' rows accumulate side by side while survey answers and gold labels stay one per item; a label-less row
that names a fallback reads as the fallback's label; downgrading keeps the chosen labeller's labels."""

from __future__ import annotations

from datetime import datetime, timezone

from alembic import command
from sqlalchemy import MetaData, create_engine, inspect, select

from probe.labelling import label_row
from probe.store import Store, migrate
from probe.store.schema import Campaign, Label

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def _store_at_0002(url: str) -> None:
    """Campaign c1: refusal items k1..k3, relabelled by "tfidf:new" except k3 (still "tfidf:old"); a gold label on
    k1 and a survey answer on s1. Campaign c2: no labels."""
    engine = create_engine(url)
    try:
        migrate.upgrade(engine, "0002")
        md = MetaData()
        md.reflect(engine)
        with engine.begin() as conn:
            conn.execute(md.tables["campaigns"].insert(), [
                {"id": c, "created_at": NOW, "spec": {}, "prompt_hashes": {}, "code_revision": "x",
                 "package_versions": {}, "n_items": 4, "mode": "embedded", "state": "done"} for c in ("c1", "c2")])
            conn.execute(md.tables["items"].insert(), [
                {"key": k, "campaign_id": "c1", "model": "m", "kind": kind, "source": "s", "item_id": k, "sample": 0,
                 "seed": 0, "status": "done", "attempts": 1}
                for k, kind in (("k1", "refusal"), ("k2", "refusal"), ("k3", "refusal"), ("s1", "survey"))])
            conn.execute(md.tables["labels"].insert(), [
                {"key": k, "labeller": lr, "labeller_version": v, "label": lab, "p_refusal": p, "created_at": NOW}
                for k, lr, v, lab, p in (("k1", "refusal", "tfidf:new", "refusal", 0.9),
                                         ("k2", "refusal", "tfidf:new", "compliance", 0.1),
                                         ("k3", "refusal", "tfidf:old", "partial", 0.6),
                                         ("k1", "gold", "person:ann", "refusal", 1.0),
                                         ("s1", "answers", "logprobs", "answered", None))])
    finally:
        engine.dispose()


def _rows(store: Store) -> dict:
    with store.session() as s:
        return {(lab.key, lab.labeller, lab.labeller_version): (lab.label, lab.fallback) for lab in s.scalars(select(Label))}


def test_upgrade_backfills_the_choice_and_history_accumulates(db_url):
    _store_at_0002(db_url)
    store = Store(db_url)  # upgrades to head
    try:
        with store.engine.connect() as conn:
            assert inspect(conn).get_pk_constraint("labels")["constrained_columns"] == ["key", "labeller",
                                                                                         "labeller_version"]
        with store.session() as s:
            assert {c.id: c.refusal_labeller for c in s.scalars(select(Campaign))} == {"c1": "tfidf:new", "c2": None}
        assert len(_rows(store)) == 5
        assert {k: labs["refusal"].label for k, labs in store.labels("c1").items() if "refusal" in labs} == {
            "k1": "refusal", "k2": "compliance"}  # k3 has no label by the chosen labeller
        assert store.labels("c1", refusal_version="tfidf:old")["k3"]["refusal"].label == "partial"

        # a judge relabels: k2 gets a verdict, k1 falls back to tfidf:new; the earlier rows stay
        store.add_labels([label_row("judge:j", "refusal", 0.8) | {"key": "k2"},
                          label_row("judge:j", None, None, reason="judge call failed", fallback="tfidf:new") | {"key": "k1"},
                          label_row("tfidf:new", "refusal", 0.9) | {"key": "k1"}], choose=("c1", "judge:j"))
        assert store.refusal_labeller("c1") == "judge:j"
        assert store.refusal_labellers("c1") == {"tfidf:new": 2, "tfidf:old": 1, "judge:j": 2}
        got = store.labels("c1")
        assert {k: (labs["refusal"].label, labs["refusal"].labeller_version) for k, labs in got.items()
                if "refusal" in labs} == {"k1": ("refusal", "tfidf:new"), "k2": ("refusal", "judge:j")}
        assert got["k1"]["gold"].label == "refusal" and got["s1"]["answers"].label == "answered"

        # gold and survey answers: one row per item whatever the version; the same version is overwritten in place
        store.add_labels([label_row("person:bob", "compliance", 0.0, labeller="gold") | {"key": "k1"},
                          {"key": "s1", "labeller": "answers", "labeller_version": "text", "label": "invalid",
                           "reason": "no letter"}])
        store.add_labels([label_row("judge:j", "partial", 0.7) | {"key": "k2"}])
        rows = _rows(store)
        assert [r for r in rows if r[1] == "gold"] == [("k1", "gold", "person:bob")]
        assert [r for r in rows if r[1] == "answers"] == [("s1", "answers", "text")]
        assert rows[("k2", "refusal", "judge:j")] == ("partial", None) and len(rows) == 7
        hist = store.label_history("c1")
        assert {v: sorted(x) for v, x in hist.items()} == {"tfidf:new": ["k1", "k2"], "tfidf:old": ["k3"],
                                                           "judge:j": ["k1", "k2"]}

        # back to 0002: one refusal label per item, the chosen labeller's (or its stand-in's), or what there was
        store.engine.dispose()
        engine = create_engine(db_url)
        try:
            with engine.connect() as conn:
                command.downgrade(migrate._config(conn), "0002")
                conn.commit()
        finally:
            engine.dispose()
        engine = create_engine(db_url)
        try:
            md = MetaData()
            md.reflect(engine)
            assert "refusal_labeller" not in md.tables["campaigns"].c and "fallback" not in md.tables["labels"].c
            with engine.connect() as conn:
                left = {(r.key, r.labeller): (r.labeller_version, r.label) for r in conn.execute(md.tables["labels"].select())}
        finally:
            engine.dispose()
        assert left == {("k1", "refusal"): ("tfidf:new", "refusal"), ("k2", "refusal"): ("judge:j", "partial"),
                        ("k3", "refusal"): ("tfidf:old", "partial"), ("k1", "gold"): ("person:bob", "compliance"),
                        ("s1", "answers"): ("text", "invalid")}
    finally:
        store.engine.dispose()
