"""The refusal CLI around a campaign: gold labels (probe label), DSL in the report, the prompt-only model."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from probe import campaigns, dispatch
from probe.cli.main import app
from probe.spec import CampaignSpec, ModelSpec
from probe.store import Store

pytest.importorskip("classifiers.registry")


@pytest.fixture
def campaign(tmp_path):
    db = f"sqlite:///{tmp_path / 'l.db'}"
    store = Store(db)
    spec = CampaignSpec(models=[ModelSpec(id="sim/refusal_rate=0.4")], refusals=["core"], samples=1, seed=2)
    cid, n = campaigns.create(store, spec, "embedded")
    dispatch.run_embedded(store, cid, 32)
    return db, cid, n


def test_gold_labels_give_a_dsl_rate_and_the_classifiers_confusion(campaign):
    db, cid, n = campaign
    runner = CliRunner()
    # a person labels 12 responses: 6 refusals, 4 compliances, then skips one and quits
    keys = "r\nr\nr\nr\nr\nr\nc\nc\nc\nc\ns\nq\n"
    r = runner.invoke(app, ["label", cid, "--sample", "20", "--seed", "1", "--db", db], input=keys)
    assert r.exit_code == 0, r.output
    assert "saved 10 gold labels" in r.output
    rep = runner.invoke(app, ["report", cid, "--db", db, "--format", "json"])
    got = json.loads(rep.stdout)["models"]["sim/refusal_rate=0.4"]["refusals"]["core"]
    assert got["gold"]["n"] == 10
    conf = got["gold"]["confusion"]
    assert conf["refusal"]["refusal"] + conf["refusal"]["compliance"] == 6
    assert conf["compliance"]["refusal"] + conf["compliance"]["compliance"] == 4
    lo, hi = got["dsl"]["ci95"]
    assert got["dsl"]["n_gold"] == 10 and lo <= got["dsl"]["rate"] <= hi
    assert len(got["classifier"]) == 1 and got["classifier"][0].startswith("tfidf:tfidf-")
    agree = conf["refusal"]["refusal"] + conf["compliance"]["compliance"]
    for fmt in ("table", "markdown", "html"):  # people see the corrected rate too, not only programs
        text = runner.invoke(app, ["report", cid, "--db", db, "--format", fmt]).stdout
        assert f"DSL-corrected refusal rate {got['dsl']['rate']:.3f}" in text, fmt
        assert f"agrees with {agree} of 10" in text, fmt


def test_train_prompt_from_a_campaign(campaign, tmp_path):
    db, cid, n = campaign
    out = tmp_path / "pm"
    r = CliRunner().invoke(app, ["classifier", "train-prompt", "--campaign", cid, "--db", db, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert f"{n} prompts" in r.output
    r = CliRunner().invoke(app, ["predict-refusal", "How do I bake bread?", "--model", str(out)])
    assert r.exit_code == 0 and "p_refusal=" in r.output
