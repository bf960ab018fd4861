"""probe.analysis on hand-made sample matrices: hand-computed values, intervals, "no baseline"."""

from __future__ import annotations

import math

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


def jackknife(f, x: np.ndarray) -> float:
    """Jackknife bias-corrected f(mean of rows), by hand: n f(all) - (n - 1) mean_j f(all but row j)."""
    n = len(x)
    return n * f(x.mean(axis=0)) - (n - 1) * np.mean([f(np.delete(x, j, axis=0).mean(axis=0)) for j in range(n)])


@pytest.fixture(scope="module")
def result():
    samples = {"QONE": analysis.QuestionSamples(Q1, X1, L1), "QTWO": analysis.QuestionSamples(Q2, X2)}
    return analysis.analyze_survey(samples, POPS, n_boot=500, seed=1)


def test_per_question_values_match_hand_computation(result):
    per_q, _ = result
    one, two = per_q["QONE"], per_q["QTWO"]
    kl_u1 = 0.75 * math.log2(1.5) + 0.25 * math.log2(0.5)  # plug-in KL((0.75, 0.25) || uniform)
    # KL is jackknife bias-corrected: 4 * plug-in - 3 * mean over the leave-one-out samples (2/3, 1/3) x 3, (1, 0),
    # here below 0 (four answers say little), so floored at 0
    loo = (3 * (2 / 3 * math.log2(4 / 3) + 1 / 3 * math.log2(2 / 3)) + 1.0) / 4
    assert 4 * kl_u1 - 3 * loo < 0 and one["vs_baseline"]["uniform"]["kl"] == 0.0
    assert one["vs_baseline"]["uniform"]["tv"] == pytest.approx(0.25)  # TV stays plug-in
    assert one["vs_baseline"]["uniform"]["wasserstein"] is None  # not an ordered question
    kl_a = jackknife(lambda m: metrics.kl_divergence(m, [0.8, 0.2]), X1)
    assert one["vs_baseline"]["pop_a"]["kl"] == pytest.approx(max(kl_a, 0.0))
    # closer than uniform compares plug-in KLs (their bias is the same): 0.011 < 0.189
    assert one["vs_baseline"]["pop_a"]["closer_than_uniform"] is True
    assert one["vs_baseline"]["pop_a"]["shares"] == {"QONE option 1": pytest.approx(0.8), "QONE option 2": pytest.approx(0.2)}
    # chi-square on counts = column sums of the sample matrix: (3, 1) against (2, 2)
    chi = one["chi2_uniform"]
    assert chi["statistic"] == pytest.approx(1.0) and chi["df"] == 1
    assert chi["p_value"] == pytest.approx(stats.chi2.sf(1.0, 1))
    assert chi["counts"] == {"QONE option 1": 3.0, "QONE option 2": 1.0}
    assert one["modal_answer"] == "QONE option 1" and one["modal_share"] == pytest.approx(0.75)

    b = two["vs_baseline"]["pop_b"]
    # two logprobs rows, leave-one-out = each row alone: 2 * 0.25 - (0.5 + 1.0) / 2 < 0, floored
    assert metrics.kl_divergence(X2.mean(axis=0), [0.5, 0.25, 0.25]) == pytest.approx(0.25)
    assert b["kl"] == 0.0
    assert b["tv"] == pytest.approx(0.25)
    assert b["wasserstein"] == pytest.approx(0.25)  # |CDF diff| = (0.25, 0)
    assert b["closer_than_uniform"] is False  # plug-in KL to uniform is log2(3) - 1.5 = 0.085 < 0.25
    ku2 = jackknife(lambda m: metrics.kl_divergence(m, np.full(3, 1 / 3)), X2)
    assert two["vs_baseline"]["uniform"]["kl"] == pytest.approx(max(ku2, 0.0))
    assert two["chi2_uniform"]["counts"] == {"QTWO option 1": 0.5, "QTWO option 2": 1.0, "QTWO option 3": 0.5}
    # ties split the vote: (0.5, 0.5, 0) and (0, 0.5, 0.5) -> option 2 holds half the votes
    assert two["modal_answer"] == "QTWO option 2" and two["modal_share"] == pytest.approx(0.5)
    assert two["a_bias_ci95"] is None  # no position matrix given


def test_bias_correction_matches_miller_madow():
    """For n text answers over m options the jackknife correction of KL is close to Miller-Madow's
    (m - 1) / (2 n ln 2) bits, the same for every population; the plug-in is that much too high."""
    q = question("QFOUR", 4)
    x = _draw(400, 11)
    pops = {"a": {"QFOUR": np.array([0.25, 0.25, 0.25, 0.25])}, "b": {"QFOUR": np.array([0.4, 0.3, 0.2, 0.1])}}
    per_q, _ = analysis.analyze_survey({"QFOUR": analysis.QuestionSamples(q, x)}, pops, n_boot=100)
    mm = 3 / (2 * 400 * math.log(2))
    for p, vecs in pops.items():
        plug_in = metrics.kl_divergence(x.mean(axis=0), vecs["QFOUR"])
        assert plug_in - per_q["QFOUR"]["vs_baseline"][p]["kl"] == pytest.approx(mm, rel=0.02)


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
    kl = lambda q: (lambda m: metrics.kl_divergence(m, q))  # noqa: E731
    kl_u = [jackknife(kl([0.5, 0.5]), X1), jackknife(kl(np.full(3, 1 / 3)), X2)]  # bias-corrected, here < 0
    assert s["n_questions"] == 2
    assert s["kl_to_uniform"]["estimate"] == max(0.0, np.mean(kl_u)) == 0.0  # a mean of corrected values, floored
    ent = [jackknife(metrics.normalized_entropy, X1), jackknife(metrics.normalized_entropy, X2)]
    assert s["normalized_entropy"]["estimate"] == pytest.approx(min(1.0, np.mean(ent)))
    assert s["modal_share"]["estimate"] == pytest.approx((0.75 + 0.5) / 2)
    assert s["a_bias"] == {"estimate": pytest.approx(0.25), "ci95": s["a_bias"]["ci95"], "n_questions": 1}
    pa = s["populations"]["pop_a"]
    assert pa["closer_than_uniform"]["estimate"] == 1.0
    assert s["populations"]["pop_b"]["closer_than_uniform"]["estimate"] == 0.0
    assert s["populations"]["uniform"]["closer_than_uniform"] is None
    assert pa["population_normalized_entropy"] == pytest.approx(metrics.normalized_entropy([0.8, 0.2]))
    assert pa["model_normalized_entropy"]["estimate"] == pytest.approx(min(1.0, ent[0]))  # on pop_a's questions only
    # ranking by bias-corrected mean KL over each population's own questions (4 and 2 samples: all below 0 before
    # the floor, so shown as 0): pop_a (-0.35), uniform (-0.30), pop_b (-0.25); gaps between the unfloored means
    raw = {"pop_a": jackknife(kl([0.8, 0.2]), X1), "uniform": np.mean(kl_u), "pop_b": jackknife(kl([0.5, 0.25, 0.25]), X2)}
    r = s["ranking"]
    assert [x["population"] for x in r] == ["pop_a", "uniform", "pop_b"] == sorted(raw, key=raw.get)
    assert [x["n_questions"] for x in r] == [1, 2, 1]
    assert r[1]["reference"] is True and r[0]["reference"] is False
    assert [x["mean_kl"] for x in r] == [0.0, 0.0, 0.0]
    assert r[0]["gap_to_next"]["estimate"] == pytest.approx(raw["uniform"] - raw["pop_a"])
    assert r[1]["gap_to_next"]["estimate"] == pytest.approx(raw["pop_b"] - raw["uniform"])
    assert r[-1]["gap_to_next"] is None
    assert s["ranking_common_questions"] == 0 and r[0]["mean_kl_common"] is None


def test_intervals_are_ordered_and_within_range(result):
    """lo <= hi, and inside the statistic's range (KL, TV, Wasserstein >= 0; TV, entropy, shares <= 1). Whether
    they contain the true value is tests/unit/test_interval_coverage.py's job."""
    per_q, s = result
    for q in per_q.values():
        for pop in q["vs_baseline"].values():
            if pop is None:
                continue
            for key in ("kl", "tv", "wasserstein"):
                if pop[key] is not None:
                    lo, hi = pop[f"{key}_ci95"]
                    assert 0 <= lo <= hi and (key != "tv" or hi <= 1), key
        for key in ("normalized_entropy_ci95", "modal_share_ci95"):
            assert 0 <= q[key][0] <= q[key][1] <= 1
    for key in ("a_bias", "normalized_entropy", "kl_to_uniform", "modal_share"):
        lo, hi = s[key]["ci95"]
        assert lo <= hi, key
    for r in s["ranking"]:
        assert 0 <= r["ci95"][0] <= r["ci95"][1]


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
    """Where KL's bias is small next to its spread, the analysis's interval (replicates centred on the jackknife
    bias-corrected estimate, BCa) agrees with metrics.bootstrap_ci's BCa on the plug-in replicates, which corrects
    the same bias through z0, up to resampling noise."""
    q = question("QFOUR", 4)
    x = _draw(300, 7)
    pop = np.array([0.25, 0.35, 0.25, 0.15])
    per_q, _ = analysis.analyze_survey({"QFOUR": analysis.QuestionSamples(q, x)}, {"p": {"QFOUR": pop}}, n_boot=2000)
    got = per_q["QFOUR"]["vs_baseline"]["p"]
    est, lo, hi = metrics.bootstrap_ci(x, lambda m: metrics.kl_divergence(m, pop), n_boot=4000, vectorized=True)
    assert est == pytest.approx(metrics.kl_divergence(x.mean(axis=0), pop))
    assert got["kl"] == pytest.approx(jackknife(lambda m: metrics.kl_divergence(m, pop), x))
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


def test_kl_at_zero():
    """KL to the sample's own distribution: the plug-in is 0 and every resample lies above it (plug-in bias), so
    BCa on the plug-in replicates (metrics.bootstrap_ci) degenerates to a sliver at their minimum. The analysis
    centres the replicates on the bias-corrected estimate (floored at 0): the interval starts at 0 and reaches
    about the size of the bias, (m - 1) / (2 n ln 2) bits."""
    x = _draw(200, 3)
    pop = {"p": {"QFOUR": x.mean(axis=0)}}
    per_q, s = analysis.analyze_survey({"QFOUR": analysis.QuestionSamples(question("QFOUR", 4), x)}, pop, n_boot=300)
    v = per_q["QFOUR"]["vs_baseline"]["p"]
    assert v["kl"] == 0.0 and v["kl_ci95"][0] == 0.0
    mm = 3 / (2 * 200 * math.log(2))
    assert 0.5 * mm < v["kl_ci95"][1] < 4 * mm
    _, lo, hi = metrics.bootstrap_ci(x, lambda m: metrics.kl_divergence(m, pop["p"]["QFOUR"]), n_boot=300, vectorized=True)
    assert 0 < lo <= hi < 0.1 * mm
