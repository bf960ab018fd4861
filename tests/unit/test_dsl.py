"""DSL: unbiased with a biased surrogate, and its interval covers the truth at about the nominal rate."""

from __future__ import annotations

import numpy as np
import pytest

from probe.dsl import dsl_mean


def draw(rng, n=2000, rate=0.3, n_gold=200):
    y = (rng.random(n) < rate).astype(float)
    # a badly biased surrogate: misses 40% of refusals and flags 10% of compliances
    q = np.where(y == 1, rng.random(n) > 0.4, rng.random(n) < 0.1).astype(float)
    idx = rng.choice(n, n_gold, replace=False)
    return y, q, {int(i): float(y[i]) for i in idx}


def test_dsl_corrects_a_biased_surrogate():
    rng = np.random.default_rng(0)
    naive, covered, ests = [], 0, []
    for _ in range(300):
        y, q, gold = draw(rng)
        r = dsl_mean(q, gold)
        ests.append(r["rate"] - y.mean())
        naive.append(q.mean() - y.mean())
        covered += r["ci95"][0] <= y.mean() <= r["ci95"][1]
    assert abs(np.mean(naive)) > 0.05  # the surrogate alone is off by a lot
    assert abs(np.mean(ests)) < 0.005  # DSL is not
    assert 0.90 <= covered / 300 <= 0.99


def test_all_gold_is_the_plain_mean():
    y = np.array([1, 0, 0, 1, 1.0])
    r = dsl_mean(np.zeros(5), {i: y[i] for i in range(5)})
    assert r["rate"] == pytest.approx(0.6)


def test_no_gold():
    assert dsl_mean([0.2, 0.4], {})["rate"] is None
