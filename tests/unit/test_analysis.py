"""probe.analysis on hand-made sample matrices: hand-computed values, intervals, "no baseline"."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy import stats

from probe import analysis, metrics
from probe.questionnaires import Option, Question


def question(qid: str, k: int, ordered: bool = False) -> Question:
    return Question(id=qid, text=f"Question {qid}?", options=[Option(code=i + 1, text=f"{qid} option {i + 1}")
                                                                for i in range(k)], ordered=ordered)


Q1 = question("QONE", 2)
Q2 = question("QTWO", 3, ordered=True)
X1 = np.array([[1, 0], [1, 0], [0, 1], [1, 0]], dtype=float)  # text answers: mean (0.75, 0.25)
L1 = np.array([[1, 0], [0, 1], [1, 0], [1, 0]], dtype=float)  # three of four answers at position A
X2 = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])  # logprobs answers with ties: mean (0.25, 0.5, 0.25)
POPS = {
    "uniform": {"QONE": np.array([0.5, 0.5]), "QTWO": np.full(3, 1 / 3)},
    "pop_a": {"QONE": np.array([0.8, 0.2]), "QTWO": None},  # no figure for QTWO
    "pop_b": {"QTWO": np.array([0.5, 0.25, 0.25])},  # QONE missing from the mapping: also "no baseline"
    "pop_none": {},  # covers nothing
}


@pytest.fixture(scope="module")
def result():
    samples = {"QONE": analysis.QuestionSamples(Q1, X1, L1), "QTWO": analysis.QuestionSamples(Q2, X2)}
    return analysis.analyze_survey(samples, POPS, n_boot=500, seed=1)


def test_per_question_values_match_hand_computation(result):
    per_q, _ = result
    one, two = per_q["QONE"], per_q["QTWO"]
    kl_u1 = 0.75 * math.log2(1.5) + 0.25 * math.log2(0.5)
    assert one["vs_baseline"]["uniform"]["kl"] == pytest.approx(kl_u1)
    assert one["vs_baseline"]["uniform"]["tv"] == pytest.approx(0.25)
    assert one["vs_baseline"]["uniform"]["wasserstein"] is None  # not an ordered question
    assert one["vs_baseline"]["pop_a"]["kl"] == pytest.approx(0.75 * math.log2(0.75 / 0.8) + 0.25 * math.log2(0.25 / 0.2))
    assert one["vs_baseline"]["pop_a"]["closer_than_uniform"] is True
    assert one["vs_baseline"]["pop_a"]["shares"] == {"QONE option 1": pytest.approx(0.8), "QONE option 2": pytest.approx(0.2)}
    # chi-square on counts = column sums of the sample matrix: (3, 1) against (2, 2)
    chi = one["chi2_uniform"]
    assert chi["statistic"] == pytest.approx(1.0) and chi["df"] == 1
    assert chi["p_value"] == pytest.approx(stats.chi2.sf(1.0, 1))
    assert chi["counts"] == {"QONE option 1": 3.0, "QONE option 2": 1.0}
    assert one["modal_answer"] == "QONE option 1" and one["modal_share"] == pytest.approx(0.75)

    b = two["vs_baseline"]["pop_b"]
    assert b["kl"] == pytest.approx(0.25 * math.log2(0.5) + 0.5 * math.log2(2))
    assert b["tv"] == pytest.approx(0.25)
    assert b["wasserstein"] == pytest.approx(0.25)  # |CDF diff| = (0.25, 0)
    assert b["closer_than_uniform"] is False  # KL to uniform is log2(3) - 1.5 = 0.085 < 0.25
    assert two["vs_baseline"]["uniform"]["kl"] == pytest.approx(math.log2(3) - 1.5)
    assert two["chi2_uniform"]["counts"] == {"QTWO option 1": 0.5, "QTWO option 2": 1.0, "QTWO option 3": 0.5}
    # ties split the vote: (0.5, 0.5, 0) and (0, 0.5, 0.5) -> option 2 holds half the votes
    assert two["modal_answer"] == "QTWO option 2" and two["modal_share"] == pytest.approx(0.5)
    assert two["a_bias_ci95"] is None  # no position matrix given


def test_no_baseline_is_none_never_guessed(result):
    per_q, s = result
    assert per_q["QTWO"]["vs_baseline"]["pop_a"] is None
    assert per_q["QONE"]["vs_baseline"]["pop_b"] is None
    assert per_q["QONE"]["vs_baseline"]["pop_none"] is None
    p = s["populations"]
    assert p["pop_a"]["n_questions"] == 1 and p["pop_a"]["no_baseline"] == ["QTWO"]
    assert p["pop_b"]["no_baseline"] == ["QONE"] and p["pop_b"]["mean_wasserstein"]["n_questions"] == 1
    assert p["pop_a"]["mean_wasserstein"] is None  # its only question is not ordered
    assert p["pop_none"] == {"n_questions": 0, "no_baseline": ["QONE", "QTWO"], "mean_kl": None, "mean_tv": None,
                             "mean_wasserstein": None, "closer_than_uniform": None,
                             "population_normalized_entropy": None, "model_normalized_entropy": None}
    assert "pop_none" not in [r["population"] for r in s["ranking"]]


def test_survey_aggregates(result):
    per_q, s = result
    kl_u = [0.75 * math.log2(1.5) + 0.25 * math.log2(0.5), math.log2(3) - 1.5]
    assert s["n_questions"] == 2
    assert s["kl_to_uniform"]["estimate"] == pytest.approx(np.mean(kl_u))
    ent = [metrics.normalized_entropy([0.75, 0.25]), 1.5 / math.log2(3)]
    assert s["normalized_entropy"]["estimate"] == pytest.approx(np.mean(ent))
    assert s["modal_share"]["estimate"] == pytest.approx((0.75 + 0.5) / 2)
    assert s["a_bias"] == {"estimate": pytest.approx(0.25), "ci95": s["a_bias"]["ci95"], "n_questions": 1}
    pa = s["populations"]["pop_a"]
    assert pa["closer_than_uniform"]["estimate"] == 1.0
    assert s["populations"]["pop_b"]["closer_than_uniform"]["estimate"] == 0.0
    assert s["populations"]["uniform"]["closer_than_uniform"] is None
    assert pa["population_normalized_entropy"] == pytest.approx(metrics.normalized_entropy([0.8, 0.2]))
    assert pa["model_normalized_entropy"]["estimate"] == pytest.approx(ent[0])  # on pop_a's questions only
    # ranking by mean KL over each population's own questions: pop_a (0.011), uniform (0.137), pop_b (0.25)
    r = s["ranking"]
    assert [x["population"] for x in r] == ["pop_a", "uniform", "pop_b"]
    assert [x["n_questions"] for x in r] == [1, 2, 1]
    assert r[1]["reference"] is True and r[0]["reference"] is False
    assert r[1]["mean_kl"] == pytest.approx(np.mean(kl_u))
    assert r[0]["gap_to_next"]["estimate"] == pytest.approx(r[1]["mean_kl"] - r[0]["mean_kl"])
    assert r[-1]["gap_to_next"] is None
    assert s["ranking_common_questions"] == 0 and r[0]["mean_kl_common"] is None


def test_intervals_contain_the_estimate(result):
    per_q, s = result
    for q in per_q.values():
        for pop in q["vs_baseline"].values():
            if pop is None:
                continue
            for key in ("kl", "tv", "wasserstein"):
                if pop[key] is not None:
                    lo, hi = pop[f"{key}_ci95"]
                    assert lo - 1e-12 <= pop[key] <= hi + 1e-12, key
    for key in ("a_bias", "normalized_entropy", "kl_to_uniform", "modal_share"):
        lo, hi = s[key]["ci95"]
        assert lo - 1e-12 <= s[key]["estimate"] <= hi + 1e-12, key
    for r in s["ranking"]:
        assert r["ci95"][0] - 1e-12 <= r["mean_kl"] <= r["ci95"][1] + 1e-12


def _draw(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.eye(4)[rng.choice(4, size=n, p=[0.4, 0.3, 0.2, 0.1])]


def test_intervals_shrink_with_more_samples():
    q = question("QFOUR", 4, ordered=True)
    pop = {"p": {"QFOUR": np.array([0.25, 0.25, 0.25, 0.25])}}
    widths = {}
    for n in (50, 800):
        per_q, s = analysis.analyze_survey({"QFOUR": analysis.QuestionSamples(q, _draw(n, n))}, pop, n_boot=500)
        v = per_q["QFOUR"]["vs_baseline"]["p"]
        widths[n] = {k: v[f"{k}_ci95"][1] - v[f"{k}_ci95"][0] for k in ("kl", "tv", "wasserstein")}
        widths[n]["entropy"] = np.diff(s["normalized_entropy"]["ci95"])[0]
        widths[n]["modal"] = np.diff(s["modal_share"]["ci95"])[0]
    for k in widths[50]:
        assert 0 < widths[800][k] < 0.5 * widths[50][k], k  # about 1/4 for 16 times the samples


def test_agrees_with_metrics_bootstrap_ci():
    """The shared resamples give the same percentile intervals as metrics.bootstrap_ci, up to resampling noise."""
    q = question("QFOUR", 4)
    x = _draw(300, 7)
    pop = np.array([0.25, 0.35, 0.25, 0.15])
    per_q, _ = analysis.analyze_survey({"QFOUR": analysis.QuestionSamples(q, x)}, {"p": {"QFOUR": pop}}, n_boot=2000)
    got = per_q["QFOUR"]["vs_baseline"]["p"]
    est, lo, hi = metrics.bootstrap_ci(x, lambda m: metrics.kl_divergence(m, pop), n_boot=4000, vectorized=True)
    assert got["kl"] == pytest.approx(est)
    assert got["kl_ci95"] == pytest.approx([lo, hi], abs=0.1 * (hi - lo))


def test_question_without_samples():
    per_q, s = analysis.analyze_survey(
        {"QONE": analysis.QuestionSamples(Q1, np.zeros((0, 2))), "QTWO": analysis.QuestionSamples(Q2, X2)},
        POPS, n_boot=100)
    assert per_q["QONE"]["vs_baseline"] == {p: None for p in POPS}
    assert per_q["QONE"]["modal_share"] is None and per_q["QONE"]["chi2_uniform"] is None
    assert s["n_questions"] == 1 and s["populations"]["pop_a"]["n_questions"] == 0
    assert s["a_bias"] is None


def test_deterministic_given_seed():
    samples = {"QONE": analysis.QuestionSamples(Q1, X1, L1)}
    a = analysis.analyze_survey(samples, POPS, n_boot=200, seed=3)
    b = analysis.analyze_survey(samples, POPS, n_boot=200, seed=3)
    assert a == b


def test_state_baselines():
    names = ["uniform", "us_2019", "mine", "mine_06", "mine_36", "x_2019", "other_72"]
    assert analysis.state_baselines(names) == ["mine_06", "mine_36", "other_72"]


def test_fast_enough():
    """25 questions x 4 baselines x 500 resamples of 400 samples: well under the 2 s a report may take."""
    rng = np.random.default_rng(0)
    samples, pops = {}, {f"p{i}": {} for i in range(4)}
    for j in range(25):
        k = 2 + j % 7
        q = question(f"Q{j}", k, ordered=j % 2 == 0)
        samples[q.id] = analysis.QuestionSamples(q, rng.dirichlet(np.ones(k), size=400), rng.dirichlet(np.ones(k), 400))
        for p in pops:
            pops[p][q.id] = rng.dirichlet(np.ones(k))
    t = time.perf_counter()
    analysis.analyze_survey(samples, pops, n_boot=500)
    assert time.perf_counter() - t < 1.0


def test_interval_reaches_an_estimate_at_the_edge():
    """KL to the sample's own distribution is 0 while every resample is above it (plug-in bias): the interval is
    the bootstrap percentile interval widened down to the estimate, not one that excludes it."""
    x = _draw(200, 3)
    pop = {"p": {"QFOUR": x.mean(axis=0)}}
    per_q, s = analysis.analyze_survey({"QFOUR": analysis.QuestionSamples(question("QFOUR", 4), x)}, pop, n_boot=300)
    v = per_q["QFOUR"]["vs_baseline"]["p"]
    assert v["kl"] == pytest.approx(0.0, abs=1e-12) and v["kl_ci95"][0] == pytest.approx(0.0, abs=1e-12)
    _, lo, hi = metrics.bootstrap_ci(x, lambda m: metrics.kl_divergence(m, pop["p"]["QFOUR"]), n_boot=300, vectorized=True)
    assert lo > 0  # the plain percentile interval lies wholly above the estimate
    assert v["kl_ci95"][1] == pytest.approx(hi, rel=0.3)
