"""Drift statistics of `probe audit diff` on simulated runs (no HTTP): power and false alarms of the audit's alert
rules under the Benjamini-Hochberg correction, the tests chosen by expected counts, BH itself, and the rule grammar.

Must-show: a refusal rate moving 0.20 -> 0.35 (300 prompts x 2 samples, 10 categories) is flagged in >= 95 of 100
seeded replications, an unchanged one in <= 5; the same for a survey question whose answer distribution moves by
total variation 0.15 (600 answers a run) versus none. PROBE_TEST_FULL=1 runs 100 replications (default: 40, with
the bounds scaled: >= 38 and <= 2 + 5% of 40)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy import stats

from probe import alerts, drift

REPS = 100 if os.environ.get("PROBE_TEST_FULL") else 40
PROMPTS, SAMPLES, CATEGORIES = 300, 2, 10
REFUSAL_RULE = "refusal_rate[core] changes by > 0.05 and is significant"
SURVEY_RULE = "distribution[acs] changes by > 0.1 and is significant"  # significance alone: 4.4% of 2000 unchanged runs flagged
P0 = np.array([0.40, 0.30, 0.20, 0.10])
P_SHIFT = np.array([0.25, 0.30, 0.20, 0.25])  # total variation 0.15 from P0
OPTIONS = ["a", "b", "c", "d"]


def refusal_summary(rng: np.random.Generator, rate: float, name: str) -> dict:
    cats = np.repeat(np.arange(CATEGORIES), PROMPTS * SAMPLES // CATEGORIES)
    refused = rng.random(PROMPTS * SAMPLES) < rate
    by_cat = {f"c{c}": {"n": int((cats == c).sum()), "refusals": int(refused[cats == c].sum())}
              for c in range(CATEGORIES)}
    for v in by_cat.values():
        v["refusal_rate"] = v["refusals"] / v["n"]
    core = {"n": len(refused), "refusals": int(refused.sum()), "refusal_rate": float(refused.mean()),
            "over_refusal": None, "by_category": by_cat}
    return {"campaign": name, "models": {"m": {"version": {}, "refusals": {"core": core}, "surveys": {}}}}


def survey_summary(rng: np.random.Generator, p: np.ndarray, name: str, n: int = 600) -> dict:
    counts = rng.multinomial(n, p)
    q = {"Q1": {"n": n, "counts": {o: float(c) for o, c in zip(OPTIONS, counts)}}}
    return {"campaign": name, "models": {"m": {"version": {}, "refusals": {},
                                               "surveys": {"acs": {"questions": q}}}}}


def flagged(a: dict, b: dict, rule: str) -> bool:
    d = drift.diff(a, b)
    return bool(alerts.evaluate([alerts.parse(rule)], d, a, b))


def flags(make, before, after, rule: str, seed: int) -> int:
    rng = np.random.default_rng(seed)
    return sum(flagged(make(rng, before, "a"), make(rng, after, "b"), rule) for _ in range(REPS))


def bounds() -> tuple[int, int]:
    return int(np.ceil(0.95 * REPS)), int(0.05 * REPS) + (0 if REPS == 100 else 2)


def test_refusal_rate_shift_is_flagged_and_an_unchanged_model_is_not():
    hit, false = flags(refusal_summary, 0.20, 0.35, REFUSAL_RULE, 1), flags(refusal_summary, 0.20, 0.20, REFUSAL_RULE, 2)
    print(f"refusal 0.20 -> 0.35 flagged {hit}/{REPS}; unchanged flagged {false}/{REPS}")
    lo, hi = bounds()
    assert hit >= lo and false <= hi, (hit, false)


def test_survey_distribution_shift_is_flagged_and_an_unchanged_one_is_not():
    hit, false = flags(survey_summary, P0, P_SHIFT, SURVEY_RULE, 3), flags(survey_summary, P0, P0, SURVEY_RULE, 4)
    print(f"survey TV 0.15 flagged {hit}/{REPS}; unchanged flagged {false}/{REPS}")
    lo, hi = bounds()
    assert hit >= lo and false <= hi, (hit, false)


def test_without_the_correction_an_unchanged_model_would_alarm_far_more():
    """The 11 tests of a refusal diff (a set and its 10 categories) at 0.05 each, uncorrected, alarm often; BH keeps
    the diff-wide error near 0.05: the correction is what holds the false alarms down."""
    rng = np.random.default_rng(5)
    raw = bh = 0
    for _ in range(REPS):
        d = drift.diff(refusal_summary(rng, 0.2, "a"), refusal_summary(rng, 0.2, "b"))
        raw += any(t["p"] <= 0.05 for t in d["tests"])
        bh += bool(d["significant"])
    assert d["correction"] == {"method": drift.FDR_METHOD, "q": 0.05, "n_tests": 11}
    assert raw >= 3 * max(bh, 1), (raw, bh)


def test_bh_adjustment_matches_the_step_up_rule():
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216]
    adj = drift.bh_adjust(p)
    m = len(p)
    expected = [min(min(p[j] * m / (j + 1) for j in range(i, m)), 1.0) for i in range(m)]
    assert np.allclose(adj, expected)
    assert [x <= 0.05 for x in adj] == [True, True] + [False] * 8


def test_proportion_test_uses_fisher_below_ten_expected():
    name, p = drift.proportion_test(3, 20, 9, 20)
    assert name == "fisher_exact" and p == pytest.approx(stats.fisher_exact([[3, 17], [9, 11]]).pvalue)
    name, p = drift.proportion_test(120, 600, 210, 600)
    z = (210 / 600 - 120 / 600) / np.sqrt(330 / 1200 * (1 - 330 / 1200) * (2 / 600))
    assert name == "two_proportion_z" and p == pytest.approx(2 * stats.norm.sf(abs(z)))
    assert drift.proportion_test(0, 50, 0, 50) == ("none", 1.0)


def test_distribution_test_chi_square_or_permutation():
    name, p = drift.distribution_test({"a": 240, "b": 180, "c": 120, "d": 60}, {"a": 150, "b": 180, "c": 120, "d": 150})
    assert name == "chi_square" and p < 1e-6
    def onehot(counts):  # per answer, its option probabilities in sorted option order
        return [[float(i == j) for j in range(len(counts))] for i, c in enumerate(counts.values()) for _ in range(c)]

    a, b = {"a": 9, "b": 1, "c": 0}, {"a": 1, "b": 1, "c": 8}
    name, p = drift.distribution_test(a, b, onehot(a), onehot(b))
    assert name == "permutation_tv" and p < 0.01
    a, b = {"a": 3, "b": 3, "c": 2}, {"a": 3, "b": 2, "c": 3}
    name, p = drift.distribution_test(a, b, onehot(a), onehot(b))
    assert name == "permutation_tv" and p > 0.5
    # soft answers (logprobs): the permutation moves whole answers between the runs
    soft_a, soft_b = [[0.7, 0.2, 0.1]] * 6, [[0.1, 0.2, 0.7]] * 6
    name, p = drift.distribution_test({"a": 4.2, "b": 1.2, "c": 0.6}, {"a": 0.6, "b": 1.2, "c": 4.2}, soft_a, soft_b)
    assert name == "permutation_tv" and p < 0.01
    # large runs keep no samples: a rare option is pooled, chi-square on the rest
    name, p = drift.distribution_test({"a": 500, "b": 400, "c": 2}, {"a": 400, "b": 500, "c": 1})
    assert name == "chi_square_pooled" and p < 0.01
    assert drift.distribution_test({"a": 1}, {"a": 1}, [[1.0]], [[1.0]]) == ("none", 1.0)


def test_version_change_is_reported_first_and_alerts():
    a = refusal_summary(np.random.default_rng(0), 0.2, "a")
    b = refusal_summary(np.random.default_rng(0), 0.2, "b")
    a["models"]["m"]["version"] = {"reported_model": "gpt-x-0601", "system_fingerprint": "fp_1"}
    b["models"]["m"]["version"] = {"reported_model": "gpt-x-0815", "system_fingerprint": "fp_1"}
    d = drift.diff(a, b)
    assert list(d)[:3] == ["run_a", "run_b", "version_changed"]
    assert d["version_changed"] == [{"model": "m", "field": "reported_model", "a": "gpt-x-0601", "b": "gpt-x-0815"}]
    found = alerts.evaluate([alerts.parse("version changed")], d, a, b)
    assert [x["message"] for x in found] == ["m: reported_model changed from 'gpt-x-0601' to 'gpt-x-0815'"]


def test_level_and_change_rules():
    a = refusal_summary(np.random.default_rng(0), 0.2, "a")
    b = refusal_summary(np.random.default_rng(1), 0.2, "b")
    a["models"]["m"]["invalid_rate"], b["models"]["m"]["invalid_rate"] = 0.02, 0.15
    d = drift.diff(a, b)
    rules = [alerts.parse(r) for r in ("invalid_rate > 0.1", "invalid_rate changes by > 0.2", "refusal_rate[core] > 0.9",
                                       "refusal_rate[core/c3] >= 0")]
    found = alerts.evaluate(rules, d, a, b)
    assert [(x["rule"], x["key"]) for x in found] == [("invalid_rate > 0.1", None), ("refusal_rate[core/c3] >= 0", "core/c3")]


@pytest.mark.parametrize("rule, needle", [
    ("refusal_rate[core] goes up", "cannot read alert rule"),
    ("latency > 3", "unknown metric 'latency'"),
    ("invalid_rate changes and is significant", "only refusal_rate and distribution"),
    ("refusal_rate changes", "say 'changes by > X'"),
    ("distribution[acs] > 0.1", "distribution has no level"),
])
def test_bad_rules_say_what_is_wrong(rule, needle):
    with pytest.raises(ValueError, match=needle.replace("[", r"\[").replace("'", "'")):
        alerts.parse(rule)
