"""An LLM judge whose calls fail on some responses (400 from the test server, not retried): the fallback classifier's
labels for those are stored under the fallback's own name and version, never the judge's; the judge's row says it
gave none, why, and who filled in; relabel's output and the report count the stand-ins, and the report says that
its rate mixes two labellers."""

from __future__ import annotations

import json
import urllib.request

import pytest

from probe.store import Store
from probe.testing.model_server import running_server
from tests.conftest import run_probe

pytest.importorskip("classifiers.registry")
from classifiers import registry  # noqa: E402

JUDGE = "judge:judge-openai/test-v1"
VERDICT = '{{"label": "{}", "confidence": 0.9}}'
OK = [("I'm sorry, but I can't help with that. " + VERDICT.format("refusal"), "refusal")] * 5 + \
     [("Sure: whisk the eggs, add flour, fry. " + VERDICT.format("compliance"), "compliance")] * 7
# The model's answer ends in [[400]] (written \] in the prompt, which must not carry the marker itself): the
# judge's call quotes the answer, and the server refuses it with a 400.
FAIL = ["Fold the sheet in half, then fold the corners in. [[400\\]\\]", "I must decline to answer this one. [[400\\]\\]",
        "Here's a simple recipe: mix, knead, bake. [[400\\]\\]"]


def test_judge_failures_are_stored_under_the_fallback_and_counted(tmp_path):
    rows = ([{"id": f"ok-{i:02d}", "text": f"Ask {i}. [[reply:{a}]]"} for i, (a, _) in enumerate(OK)]
            + [{"id": f"bad-{i}", "text": f"Ask more {i}. [[reply:{a}]]"} for i, a in enumerate(FAIL)]
            + [{"id": "empty-0", "text": "Ask nothing. [[empty]]"}])
    path = tmp_path / "fb.jsonl"
    path.write_text("".join(json.dumps(r | {"category": "benign", "expected": "comply", "harmful": False}) + "\n"
                            for r in rows), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'f.db'}"
    tfidf = registry.default_id()
    with running_server() as (url, _):
        r = run_probe("run", "--model", "openai/test", "--api-base", f"{url}/v1", "--refusals", str(path),
                      "--samples", "1", "--db", db)
        assert r.returncode == 0, r.stderr
        cid = r.stdout.strip().splitlines()[-1]
        urllib.request.urlopen(urllib.request.Request(f"{url}/reset", method="POST"), timeout=5).read()
        r = run_probe("relabel", cid, "--classifier", "judge:openai/test", "--api-base", f"{url}/v1", "--db", db)
        stats = json.loads(urllib.request.urlopen(f"{url}/stats", timeout=5).read())
    assert r.returncode == 0, r.stderr
    assert stats["status_4xx"] == len(FAIL) and stats["ok"] == len(OK)  # one call per response with content
    assert f"{len(FAIL)} judge calls fell back to {tfidf}" in r.stdout

    store = Store(db)
    item_of = {it.key: it.item_id for it, _ in store.rows(cid, "refusal")}
    resp_of = {it.item_id: resp.raw_text for it, resp in store.rows(cid, "refusal")}
    prompt_of = {it.item_id: resp.messages[-1]["content"] for it, resp in store.rows(cid, "refusal")}
    assert resp_of["bad-0"].endswith("[[400]]")
    hist = store.label_history(cid)
    judge = {item_of[k]: lab for k, lab in hist[JUDGE].items()}
    default = {item_of[k]: lab for k, lab in hist[tfidf].items()}
    assert set(judge) == set(default) == set(resp_of)
    bad = [f"bad-{i}" for i in range(len(FAIL))]
    expected_default = registry.get().predict([resp_of[b] for b in bad], [prompt_of[b] for b in bad])
    for i, p in enumerate(expected_default):
        lab = judge[f"bad-{i}"]
        assert (lab.label, lab.p_refusal, lab.fallback) == (None, None, tfidf)
        assert lab.reason.startswith("judge call failed: ") and "400" in lab.reason
        assert default[f"bad-{i}"].label == p.label  # the stand-in, under the default classifier's own name
    for i, (_, truth) in enumerate(OK):
        assert (judge[f"ok-{i:02d}"].label, judge[f"ok-{i:02d}"].fallback) == (truth, None)
    assert judge["empty-0"].label == "no_content"

    rep = run_probe("report", cid, "--db", db, "--format", "json")
    got = json.loads(rep.stdout)["models"]["openai/test"]["refusals"]["fb"]
    stand_in_refusals = sum(p.label in ("refusal", "partial") for p in expected_default)
    assert got["labeller"] == JUDGE and got["classifier"] == sorted([JUDGE, tfidf])
    assert got["fallback"] == {"n": len(FAIL), "labellers": [tfidf]}
    assert (got["n"], got["refusals"], got["no_content"], got["unlabelled"]) == (
        len(OK) + len(FAIL), 5 + stand_in_refusals, 1, 0)
    assert f"gave no label for {len(FAIL)} responses" in got["method"] and "mixes labellers" in got["method"]
    md = run_probe("report", cid, "--db", db, "--format", "markdown").stdout
    assert f"{JUDGE} gave no label for {len(FAIL)} responses; {tfidf} labelled those instead" in md

    # agreement leaves the judge's missing verdicts out: it is compared on the responses it labelled itself
    data = json.loads(run_probe("compare", "--labellers", cid, "--db", db, "--format", "json").stdout)
    pair = next(p for p in data["pairs"] if {p["a"], p["b"]} == {JUDGE, tfidf})
    assert pair["n"] == len(OK)
    row = next(x for x in data["labellers"] if x["labeller"] == JUDGE)
    assert (row["no_label"], row["fallback"], row["no_content"]) == (len(FAIL), [tfidf], 1)
