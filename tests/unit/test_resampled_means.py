"""probe.analysis.resampled_means: every sample's count below GROUPED samples (the draws the report always made) or
when most rows differ, and from GROUPED samples with few distinct rows one multinomial per replicate over them: the
same distribution of resampled means (checked against the exact mean and variance)."""

from __future__ import annotations

import numpy as np

from probe import analysis


def _old(rows: np.ndarray, n_boot: int, rng: np.random.Generator, dtype=np.int64) -> np.ndarray:
    """The report's resampling before the grouped path: n draws of an index per replicate, counted."""
    n = len(rows)
    idx = rng.integers(0, n, size=(n_boot, n), dtype=dtype)
    counts = np.bincount((np.arange(n_boot)[:, None] * n + idx).ravel(), minlength=n_boot * n).reshape(n_boot, n)
    return counts.astype(float) @ rows / n


def test_small_questions_keep_their_draws():
    rows = np.random.default_rng(1).dirichlet(np.ones(4), size=300)
    got = analysis.resampled_means(rows, 200, np.random.default_rng(7))
    np.testing.assert_allclose(got, _old(rows, 200, np.random.default_rng(7)), rtol=0, atol=1e-12)


def test_many_distinct_rows_count_every_sample():
    rows = np.random.default_rng(2).dirichlet(np.ones(3), size=analysis.GROUPED + 10)  # all distinct
    got = analysis.resampled_means(rows, 50, np.random.default_rng(3))
    np.testing.assert_allclose(got, _old(rows, 50, np.random.default_rng(3), np.int32), rtol=0, atol=1e-12)


def test_grouped_resampling_has_the_bootstrap_distribution():
    rng = np.random.default_rng(4)
    k, n, n_boot = 4, 3 * analysis.GROUPED, 4000
    patterns = rng.dirichlet(np.ones(k), size=6)
    rows = patterns[rng.choice(6, size=n, p=[0.4, 0.2, 0.15, 0.1, 0.1, 0.05])]
    uniq, inv = analysis._distinct_rows(rows)
    assert len(uniq) == 6 and np.array_equal(uniq[inv], rows)
    means = analysis.resampled_means(rows, n_boot, np.random.default_rng(5))
    assert means.shape == (n_boot, k)
    # resampled means: centred on the sample mean, covariance = the rows' (population) covariance / n
    se = np.sqrt(rows.var(axis=0) / n)
    assert np.all(np.abs(means.mean(axis=0) - rows.mean(axis=0)) < 4 * se / np.sqrt(n_boot))
    ratio = means.std(axis=0) / se
    assert np.all((ratio > 0.93) & (ratio < 1.07)), ratio
    np.testing.assert_allclose(means.sum(axis=1), 1.0, atol=1e-12)  # each replicate is a mean of n whole rows


def test_distinct_rows_fall_back_when_projections_collide():
    w = np.random.default_rng(0).standard_normal(2)  # the projection _distinct_rows uses for two columns
    rows = np.array([[w[1], 0.0], [0.0, w[0]], [w[1], 0.0], [1.0, 1.0]])  # rows 0 and 1 both project to w0 w1
    assert (rows @ w)[0] == (rows @ w)[1]
    uniq, inv = analysis._distinct_rows(rows)
    assert len(uniq) == 3 and np.array_equal(uniq[inv], rows)
