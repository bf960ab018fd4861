"""Labeller history: a campaign labelled by the workers' default classifier, then relabelled with the embedding
classifier and with an LLM judge (scripted verdicts from the test server over HTTP) keeps all three labellers'
labels for every response; the report follows the campaign's chosen labeller, `probe relabel --use` switches it
without labelling anything, and an unknown name is an error that lists what is stored. Gold labels stay one per
response and survive every relabel."""

from __future__ import annotations

import json

import pytest

from probe.store import Store
from probe.testing.model_server import running_server
from tests.conftest import run_probe

pytest.importorskip("classifiers.registry")
from classifiers import registry  # noqa: E402

JUDGE = "judge:judge-openai/test-v1"
# The model's answers carry the judge's verdict as JSON: the judge's call quotes the prompt, whose [[reply:...]] the
# server answers first, so the judge "says" exactly that verdict.
ANSWERS = {
    "refusal": "I'm sorry, but I can't help with that request. {verdict}",
    "compliance": "Sure! Here is a step-by-step overview: gather what you need, then follow the steps. {verdict}",
    "partial": "I won't give exact doses, but a pharmacist can tell you what is safe. {verdict}",
}
TRUTH = ["refusal"] * 9 + ["compliance"] * 12 + ["partial"] * 3  # the judge's verdicts, in prompt order
EMPTY = 3  # prompts answered with no content (a content filter)


def _prompt_set(path) -> dict[str, str | None]:
    rows, verdicts = [], {}
    for i, lab in enumerate(TRUTH):
        verdict = json.dumps({"label": lab, "confidence": 0.8})
        rows.append({"id": f"p-{i:02d}", "text": f"Question {i}. [[reply:{ANSWERS[lab].format(verdict=verdict)}]]",
                     "category": "benign", "expected": "comply", "harmful": False})
        verdicts[f"p-{i:02d}"] = lab
    for i in range(EMPTY):
        rows.append({"id": f"e-{i}", "text": f"Filtered question {i}. [[empty]]", "category": "privacy",
                     "expected": "comply", "harmful": False})
        verdicts[f"e-{i}"] = None
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return verdicts


def _report(db, cid):
    r = run_probe("report", cid, "--db", db, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["models"]["openai/test"]["refusals"]["hist"]


def test_every_labellers_labels_are_kept_and_the_report_follows_the_chosen_one(tmp_path):
    db = f"sqlite:///{tmp_path / 'h.db'}"
    verdicts = _prompt_set(tmp_path / "hist.jsonl")
    tfidf = registry.default_id()
    with running_server() as (url, _):
        r = run_probe("run", "--model", "openai/test", "--api-base", f"{url}/v1", "--refusals",
                      str(tmp_path / "hist.jsonl"), "--samples", "1", "--db", db)
        assert r.returncode == 0, r.stderr
        cid = r.stdout.strip().splitlines()[-1]
        store = Store(db)
        item_of = {it.key: it.item_id for it, _ in store.rows(cid, "refusal")}
        assert store.campaign(cid).refusal_labeller == tfidf and _report(db, cid)["labeller"] == tfidf
        before = {k: (lab.label, lab.p_refusal) for k, lab in store.label_history(cid)[tfidf].items()}
        assert len(before) == len(verdicts)
        gold_key = next(k for k, i in item_of.items() if i == "p-00")
        store.add_labels([{"key": gold_key, "labeller": "gold", "labeller_version": "person:ann", "label": "refusal",
                           "p_refusal": 1.0}])

        r = run_probe("relabel", cid, "--classifier", "embedding", "--db", db)
        assert r.returncode == 0, r.stderr
        assert f"{EMPTY} responses with no content labelled no_content" in r.stdout
        emb = json.loads(run_probe("compare", "--labellers", cid, "--db", db, "--format", "json").stdout)["chosen"]
        assert emb.startswith("embedding:") and emb == f"embedding:{registry.get('embedding').version}"
        r = run_probe("relabel", cid, "--classifier", "judge:openai/test", "--api-base", f"{url}/v1", "--db", db)
        assert r.returncode == 0, r.stderr
        assert "fell back" not in r.stdout  # every verdict arrived

    # all three labellers' labels, side by side, for every response; the default classifier's untouched
    hist = store.label_history(cid)
    assert set(hist) == {tfidf, emb, JUDGE}
    for version, labs in hist.items():
        assert set(labs) == set(item_of), version
        for k, lab in labs.items():
            if verdicts[item_of[k]] is None:
                assert (lab.label, lab.p_refusal) == ("no_content", None), version
                assert lab.reason == "no content: empty text, finish_reason content_filter"
            else:
                assert lab.label in ("refusal", "partial", "compliance") and lab.fallback is None, version
    assert {k: (lab.label, lab.p_refusal) for k, lab in hist[tfidf].items()} == before
    assert {item_of[k]: lab.label for k, lab in hist[JUDGE].items() if lab.label != "no_content"} == \
        {i: v for i, v in verdicts.items() if v is not None}
    gold = store.labels(cid, "gold")
    assert {k: labs["gold"].label for k, labs in gold.items()} == {gold_key: "refusal"}

    # the report reads the chosen labeller: now the judge, whose verdicts are the truth here
    got = _report(db, cid)
    n_ref = sum(v in ("refusal", "partial") for v in TRUTH)
    assert (got["labeller"], got["classifier"], got["fallback"]) == (JUDGE, [JUDGE], None)
    assert (got["n"], got["refusals"], got["no_content"]) == (len(TRUTH), n_ref, EMPTY)
    assert got["by_category"]["privacy"]["no_content"] == EMPTY and got["gold"]["n"] == 1

    # --use switches without labelling: the report then counts the embedding classifier's stored labels
    r = run_probe("relabel", cid, "--use", "embedding", "--db", db)
    assert r.returncode == 0, r.stderr
    assert f"now reports refusal labels by {emb} (was {JUDGE})" in r.stdout
    got = _report(db, cid)
    emb_labels = [lab.label for lab in hist[emb].values()]
    assert (got["labeller"], got["classifier"]) == (emb, [emb])
    assert got["refusals"] == sum(x in ("refusal", "partial") for x in emb_labels)
    assert got["n"] == len(TRUTH) and store.label_history(cid).keys() == hist.keys()  # nothing new was stored
    r = run_probe("relabel", cid, "--use", tfidf, "--db", db)
    assert r.returncode == 0 and _report(db, cid)["refusals"] == sum(x in ("refusal", "partial")
                                                                   for x, _ in before.values())
    md = run_probe("report", cid, "--db", db, "--format", "markdown").stdout
    assert f"Labelled by {tfidf} (the campaign's refusal labeller" in md

    # an unknown or ambiguous name: one line listing the stored labellers, and nothing changes
    for name, why in (("nope", "no labeller 'nope'"), ("judge-openai", "no labeller 'judge-openai'")):
        r = run_probe("relabel", cid, "--use", name, "--db", db)
        assert r.returncode == 2, r.stdout
        line = r.stderr.strip()
        assert line.startswith("error: ") and why in line and len(line.splitlines()) == 1
        assert all(f"{v} ({len(item_of)} labels)" in line for v in (tfidf, emb, JUDGE)), line
    assert store.campaign(cid).refusal_labeller == tfidf
    r = run_probe("relabel", cid, "--db", db)
    assert r.returncode == 2 and "exactly one of --classifier" in r.stderr
