"""probe.report_columns._merged (SQLite's whole-table read for big campaigns) equals the left joins it replaces:
rows of other campaigns dropped, missing labels and responses as None, whatever the order the tables hold them in."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, and_, create_engine, insert, select

from probe import report_columns


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merged_equals_left_joins(tmp_path, monkeypatch, seed):
    monkeypatch.setattr(report_columns, "BATCH", 3)  # many batches: rows meet across them, in any order
    rng = random.Random(seed)
    md = MetaData()
    items = Table("items", md, Column("key", String, primary_key=True), Column("campaign", String),
                  Column("n", Integer))
    labels = Table("labels", md, Column("key", String, primary_key=True),
                   Column("labeller", String, primary_key=True), Column("label", String))
    responses = Table("responses", md, Column("key", String, primary_key=True), Column("cost", Integer))
    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    md.create_all(engine)
    keys = [f"k{i:03d}" for i in range(60)]
    camp = {k: rng.choice("AAB") for k in keys}
    with engine.begin() as c:
        c.execute(insert(items), [{"key": k, "campaign": camp[k], "n": i} for i, k in enumerate(rng.sample(keys, 60))])
        labelled = [k for k in keys if rng.random() < 0.8]
        c.execute(insert(labels), [{"key": k, "labeller": lab, "label": f"{lab}-{k}"}
                                   for k in rng.sample(labelled, len(labelled)) for lab in ("answers", "other")])
        answered = [k for k in keys if rng.random() < 0.8]
        c.execute(insert(responses), [{"key": k, "cost": i} for i, k in enumerate(rng.sample(answered, len(answered)))])
    with engine.connect() as conn:
        got = sorted(report_columns._merged(
            conn, select(items.c.key, items.c.n).where(items.c.campaign == "A"),
            select(labels.c.key, labels.c.label).where(labels.c.labeller == "answers"),
            select(responses.c.key, responses.c.cost)))
        q = (select(items.c.key, items.c.n, responses.c.key, responses.c.cost, labels.c.key, labels.c.label)
             .select_from(items)
             .outerjoin(labels, and_(labels.c.key == items.c.key, labels.c.labeller == "answers"))
             .outerjoin(responses, responses.c.key == items.c.key).where(items.c.campaign == "A"))
        want = sorted((tuple(r[:2]), tuple(r[2:4]), tuple(r[4:])) for r in conn.execute(q))
    assert got == want and len(want) == sum(v == "A" for v in camp.values())
    assert any(r[1][0] is None for r in want) and any(r[2][0] is None for r in want)
    engine.dispose()
