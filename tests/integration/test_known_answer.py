"""Known answer: a simulated respondent with a declared A-bias and preference, through the whole pipeline
(plan -> store -> LiteLLM custom provider -> answers -> report), must be recovered by the report."""

from __future__ import annotations

import numpy as np
import pytest

from probe import campaigns, dispatch, questionnaires, report, sim
from probe.spec import CampaignSpec, ModelSpec
from probe.store import Store

MODEL = "sim/a_bias=0.4,prefer=seed:7"
ACS = questionnaires.load("acs2019")


def run(tmp_path, ordering: str, samples: int):
    store = Store(f"sqlite:///{tmp_path / f'{ordering}.db'}")
    spec = CampaignSpec(models=[ModelSpec(id=MODEL)], surveys=["acs2019"], samples=samples, seed=3,
                        ordering=ordering, answer_mode="logprobs", concurrency=32)
    cid, n = campaigns.create(store, spec, "embedded")
    dispatch.run_embedded(store, cid, spec.concurrency, processes=2)
    return report.build(store, cid)["models"][MODEL]["surveys"]["acs2019"]


def truth(q, ordering: str) -> np.ndarray:
    b = sim.parse(MODEL.split("/", 1)[1])
    k = len(q.options)
    w = b.a_bias / (1 - 1 / k)
    pref = np.array(sim.preference(b, q.text, [o.text for o in q.options]))
    if ordering == "random":  # the A slot holds each option 1/k of the time
        return w / k + (1 - w) * pref
    first = np.eye(k)[0]  # fixed: the form's first option always sits at A
    return w * first + (1 - w) * pref


def test_random_ordering_recovers_truth_and_a_bias(tmp_path):
    s = run(tmp_path, "random", 400)
    assert len(s["questions"]) == 25
    for q in ACS.questions:
        got = s["questions"][q.id]
        assert got["n"] == 400 and got["invalid"] == 0
        dist = np.array([got["distribution"][o.text] for o in q.options])
        tv = 0.5 * np.abs(dist - truth(q, "random")).sum()
        assert tv < 0.05, (q.id, tv)
        assert got["a_bias"] == pytest.approx(0.4, abs=0.05), q.id
        assert sum(got["position_shares"].values()) == pytest.approx(1.0)
    assert s["summary"]["mean_a_bias"] == pytest.approx(0.4, abs=0.02)


def test_fixed_ordering_shows_the_bias_in_the_distribution(tmp_path):
    s = run(tmp_path, "fixed", 50)
    for q in ACS.questions:
        got = s["questions"][q.id]
        dist = np.array([got["distribution"][o.text] for o in q.options])
        assert np.abs(dist - truth(q, "fixed")).sum() / 2 < 1e-9, q.id  # exact: no order randomness left
        w = 0.4 / (1 - 1 / len(q.options))
        assert dist[0] >= w  # the first form option absorbs the whole position bias
        # position shares and distribution coincide when nothing is shuffled
        assert got["position_shares"]["A"] == pytest.approx(dist[0])


def test_uniform_respondent_is_uniform(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'u.db'}")
    spec = CampaignSpec(models=[ModelSpec(id="sim/uniform")], surveys=["acs2019"], samples=20, seed=1)
    cid, _ = campaigns.create(store, spec, "embedded")
    dispatch.run_embedded(store, cid, 16)
    s = report.build(store, cid)["models"]["sim/uniform"]["surveys"]["acs2019"]
    for got in s["questions"].values():
        assert got["normalized_entropy"] == pytest.approx(1.0, abs=1e-9)
        assert got["kl_to_uniform"] == pytest.approx(0.0, abs=1e-9)
        assert got["a_bias"] == pytest.approx(0.0, abs=1e-9)
