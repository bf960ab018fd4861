"""How survey answers were really read, over LiteLLM's real HTTP path to the project's test server:

- answers whose first-token top logprobs hold no option letter (the server's --p-no-letter) are invalid, exactly
  those and with their reason, and every other answer is what a run without the faults gives;
- a provider for which LiteLLM drops logprobs and seed (perplexity/..., pointed at the test server): the stored
  params say they were not sent, the answers are read from the text and counted as a fallback, and every report
  format says so; one that drops only the seed (nscale/...) keeps logprobs and is warned about the seed.
The server decides its prose answers from the seed it received (no_letter(prompt, seed, p)), so which answers are
invalid also shows whether a seed reached it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from probe import campaigns, dispatch, report
from probe.cli.main import app
from probe.spec import CampaignSpec, ModelSpec
from probe.store import Store
from probe.testing.model_server import no_letter, running_server

P = 0.25
QUESTIONNAIRE = """\
name: reading
questions:
  - id: NEWS
    text: "How often do you read the news?"
    options:
      - {code: 1, text: "Daily"}
      - {code: 2, text: "Weekly"}
      - {code: 3, text: "Rarely"}
      - {code: 4, text: "Never"}
  - id: BIKE
    text: "Do you own a bicycle?"
    options:
      - {code: 1, text: "Yes"}
      - {code: 2, text: "No"}
  - id: PETS
    text: "How many pets live with you?"
    options:
      - {code: 1, text: "None"}
      - {code: 2, text: "One"}
      - {code: 3, text: "Two or more"}
"""


@pytest.fixture
def survey(tmp_path):
    p = tmp_path / "reading.yaml"
    p.write_text(QUESTIONNAIRE)
    return str(p)


def run(db: str, url: str, survey: str, model: str = "openai/test", mode: str = "logprobs", samples: int = 40):
    store = Store(db)
    spec = CampaignSpec(models=[ModelSpec(id=model, api_base=f"{url}/v1")], surveys=[survey], samples=samples,
                        seed=5, answer_mode=mode, concurrency=16, num_retries=0)
    cid, _ = campaigns.create(store, spec, "embedded")
    dispatch.run_embedded(store, cid, spec.concurrency)
    return store, cid


def rows(store: Store, cid: str) -> dict[tuple[str, int], dict]:
    """(question, sample) -> the stored facts of its answer."""
    labels = store.labels(cid, "answers")
    out = {}
    for item, resp in store.rows(cid):
        lab = labels[item.key]["answers"]
        prompt = next(m["content"] for m in reversed(resp.messages) if m["role"] == "user")
        out[(item.item_id, item.sample)] = {
            "prompt": prompt, "seed": item.seed, "params": resp.params, "label": lab.label, "reason": lab.reason,
            "mode": lab.labeller_version, "mass": lab.letter_mass, "option_probs": lab.option_probs}
    return out


def test_answers_without_a_letter_are_invalid_exactly_and_the_rest_unchanged(tmp_path, survey):
    with running_server(a_bias=0.3, p_no_letter=P) as (url, _):
        store, cid = run(f"sqlite:///{tmp_path / 'faults.db'}", url, survey)
    with running_server(a_bias=0.3) as (url, _):
        clean_store, clean_cid = run(f"sqlite:///{tmp_path / 'clean.db'}", url, survey)
    got, clean = rows(store, cid), rows(clean_store, clean_cid)
    assert len(got) == len(clean) == 120
    expected = {k for k, r in got.items() if no_letter(r["prompt"], r["seed"], P)}
    assert 10 < len(expected) < 60  # the share is about P, and some of each
    for k, r in got.items():
        assert r["params"]["seed"] == r["seed"] and r["params"]["logprobs"] is True and r["params"]["dropped"] == []
        assert r["mode"] == "logprobs"
        if k in expected:
            assert (r["label"], r["reason"], r["mass"]) == ("invalid", "no option letter in the top-k", 0.0), k
        else:
            assert r["label"] == "answered" and r["mass"] == pytest.approx(1.0), k
            assert r["option_probs"] == clean[k]["option_probs"], k  # the same answer as without the faults
    rep = report.build(store, cid)
    s = rep["models"]["openai/test"]["surveys"]["reading"]
    clean_rep = report.build(clean_store, clean_cid)["models"]["openai/test"]["surveys"]["reading"]
    assert clean_rep["summary"]["invalid_rate"] == 0 and clean_rep["summary"]["mean_letter_mass"] == pytest.approx(1.0)
    for var, q in s["questions"].items():
        bad = sum(1 for (v, _) in expected if v == var)
        assert q["n"] == 40 and q["invalid"] == bad
        assert q["invalid_reasons"] == ({"no option letter in the top-k": bad} if bad else {})
        assert q["letter_mass"] == pytest.approx((40 - bad) / 40)
        # the distribution over the valid answers is the clean run's over the same items
        codes = [str(c) for c in (1, 2, 3, 4)[:len(q["distribution"])]]
        valid = [clean[(var, i)]["option_probs"] for i in range(40) if (var, i) not in expected]
        want = np.mean([[p[c] for c in codes] for p in valid], axis=0)
        assert list(q["distribution"].values()) == pytest.approx(list(want), abs=1e-12)
    sm = s["summary"]
    assert sm["invalid_rate"] == pytest.approx(len(expected) / 120)
    assert sm["invalid_reasons"] == {"no option letter in the top-k": len(expected)}
    assert sm["mean_letter_mass"] == pytest.approx(np.mean([q["letter_mass"] for q in s["questions"].values()]))
    assert sm["answer_modes"] == {"logprobs": 120, "exact": 0, "text": 0}
    assert sm["fallback_to_text"] == 0 and sm["dropped_params"] == {}


def test_dropped_logprobs_and_seed_are_stored_as_not_sent_and_reported(tmp_path, survey):
    """perplexity/... takes neither logprobs nor seed in LiteLLM: they never reach the server."""
    db = f"sqlite:///{tmp_path / 'p.db'}"
    with running_server(a_bias=0.3, p_no_letter=P) as (url, _):
        store, cid = run(db, url, survey, model="perplexity/test", mode="auto", samples=10)
    got = rows(store, cid)
    assert len(got) == 30
    for k, r in got.items():
        p = r["params"]
        assert p["dropped"] == ["seed", "logprobs", "top_logprobs"] and p["sent"] == ["temperature", "max_tokens"]
        assert p["seed"] is None and p["logprobs"] is False and p["top_logprobs"] is None
        assert r["mode"] == "text" and r["mass"] is None
        assert p["text_fallback"] == "LiteLLM dropped logprobs for this provider"
        # the server chose its prose answers without a seed: the seed was not sent
        prose = no_letter(r["prompt"], None, P)
        assert (r["label"] == "invalid") == prose, k
        if prose:
            assert r["reason"] == "no option letter or option text in an answer position"
    rep = report.build(store, cid)
    s = rep["models"]["perplexity/test"]["surveys"]["reading"]
    sm = s["summary"]
    assert sm["answer_modes"] == {"logprobs": 0, "exact": 0, "text": 30}
    assert sm["fallback_to_text"] == 30
    assert sm["dropped_params"] == {"seed": 30, "logprobs": 30, "top_logprobs": 30}
    assert sm["mean_letter_mass"] is None and all(q["letter_mass"] is None for q in s["questions"].values())

    runner = CliRunner()
    md = runner.invoke(app, ["report", cid, "--db", db, "--format", "markdown"])
    assert md.exit_code == 0, md.output
    assert ("> ⚠️ **Warning:** logprobs fell back to text: 30 of 30 answers were asked in logprobs mode but read from "
            "the generated text (LiteLLM dropped logprobs for this provider on 30)") in md.stdout
    assert "LiteLLM dropped parameters the provider does not take, so they were never sent: seed (30 answers)" in md.stdout
    tab = runner.invoke(app, ["report", cid, "--db", db], env={"COLUMNS": "200"})
    assert tab.exit_code == 0 and "warning: logprobs fell back to text: 30 of 30 answers" in tab.stdout
    html = runner.invoke(app, ["report", cid, "--db", db, "--format", "html"])
    assert html.exit_code == 0 and "answers not read as asked" in html.stdout
    assert "logprobs fell back to text: 30 of 30 answers" in html.stdout
    js = json.loads(runner.invoke(app, ["report", cid, "--db", db, "--format", "json"]).stdout)
    assert js["models"]["perplexity/test"]["surveys"]["reading"]["summary"]["fallback_to_text"] == 30


def test_a_dropped_seed_alone_keeps_logprobs_and_is_warned(tmp_path, survey):
    """nscale/... takes logprobs but no seed in LiteLLM."""
    db = f"sqlite:///{tmp_path / 'n.db'}"
    with running_server(p_no_letter=P) as (url, _):
        store, cid = run(db, url, survey, model="nscale/test", samples=10)
    got = rows(store, cid)
    for k, r in got.items():
        assert r["params"]["dropped"] == ["seed"] and r["params"]["seed"] is None and r["params"]["logprobs"] is True
        assert r["mode"] == "logprobs" and "text_fallback" not in r["params"]
        assert (r["label"] == "invalid") == no_letter(r["prompt"], None, P), k
    sm = report.build(store, cid)["models"]["nscale/test"]["surveys"]["reading"]["summary"]
    assert sm["answer_modes"]["logprobs"] == 30 and sm["fallback_to_text"] == 0 and sm["dropped_params"] == {"seed": 30}
    md = CliRunner().invoke(app, ["report", cid, "--db", db, "--format", "markdown"]).stdout
    assert "fell back to text" not in md
    assert "seed (30 answers); without a seed the answers cannot be reproduced by seed." in md
