"""The column-wise report path (probe.report.collect: grouped counts in SQL, vectors streamed into numpy) gives the
same report as the row-by-row reference (collect_rows), every string equal and every float within 1e-9, on a mixed
campaign on SQLite and PostgreSQL: two sim models, a survey with valid answers read from logprobs and from text
(logprobs dropped), invalid answers with reasons, failed items, done items with no label, pending items, and a
refusal set with gold labels."""

from __future__ import annotations

import json
import random

import pytest
from sqlalchemy import delete, select, update

from probe import report, report_columns
from probe.store import Item, Label, Response, Store
from tests.conftest import run_probe

MODELS = ("sim/a_bias=0.3,prefer=seed:7", "sim/prefer=uniform,refusal_rate=0.4")
PROMPTS = [{"id": f"p{i}", "text": f"Question {i}: tell me about topic {i}.", "category": ("benign", "illegal_acts")[i % 2],
            "expected": ("comply", "refuse")[i % 2], "harmful": bool(i % 2)} for i in range(8)]


def tree_diff(a, b, path: str = "$", tol: float = 1e-9) -> list[str]:
    """Where two JSON trees differ: keys, lengths, strings, or floats further apart than tol."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}: keys {sorted(set(a) ^ set(b))}"] if set(a) != set(b) else []
        return out + [d for k in sorted(set(a) & set(b)) for d in tree_diff(a[k], b[k], f"{path}.{k}", tol)]
    if isinstance(a, list) and isinstance(b, list):
        out = [f"{path}: {len(a)} != {len(b)} entries"] if len(a) != len(b) else []
        return out + [d for i, (x, y) in enumerate(zip(a, b)) for d in tree_diff(x, y, f"{path}[{i}]", tol)]
    if isinstance(a, float) or isinstance(b, float):
        ok = isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool) and (a == b or abs(a - b) <= tol)
        return [] if ok else [f"{path}: {a!r} != {b!r}"]
    return [] if (a == b and type(a) is type(b)) else [f"{path}: {a!r} != {b!r}"]


def test_tree_diff_sees_what_differs():
    assert tree_diff({"a": [1.0, "x"], "b": None}, {"a": [1.0 + 1e-12, "x"], "b": None}) == []
    assert tree_diff({"a": 1.0}, {"a": 1.0 + 1e-6}) and tree_diff({"a": "x"}, {"a": "y"})
    assert tree_diff({"a": 1}, {"b": 1}) and tree_diff([1.0], [1.0, 2.0]) and tree_diff({"a": None}, {"a": 0.0})


def _mix(store: Store, cid: str) -> dict:
    """Make the campaign mixed: per survey question and model some answers invalid, some read from text with
    logprobs dropped, some failed, some done but unlabelled, some pending; costs, some cached; gold labels on some
    refusal items; samples renumbered so that the order rows come in is not the order samples enter the bootstrap."""
    rng = random.Random(5)
    with store.session.begin() as s:
        rows = s.execute(select(Item.key, Item.kind, Item.permutation, Item.model, Item.item_id, Item.sample)
                         .where(Item.campaign_id == cid).order_by(Item.key)).all()
        cells: dict = {}  # samples renumbered within each question: stored order is no longer sample order
        for r in rows:
            cells.setdefault((r.kind, r.model, r.item_id), []).append(r)
        for rs in cells.values():
            for r, sample in zip(rs, rng.sample([r.sample for r in rs], len(rs))):
                s.execute(update(Item).where(Item.key == r.key).values(sample=sample))
        survey = [r for r in rows if r.kind == "survey"]
        rng.shuffle(survey)
        cut = len(survey) // 10
        invalid, text, failed, unlabelled, pending = (survey[i * cut:(i + 1) * cut] for i in range(5))
        for r in invalid:
            mass = rng.choice([0.03, 0.07, 0.091])
            s.execute(update(Label).where(Label.key == r.key, Label.labeller == "answers").values(
                label="invalid", option_code=None, option_probs=None, letter_probs=None, letter_mass=mass,
                reason=f"letter mass {mass:.2g} < 0.1"))
        s.execute(update(Label).where(Label.key == invalid[0].key).values(reason=None))  # "no reason stored"
        for r in text:
            i = rng.randrange(len(r.permutation))
            s.execute(update(Label).where(Label.key == r.key, Label.labeller == "answers").values(
                labeller_version="text", option_code=r.permutation[i], letter_mass=None,
                option_probs={str(r.permutation[i]): 1.0}, letter_probs=[float(j == i) for j in range(len(r.permutation))]))
            params = s.scalar(select(Response.params).where(Response.key == r.key))
            s.execute(update(Response).where(Response.key == r.key).values(
                params=params | {"dropped": ["logprobs", "top_logprobs"]}))
        keys = [r.key for r in failed]
        s.execute(delete(Label).where(Label.key.in_(keys)))
        s.execute(update(Response).where(Response.key.in_(keys)).values(error="RateLimitError: 429", raw_text=None))
        s.execute(update(Item).where(Item.key.in_(keys)).values(status="failed"))
        s.execute(delete(Label).where(Label.key.in_([r.key for r in unlabelled])))
        keys = [r.key for r in pending] + [r.key for r in rows if r.kind == "refusal"][:3]
        s.execute(delete(Label).where(Label.key.in_(keys)))
        s.execute(delete(Response).where(Response.key.in_(keys)))
        s.execute(update(Item).where(Item.key.in_(keys)).values(status="pending"))
        for r in rows[::3]:  # costs (some on failed items, some cached: spend's figures)
            s.execute(update(Response).where(Response.key == r.key).values(cost=rng.random() / 1000,
                                                                              cached=rng.random() < 0.2))
        for r in [r for r in rows if r.kind == "refusal"][3:12]:
            s.add(Label(key=r.key, labeller="gold", labeller_version="person", label=rng.choice(["refusal", "compliance"])))
    return {"invalid": len(invalid), "text": len(text), "failed": len(failed), "unlabelled": len(unlabelled),
            "pending": len(pending)}


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_column_wise_report_equals_row_by_row(db_url, tmp_path, monkeypatch):
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    r = run_probe("run", *[a for m in MODELS for a in ("--model", m)], "--survey", "acs2019", "--refusals",
                  str(path), "--samples", "4", "--db", db_url)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip().splitlines()[-1]
    store = Store(db_url)
    made = _mix(store, cid)
    assert min(made.values()) >= 8, made

    fast = json.loads(json.dumps(report.build(store, cid), default=str))
    if store.engine.dialect.name == "sqlite":  # the campaign is the store's: read by whole-table scans (_merged);
        with store.engine.connect() as conn:
            assert report_columns._mostly(conn, cid)
        monkeypatch.setattr(report_columns, "MOSTLY", float("inf"))  # and by the one join, as for a small campaign
        joined = json.loads(json.dumps(report.build(store, cid), default=str))
        monkeypatch.undo()
        assert tree_diff(joined, fast) == []
    monkeypatch.setenv("PROBE_REPORT_ROWS", "1")
    ref = json.loads(json.dumps(report.build(store, cid), default=str))
    assert tree_diff(fast, ref) == []

    # the report really holds the mixed figures (so the comparison above compared something)
    sv = [m["surveys"]["acs2019"] for m in fast["models"].values()]
    assert sum(s["summary"]["errors"] for s in sv) == made["failed"] + made["unlabelled"]
    assert sum(q["invalid"] for s in sv for q in s["questions"].values()) == made["invalid"]
    assert sum(s["summary"]["answer_modes"]["text"] for s in sv) == made["text"]
    assert sum(s["summary"]["fallback_to_text"] for s in sv) == made["text"]
    assert sum(s["summary"]["dropped_params"].get("top_logprobs", 0) for s in sv) == made["text"]
    reasons = sum((list(s["summary"]["invalid_reasons"].items()) for s in sv), [])
    assert {k for k, _ in reasons} == {"letter mass < 0.1", "no reason stored"}
    assert fast["campaign"]["status"]["pending"] == made["pending"] + 3
    assert fast["cost"]["total"] > 0 and fast["cost"]["cached"] > 0
    assert all(m["paid"] > 0 for m in fast["cost"]["by_model"].values())
    # intervals against the census were compared too (which questions keep valid answers depends on the keys'
    # order, i.e. on the campaign's random id: any question will do)
    assert all(any((q["vs_baseline"].get("us_2019") or {}).get("kl_ci95") is not None for q in s["questions"].values())
               for s in sv)
    refusals = [m["refusals"]["mixed"] for m in fast["models"].values()]
    assert sum(x["gold"]["n"] for x in refusals if "gold" in x) == 9
    assert refusals[1]["refusals"] > 0 and refusals[0]["refusals"] == 0
    store.engine.dispose()
