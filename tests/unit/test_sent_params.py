"""What was really sent and how an answer was really read: models.dropped_params (LiteLLM's drop_params decision,
per provider), the stored params (execute.sent_params), a logprobs answer that came back without logprobs, and the
report's counts and warnings."""

from __future__ import annotations

import asyncio

import pytest

from probe import campaigns, dispatch, execute, models, report
from probe.report_text import answer_warnings, markdown
from probe.spec import DEFAULT_BASELINES, CampaignSpec, ModelSpec
from probe.store import Store


def asked(spec: ModelSpec, logprobs: bool = True) -> dict:
    return models.call_params(spec, seed=7, max_tokens=1, logprobs=logprobs)


@pytest.mark.parametrize("model_id, temperature, dropped", [
    ("openai/gpt-4o-mini", 1.0, []),
    ("sim/uniform", 1.0, []),
    ("local/smollm2-135m", 1.0, []),
    ("perplexity/test", 1.0, ["seed", "logprobs", "top_logprobs"]),
    ("cerebras/test", 1.0, ["logprobs", "top_logprobs"]),
    ("nscale/test", 1.0, ["seed"]),
    ("anthropic/claude-3-5-sonnet-20240620", 0.0, ["seed", "logprobs", "top_logprobs"]),
    ("gemini/gemini-1.5-flash", 1.0, ["top_logprobs"]),  # logprobs goes, as responseLogprobs
    ("mistral/mistral-small", 1.0, ["logprobs", "top_logprobs"]),  # seed goes, renamed random_seed
    ("openai/o1", 0.5, ["temperature", "logprobs", "top_logprobs"]),  # o-series take temperature 1 only
    ("openai/o1", 1.0, ["logprobs", "top_logprobs"]),
])
def test_dropped_params_follow_litellm(model_id, temperature, dropped):
    spec = ModelSpec(id=model_id, temperature=temperature)
    assert models.dropped_params(spec, asked(spec)) == dropped


def test_stored_params_hold_only_what_was_sent():
    p = execute.sent_params(ModelSpec(id="perplexity/test", api_base="http://127.0.0.1:9/v1"), asked(
        ModelSpec(id="perplexity/test")))
    assert p == {"model": "perplexity/test", "api_base": "http://127.0.0.1:9/v1", "temperature": 1.0, "max_tokens": 1,
                 "seed": None, "logprobs": False, "top_logprobs": None, "sent": ["temperature", "max_tokens"],
                 "dropped": ["seed", "logprobs", "top_logprobs"]}
    spec = ModelSpec(id="openai/gpt-4o-mini", top_logprobs=0)
    p = execute.sent_params(spec, asked(spec))
    assert p["seed"] == 7 and p["logprobs"] is True and p["top_logprobs"] == 1  # at least 1 is what acall sends
    assert p["dropped"] == [] and p["sent"] == ["temperature", "max_tokens", "seed", "logprobs", "top_logprobs"]
    p = execute.sent_params(spec, asked(spec, logprobs=False))
    assert p["logprobs"] is False and p["top_logprobs"] is None and "logprobs" not in p["sent"]


def test_a_logprobs_answer_without_logprobs_is_read_as_text_and_flagged(tmp_path, monkeypatch):
    store = Store(f"sqlite:///{tmp_path / 'f.db'}")
    spec = CampaignSpec(models=[ModelSpec(id="sim/uniform")], surveys=["acs2019"], samples=2,
                        answer_mode="logprobs", baselines=["uniform"])
    cid, _ = campaigns.create(store, spec, "embedded")
    item = next(it for it in store.items(store.keys(cid)) if it.item_id == "SEX")

    async def no_logprobs(*a, **k):  # the provider answered, but with no logprobs at all
        return models.Completion(text="B", top_logprobs=None, finish_reason="stop")

    monkeypatch.setattr(models, "acall", no_logprobs)
    r = asyncio.run(execute._one(execute.context(store, cid), item))
    lab = r["labels"][0]
    assert lab["labeller_version"] == "text" and lab["label"] == "answered" and lab["letter_mass"] is None
    assert r["response"]["params"]["text_fallback"] == "the response had no logprobs"
    assert r["response"]["params"]["logprobs"] is True and r["response"]["params"]["dropped"] == []
    store.save_results([r])
    monkeypatch.undo()
    dispatch.run_embedded(store, cid, 8)
    sm = report.build(store, cid)["models"]["sim/uniform"]["surveys"]["acs2019"]["summary"]
    assert sm["answer_modes"] == {"logprobs": 49, "exact": 0, "text": 1}
    assert sm["fallback_to_text"] == 1 and sm["dropped_params"] == {}
    assert answer_warnings(sm) == [
        "logprobs fell back to text: 1 of 50 answers were asked in logprobs mode but read from the generated text "
        "(1 responses had none); each counts as one answer, not first-token probabilities."]


def test_no_warning_when_answers_were_read_as_asked():
    sm = {"n_answers": 10, "fallback_to_text": 0, "dropped_params": {}}
    assert answer_warnings(sm) == []
    sm = {"n_answers": 10, "fallback_to_text": 10, "dropped_params": {"logprobs": 10, "top_logprobs": 10, "seed": 10}}
    assert answer_warnings(sm) == [
        "logprobs fell back to text: 10 of 10 answers were asked in logprobs mode but read from the generated text "
        "(LiteLLM dropped logprobs for this provider on 10); each counts as one answer, not first-token probabilities.",
        "LiteLLM dropped parameters the provider does not take, so they were never sent: seed (10 answers); without a "
        "seed the answers cannot be reproduced by seed."]


def test_reason_kind_groups_letter_mass_values():
    assert report.reason_kind("letter mass 0.06 < 0.1") == "letter mass < 0.1"
    assert report.reason_kind("letter mass 1.2e-05 < 0.1") == "letter mass < 0.1"
    assert report.reason_kind("no option letter in the top-k") == "no option letter in the top-k"
    assert report.reason_kind(None) == "no reason stored"


def test_default_baselines_include_the_us_population():
    assert DEFAULT_BASELINES == ("uniform", "us_2019")
    assert CampaignSpec(models=[ModelSpec(id="sim/uniform")], surveys=["acs2019"]).baselines == ["uniform", "us_2019"]


@pytest.fixture(scope="module")
def sim_campaign(tmp_path_factory):
    """A default-spec campaign on acs2019 and on a questionnaire us_2019 does not fit."""
    tmp = tmp_path_factory.mktemp("keys")
    other = tmp / "pets.yaml"
    other.write_text('name: pets\nquestions:\n  - id: PETS\n    text: "Do you have pets?"\n    options:\n'
                     '      - {code: 1, text: "Yes"}\n      - {code: 2, text: "No"}\n')
    store = Store(f"sqlite:///{tmp / 'k.db'}")
    spec = CampaignSpec(models=[ModelSpec(id="sim/a_bias=0.2,prefer=seed:3")], surveys=["acs2019", str(other)],
                        samples=3, seed=2, answer_mode="logprobs")
    cid, _ = campaigns.create(store, spec, "embedded")
    dispatch.run_embedded(store, cid, 16)
    return store, cid


def test_report_keys_and_default_baselines(sim_campaign):
    store, cid = sim_campaign
    rep = report.build(store, cid, n_boot=50)
    assert set(rep["baselines"]) == {"uniform", "us_2019"}
    m = rep["models"]["sim/a_bias=0.2,prefer=seed:3"]
    acs, pets = m["surveys"]["acs2019"], m["surveys"]["pets"]
    for q in acs["questions"].values():
        assert set(q["kl_to_baseline"]) == {"uniform", "us_2019"}
        assert q["letter_mass"] == pytest.approx(1.0) and q["invalid_reasons"] == {}
    assert [r["population"] for r in acs["analysis"]["ranking"]].count("us_2019") == 1
    sm = acs["summary"]
    assert set(sm["mean_kl_to_baseline"]) == {"uniform", "us_2019"}
    assert sm["mean_letter_mass"] == pytest.approx(1.0) and sm["invalid_reasons"] == {}
    assert sm["answer_modes"] == {"logprobs": 75, "exact": 0, "text": 0}
    assert sm["fallback_to_text"] == 0 and sm["dropped_params"] == {}
    # us_2019 is for acs2019: left out of the other survey when it is only the default, an error when asked for
    assert set(pets["summary"]["mean_kl_to_baseline"]) == {"uniform"}
    assert set(pets["questions"]["PETS"]["kl_to_baseline"]) == {"uniform"}
    from probe.errors import DataFileError

    with pytest.raises(DataFileError):
        report.build(store, cid, ["uniform", "us_2019"], n_boot=50)
    # an explicit choice still overrides the default
    only = report.build(store, cid, ["uniform"], n_boot=50)
    assert set(only["baselines"]) == {"uniform"}
    md = markdown(rep)
    assert "| question | n | invalid | letter mass | A-bias | norm. entropy | KL to uniform | KL to us_2019 |" in md
    assert "| SEX | 3 | 0 | 1.000 |" in md and "mean letter mass 1.000" in md
