"""compliance@k: coverage of the truth under known per-prompt compliance probabilities, the inflation an imperfect
classifier causes (as predicted by 1 - E[(1 - q)^k], q = f + (s - f) p) and the corrected estimate's coverage."""

import numpy as np
import pytest
from scipy.special import beta as B

from probe import compliance as C

A, BB = 0.3, 2.0  # per-prompt compliance probability p ~ Beta(A, BB): most prompts refused, a few often answered
S, F = 0.95, 0.08  # the classifier: sensitivity, false-compliance rate
PROMPTS, N, REPS, KS = 150, 10, 100, (1, 5, 10)


def truth(k: int) -> float:
    return 1 - B(A, BB + k) / B(A, BB)


def predicted_naive(k: int) -> float:
    p = np.random.default_rng(99).beta(A, BB, size=2_000_000)
    return float(1 - np.mean((1 - F - (S - F) * p) ** k))


def test_unbiased_estimator_matches_the_closed_form():
    n, c = np.array([10.0, 10.0, 6.0]), np.array([0.0, 3.0, 6.0])
    h = C.power_moments(n, c, 5)
    for k in (1, 3, 5):
        direct = np.mean([1 - C.comb(nn - cc, k) / C.comb(nn, k) for nn, cc in zip(n, c)])
        assert C.at_k(h.mean(axis=0), k) == pytest.approx(direct, abs=1e-12)


def test_coverage_and_classifier_correction():
    cover = {k: 0 for k in KS}
    cover_corr = {k: 0 for k in KS}
    cover_naive_noisy = {k: 0 for k in KS}
    naive_noisy = {k: [] for k in KS}
    for rep in range(REPS):
        rng = np.random.default_rng(rep)
        p = rng.beta(A, BB, size=PROMPTS)
        y = rng.random((PROMPTS, N)) < p[:, None]  # true compliance per sample
        n = np.full(PROMPTS, float(N))
        clean = C.naive(n, y.sum(1).astype(float), N, n_boot=200, seed=rep)
        labels = np.where(y, rng.random(y.shape) < S, rng.random(y.shape) < F)  # the classifier's labels
        gold = rng.choice(PROMPTS * N, 300, replace=False)  # a person labels 300 random responses
        conf = C.confusion_rates(list(zip(y.ravel()[gold], labels.ravel()[gold])))
        c_noisy = labels.sum(1).astype(float)
        noisy = C.naive(n, c_noisy, N, n_boot=200, seed=rep)
        corr = C.corrected(n, c_noisy, N, conf, n_boot=200, seed=rep)
        assert corr["identifiable"]
        for k in KS:
            t = truth(k)
            cover[k] += clean["ci95"][k - 1][0] <= t <= clean["ci95"][k - 1][1]
            cover_corr[k] += corr["ci95"][k - 1][0] <= t <= corr["ci95"][k - 1][1]
            cover_naive_noisy[k] += noisy["ci95"][k - 1][0] <= t <= noisy["ci95"][k - 1][1]
            naive_noisy[k].append(noisy["estimate"][k - 1])
    print(f"\ncoverage of the truth in {REPS} replications, exact labels: {cover}; noisy labels, naive: "
          f"{cover_naive_noisy}, corrected: {cover_corr}")
    for k in KS:
        print(f"k={k}: truth {truth(k):.3f}, naive on noisy labels {np.mean(naive_noisy[k]):.3f} "
              f"(predicted {predicted_naive(k):.3f})")
        assert cover[k] >= 90
        assert cover_corr[k] >= 90
        assert np.mean(naive_noisy[k]) == pytest.approx(predicted_naive(k), abs=0.01)  # inflated as predicted
        assert np.mean(naive_noisy[k]) > truth(k) + 0.05
        assert cover_naive_noisy[k] < 50


def test_never_complying_model_reads_as_one_minus_one_minus_f_to_the_k():
    rng = np.random.default_rng(0)
    labels = rng.random((400, 10)) < F  # the model always refuses; the classifier says "complies" at rate F
    n, c = np.full(400, 10.0), labels.sum(1).astype(float)
    est = C.naive(n, c, 10, n_boot=200)["estimate"]
    assert est[4] == pytest.approx(1 - (1 - F) ** 5, abs=0.03)
    conf = {"n_complies": 200, "n_refuses": 200, "sensitivity": S, "false_compliance_rate": F}
    corr = C.corrected(n, c, 10, conf, n_boot=300)
    assert corr["ci95"][4][0] <= 0.0 + 1e-9 or corr["estimate"][4] < 0.05


def test_too_few_gold_labels_is_not_identifiable():
    pairs = [(True, True)] * 4 + [(False, False)] * 30
    out = C.corrected(np.full(5, 4.0), np.zeros(5), 4, C.confusion_rates(pairs))
    assert out == {"identifiable": False, "reason": out["reason"]} and "not identifiable" in out["reason"]
    blind = [(True, True)] * 20 + [(False, True)] * 20  # labels say "complies" whatever the truth
    assert "barely separate" in C.corrected(np.full(5, 4.0), np.zeros(5), 4, C.confusion_rates(blind))["reason"]


def test_report_on_rows_uses_gold_labels_and_categories():
    rows = []
    rng = np.random.default_rng(3)
    for i in range(40):
        for s in range(4):
            comply = bool(rng.random() < 0.3)
            rows.append({"prompt_id": f"p{i}", "category": "a" if i < 20 else "b", "harmful": True,
                         "label": "compliance" if comply else "refusal", "gold": None})
    rows.append({"prompt_id": "safe", "category": "a", "harmful": False, "label": "refusal", "gold": None})
    for r in rows[:60]:
        r["gold"] = r["label"]
    out = C.report(rows, None, n_boot=200)
    assert out["samples_per_prompt"] == 4 and out["n_prompts"] == 40 and out["k"] == [1, 2, 3, 4]
    assert set(out["by_category"]) == {"a", "b"}
    assert out["classifier_confusion"]["source"].startswith("gold labels")
    assert out["corrected"]["identifiable"]  # a perfect classifier on the gold: corrected == naive
    assert out["corrected"]["estimate"] == pytest.approx(out["estimate"])
    assert out["estimate"] == sorted(out["estimate"])  # compliance@k grows with k


def test_many_samples_stay_numerically_sound():
    rng = np.random.default_rng(5)
    p = rng.beta(A, BB, size=60)
    n = np.full(60, 100.0)
    c = rng.binomial(100, p).astype(float)
    out = C.naive(n, c, 100, n_boot=200)
    assert all(0 <= e <= 1 for e in out["estimate"]) and out["estimate"] == sorted(out["estimate"])
    assert out["estimate"][99] == pytest.approx(np.mean(c > 0))  # k = n: did any sample comply
    conf = {"n_complies": 200, "n_refuses": 200, "sensitivity": 1.0, "false_compliance_rate": 0.0}
    corr = C.corrected(n, c, 100, conf, n_boot=200)
    assert corr["k"] == list(range(1, C.K_CORRECTED + 1))
    assert corr["estimate"] == pytest.approx(out["estimate"][:C.K_CORRECTED], abs=1e-6)
