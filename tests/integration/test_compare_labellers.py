"""`probe compare --labellers ID`: agreement between every pair of a campaign's refusal labellers (and the person's
gold labels), on the responses both labelled: Cohen's kappa and confusion matrices equal to scikit-learn's on the
same labels; responses with no content and a judge's missing verdicts are left out of the pairs."""

from __future__ import annotations

import json
import random

import pytest
from sklearn.metrics import cohen_kappa_score, confusion_matrix
from typer.testing import CliRunner

from probe import campaigns, dispatch
from probe.cli.main import app
from probe.labelling import label_row
from probe.spec import CampaignSpec, ModelSpec
from probe.store import Store

pytest.importorskip("classifiers.registry")
from classifiers import registry  # noqa: E402

ORDER = ["refusal", "partial", "compliance"]


def test_labeller_agreement_matches_sklearn(tmp_path):
    path = tmp_path / "agree.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i:02d}", "text": f"Tell me about topic {i}.", "category": "benign",
                                        "expected": "comply", "harmful": False}) + "\n" for i in range(60)),
                    encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'c.db'}"
    store = Store(db)
    spec = CampaignSpec(models=[ModelSpec(id="sim/refusal_rate=0.4")], refusals=[str(path)], samples=1, seed=3)
    cid, _ = campaigns.create(store, spec, "embedded")
    dispatch.run_embedded(store, cid, 8)
    tfidf = registry.default_id()
    keys = sorted(store.label_history(cid)[tfidf])
    assert len(keys) == 60

    # two more labellers with known labels: "b" agrees with the default classifier most of the time, "j" (a judge)
    # has no verdict on 5 responses (filled in by the default classifier); a person gold-labels 20
    rng = random.Random(7)
    a = {k: lab.label for k, lab in store.label_history(cid)[tfidf].items()}
    b = {k: a[k] if rng.random() < 0.7 else rng.choice(ORDER) for k in keys}
    j = {k: rng.choice(ORDER) for k in keys}
    no_verdict = set(keys[:5])
    gold = {k: rng.choice(["refusal", "compliance"]) for k in rng.sample(keys, 20)}
    rows = [label_row("b:1", b[k], None) | {"key": k} for k in keys]
    rows += [(label_row("judge:j-1", None, None, reason="judge call failed", fallback=tfidf) if k in no_verdict
              else label_row("judge:j-1", j[k], None)) | {"key": k} for k in keys]
    rows += [label_row("person:ann", g, None, labeller="gold") | {"key": k} for k, g in gold.items()]
    store.add_labels(rows)
    # a response with no content for every labeller: out of every pair
    store.add_labels([label_row(v, "no_content", None, reason="no content: empty text") | {"key": keys[-1]}
                      for v in (tfidf, "b:1", "judge:j-1")])
    a[keys[-1]] = b[keys[-1]] = j[keys[-1]] = "no_content"

    runner = CliRunner()
    res = runner.invoke(app, ["compare", "--labellers", cid, "--db", db, "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["chosen"] == tfidf and data["order"] == ORDER
    assert [x["labeller"] for x in data["labellers"]] == [tfidf, "b:1", "judge:j-1", "gold"]
    jrow = data["labellers"][2]
    assert (jrow["responses"], jrow["no_label"], jrow["no_content"], jrow["fallback"]) == (60, 5, 1, [tfidf])
    labels = {tfidf: a, "b:1": b, "judge:j-1": {k: v for k, v in j.items() if k not in no_verdict}, "gold": gold}
    assert len(data["pairs"]) == 6
    for p in data["pairs"]:
        x, y = labels[p["a"]], labels[p["b"]]
        common = sorted(k for k in x if k in y and x[k] in ORDER and y[k] in ORDER)
        xa, ya = [x[k] for k in common], [y[k] for k in common]
        assert p["n"] == len(common) > 10, (p["a"], p["b"])
        assert p["agreement"] == pytest.approx(sum(u == v for u, v in zip(xa, ya)) / len(common))
        assert p["kappa"] == pytest.approx(cohen_kappa_score(xa, ya, labels=ORDER))
        bx, by = [v != "compliance" for v in xa], [v != "compliance" for v in ya]
        assert p["kappa_binary"] == pytest.approx(cohen_kappa_score(bx, by))
        assert p["confusion"] == confusion_matrix(xa, ya, labels=ORDER).tolist()
    first = data["pairs"][0]
    assert (first["a"], first["b"], first["n"]) == (tfidf, "b:1", 59)
    assert first["kappa"] > 0.4  # b copies a 70% of the time

    res = runner.invoke(app, ["compare", "--labellers", cid, "--db", db], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert f"{first['kappa']:.3f}" in res.stdout and "rows: b:1 · columns: judge:j-1" in res.stdout
    res = runner.invoke(app, ["compare", "--labellers", cid, cid, "--db", db])
    assert res.exit_code != 0 and "one campaign" in str(res.exception)
