"""Property tests for probe.metrics against scipy, and known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from probe import metrics

TOL = 1e-9


@st.composite
def prob_vectors(draw, k=None, min_k=2, max_k=12, allow_zeros=True):
    k = k or draw(st.integers(min_k, max_k))
    lo = 0.0 if allow_zeros else 1e-3
    raw = draw(st.lists(st.floats(lo, 1.0, allow_nan=False), min_size=k, max_size=k))
    a = np.asarray(raw)
    if a.sum() <= 0:
        a[0] = 1.0
    return a / a.sum()


@st.composite
def prob_pairs(draw, allow_zeros_q=False):
    k = draw(st.integers(2, 12))
    return draw(prob_vectors(k=k)), draw(prob_vectors(k=k, allow_zeros=allow_zeros_q))


@given(prob_vectors())
def test_entropy_matches_scipy(p):
    assert metrics.entropy(p) == pytest.approx(stats.entropy(p, base=2), abs=TOL)
    assert metrics.entropy(p, base=math.e) == pytest.approx(stats.entropy(p), abs=TOL)


@given(prob_vectors())
def test_normalized_entropy_in_unit_interval(p):
    h = metrics.normalized_entropy(p)
    assert -TOL <= h <= 1 + TOL
    assert h == pytest.approx(stats.entropy(p, base=2) / math.log2(len(p)), abs=TOL)


def test_normalized_entropy_extremes():
    assert metrics.normalized_entropy([0.25] * 4) == pytest.approx(1.0)
    assert metrics.normalized_entropy([1, 0, 0]) == 0.0
    assert metrics.normalized_entropy([1.0]) == 0.0


@given(prob_pairs())
def test_kl_matches_rel_entr_when_q_positive(pq):
    p, q = pq
    expected = special.rel_entr(p, q).sum() / math.log(2)
    assert metrics.kl_divergence(p, q) == pytest.approx(expected, abs=TOL)
    assert metrics.kl_divergence(p, q, base=math.e) == pytest.approx(stats.entropy(p, q), abs=TOL)
    assert metrics.kl_divergence(p, q) >= 0


@given(prob_vectors())
def test_kl_to_uniform_is_log_k_minus_entropy(p):
    k = len(p)
    assert metrics.kl_to_uniform(p) == pytest.approx(math.log2(k) - stats.entropy(p, base=2), abs=TOL)
    assert metrics.kl_to_uniform(p) == pytest.approx(
        (1 - metrics.normalized_entropy(p)) * math.log2(k), abs=TOL
    )


def test_kl_zero_handling():
    # p_i = 0 terms contribute nothing, even where q_i = 0 too
    assert metrics.kl_divergence([0.5, 0.5, 0.0], [0.5, 0.5, 0.0]) == pytest.approx(0.0, abs=TOL)
    assert metrics.kl_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(1.0, abs=TOL)
    # q_i = 0 where p_i > 0: finite and large (q smoothed with KL_EPSILON), not inf as scipy gives
    assert np.isinf(stats.entropy([0.5, 0.5], [1.0, 0.0]))
    d = metrics.kl_divergence([0.5, 0.5], [1.0, 0.0])
    eps = metrics.KL_EPSILON
    q = np.array([1 + eps, eps]) / (1 + 2 * eps)
    assert np.isfinite(d) and d > 10
    assert d == pytest.approx(special.rel_entr([0.5, 0.5], q).sum() / math.log(2), rel=1e-12)


def test_kl_renormalises_and_checks_lengths():
    assert metrics.kl_divergence([2, 2], [1, 1]) == pytest.approx(0.0, abs=TOL)
    with pytest.raises(ValueError):
        metrics.kl_divergence([0.5, 0.5], [0.2, 0.3, 0.5])
    with pytest.raises(ValueError):
        metrics.entropy([-0.1, 1.1])


@given(prob_pairs(allow_zeros_q=True))
def test_total_variation(pq):
    p, q = pq
    tv = metrics.total_variation(p, q)
    assert tv == pytest.approx(0.5 * np.abs(p - q).sum(), abs=TOL)
    assert -TOL <= tv <= 1 + TOL
    assert metrics.total_variation(p, p) == pytest.approx(0.0, abs=TOL)


@given(prob_pairs(allow_zeros_q=True))
def test_wasserstein_matches_scipy(pq):
    p, q = pq
    k = len(p)
    expected = stats.wasserstein_distance(range(k), range(k), p, q)
    assert metrics.wasserstein_ordinal(p, q) == pytest.approx(expected, abs=TOL)


def test_wasserstein_extremes():
    assert metrics.wasserstein_ordinal([1, 0, 0, 0], [0, 0, 0, 1]) == pytest.approx(3.0)


def test_batch_rows_match_single():
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(5), size=7)
    q = rng.dirichlet(np.ones(5))
    for f in (metrics.entropy, metrics.normalized_entropy, metrics.kl_to_uniform):
        np.testing.assert_allclose(f(P), [f(row) for row in P], atol=TOL)
    for f in (metrics.kl_divergence, metrics.total_variation, metrics.wasserstein_ordinal):
        np.testing.assert_allclose(f(P, q), [f(row, q) for row in P], atol=TOL)


def test_chi_square_uniform():
    stat, p = metrics.chi_square_uniform([10, 20, 30])
    ref = stats.chisquare([10, 20, 30])
    assert stat == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    assert metrics.chi_square_uniform([5, 5, 5, 5]) == pytest.approx((0.0, 1.0))
    assert metrics.chi_square_uniform([0, 0]) == (0.0, 1.0)


def test_position_bias():
    assert metrics.position_bias([0.5, 0.3, 0.2]) == pytest.approx(0.5 - 1 / 3)
    assert metrics.position_bias({"B": 0.25, "A": 0.25, "D": 0.25, "C": 0.25}) == pytest.approx(0.0)
    assert metrics.position_bias({"A": 1.0, "B": 0.0}) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "successes,n,lo,hi",
    [  # Wilson 95% intervals, from the closed form (Newcombe 1998, Table I; Agresti & Coull 1998)
        (0, 10, 0.0, 0.2775),
        (1, 10, 0.0179, 0.4042),
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
        (81, 263, 0.2553, 0.3662),  # Newcombe's example 81/263
        (15, 148, 0.0624, 0.1605),  # Newcombe's example 15/148
    ],
)
def test_wilson_known_values(successes, n, lo, hi):
    got = metrics.wilson_interval(successes, n)
    assert got == pytest.approx((lo, hi), abs=1e-4)


def test_wilson_edge_cases():
    assert metrics.wilson_interval(0, 0) == (0.0, 1.0)
    lo90, hi90 = metrics.wilson_interval(5, 10, alpha=0.10)
    lo95, hi95 = metrics.wilson_interval(5, 10)
    assert lo95 < lo90 < 0.5 < hi90 < hi95
    with pytest.raises(ValueError):
        metrics.wilson_interval(11, 10)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(2, 6), st.integers(0, 2**31 - 1))
def test_bootstrap_ci_brackets_estimate_and_is_deterministic(n, k, seed):
    rng = np.random.default_rng(seed)
    x = np.eye(k)[rng.integers(0, k, n)]
    est, lo, hi = metrics.bootstrap_ci(x, metrics.normalized_entropy, n_boot=200, seed=seed)
    assert est == pytest.approx(metrics.normalized_entropy(x.mean(axis=0)))
    assert lo <= hi
    assert (est, lo, hi) == metrics.bootstrap_ci(x, metrics.normalized_entropy, n_boot=200, seed=seed)
    vec = metrics.bootstrap_ci(x, metrics.normalized_entropy, n_boot=200, seed=seed, vectorized=True)
    assert vec == pytest.approx((est, lo, hi), abs=TOL)


def test_bootstrap_ci_coverage_of_a_share():
    # share of option A; 400 draws with p=0.3: the 95% interval is about +-0.045 and contains the truth
    rng = np.random.default_rng(1)
    x = np.eye(2)[(rng.random(400) > 0.3).astype(int)]
    est, lo, hi = metrics.bootstrap_ci(x, lambda m: m[0], n_boot=2000, seed=3)
    assert lo < 0.3 < hi
    assert 0.06 < hi - lo < 0.11
    w_lo, w_hi = metrics.wilson_interval(int(x[:, 0].sum()), 400)
    assert lo == pytest.approx(w_lo, abs=0.01) and hi == pytest.approx(w_hi, abs=0.01)


def test_bootstrap_ci_constant_rows():
    x = np.tile([0.2, 0.8], (30, 1))
    assert metrics.bootstrap_ci(x, lambda m: m[1]) == pytest.approx((0.8, 0.8, 0.8))
