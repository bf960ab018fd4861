"""Distribution metrics on option-probability vectors (pure numpy/scipy).

A probability vector is a 1-D array over a question's options in questionnaire form order. Functions that
take vectors also accept 2-D arrays and then work row-wise along the last axis (used by `bootstrap_ci`).

Conventions
- Logarithms are base 2 unless `base` says otherwise; `normalized_entropy` is entropy in bits / log2(k),
  so it is 1 for the uniform distribution and 0 for a point mass (k = len(p); k == 1 gives 0).
- Inputs are renormalised to sum to 1 (like scipy.stats.entropy); negative entries are an error.
- `kl_divergence(p, q)` is KL(p || q): the model's distribution p against the population (or uniform) q, as in
  Dominguez-Olmedo et al. Zero handling:
    * terms with p_i == 0 contribute 0 (the 0 log 0 = 0 convention, as scipy.special.rel_entr);
    * where q_i == 0 but p_i > 0 the exact value is infinite. We instead smooth q: q' = (q + eps) / sum(q + eps)
      with eps = KL_EPSILON (1e-10), applied only when q has a zero where p does not, so the value is finite and
      large (about p_i * log2(1/eps) ~ 33 bits per unit of such mass) and comparable across models. When q has
      no such zero the result equals scipy's exactly. (The paper's compute_kl sums p_i log2(p_i/q_i) over p_i > 0
      and so returns inf in that case; its census tables never have an empty option, so the two agree there.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import stats

KL_EPSILON = 1e-10

__all__ = [
    "KL_EPSILON",
    "bootstrap_ci",
    "chi_square_uniform",
    "entropy",
    "kl_divergence",
    "kl_to_uniform",
    "normalized_entropy",
    "position_bias",
    "total_variation",
    "wasserstein_ordinal",
    "wilson_interval",
]


def _prob(p) -> np.ndarray:
    a = np.asarray(p, dtype=float)
    if a.ndim == 0 or a.shape[-1] == 0:
        raise ValueError("a probability vector needs at least one entry")
    if np.any(a < 0) or not np.all(np.isfinite(a)):
        raise ValueError("probabilities must be finite and non-negative")
    s = a.sum(axis=-1, keepdims=True)
    if np.any(s <= 0):
        raise ValueError("probabilities sum to zero")
    return a / s


def _pair(p, q) -> tuple[np.ndarray, np.ndarray]:
    a, b = _prob(p), _prob(q)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"vectors differ in length: {a.shape[-1]} vs {b.shape[-1]}")
    return a, b


def _xlogx_terms(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """p * log(p / q) with 0 where p == 0 (natural log)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = p * np.log(p / q)
    return np.where(p > 0, t, 0.0)


def entropy(p, base: float = 2):
    """Shannon entropy of p (renormalised), in units of `base` (bits by default)."""
    a = _prob(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(a > 0, -a * np.log(a), 0.0)
    h = t.sum(axis=-1) / np.log(base)
    return float(h) if np.ndim(h) == 0 else h


def normalized_entropy(p):
    """Entropy in bits divided by log2(k), k = number of options; in [0, 1]. k == 1 gives 0."""
    a = _prob(p)
    k = a.shape[-1]
    if k == 1:
        return 0.0 if a.ndim == 1 else np.zeros(a.shape[:-1])
    return entropy(a, base=2) / np.log2(k)


def kl_divergence(p, q, base: float = 2):
    """KL(p || q) in units of `base`; p = model distribution, q = population. See the module docstring for zeros."""
    a, b = _pair(p, q)
    a, b = np.broadcast_arrays(a, b)
    needs = np.any((b == 0) & (a > 0), axis=-1, keepdims=True)
    if np.any(needs):
        smoothed = (b + KL_EPSILON) / (b + KL_EPSILON).sum(axis=-1, keepdims=True)
        b = np.where(needs, smoothed, b)
    d = _xlogx_terms(a, b).sum(axis=-1) / np.log(base)
    d = np.maximum(d, 0.0)  # rounding can give -1e-17
    return float(d) if np.ndim(d) == 0 else d


def kl_to_uniform(p, base: float = 2):
    """KL(p || uniform) = log k - H(p); equals 1 - normalized_entropy times log2 k in bits."""
    a = _prob(p)
    return kl_divergence(a, np.full(a.shape[-1], 1.0 / a.shape[-1]), base=base)


def total_variation(p, q):
    """Total variation distance 0.5 * sum |p - q|, in [0, 1]."""
    a, b = _pair(p, q)
    d = 0.5 * np.abs(a - b).sum(axis=-1)
    return float(d) if np.ndim(d) == 0 else d


def wasserstein_ordinal(p, q):
    """1-D Wasserstein distance over option positions 0..k-1: sum_i |CDF_p(i) - CDF_q(i)|.

    Equals scipy.stats.wasserstein_distance(range(k), range(k), p, q); in units of one option step, so the
    maximum is k - 1. Meaningful for ordered options (age, income bins) in form order.
    """
    a, b = _pair(p, q)
    d = np.abs(np.cumsum(a - b, axis=-1)[..., :-1]).sum(axis=-1)
    return float(d) if np.ndim(d) == 0 else d


def chi_square_uniform(counts) -> tuple[float, float]:
    """Pearson chi-square goodness-of-fit of option counts against uniform: (statistic, p_value)."""
    c = np.asarray(counts, dtype=float)
    if c.ndim != 1 or c.size < 2:
        raise ValueError("counts must be a 1-D array with at least two options")
    if c.sum() <= 0:
        return 0.0, 1.0
    res = stats.chisquare(c)
    return float(res.statistic), float(res.pvalue)


def position_bias(position_shares: Sequence[float] | Mapping[str, float]) -> float:
    """A-bias: the share of answers at the first shown position (A) minus 1/k.

    `position_shares` is the share per shown position, in position order (A, B, ...), as a sequence or a mapping
    keyed by letter (sorted). Positive means the model favours whatever option is shown first.
    """
    if isinstance(position_shares, Mapping):
        vals = [position_shares[k] for k in sorted(position_shares)]
    else:
        vals = list(position_shares)
    if not vals:
        raise ValueError("no positions")
    a = np.asarray(vals, dtype=float)
    total = a.sum()
    first = a[0] / total if total > 0 else 0.0
    return float(first - 1.0 / a.size)


def bootstrap_ci(
    samples_matrix,
    statistic: Callable[[np.ndarray], float],
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    vectorized: bool = False,
) -> tuple[float, float, float]:
    """Percentile bootstrap over rows: (estimate, lo, hi).

    Each row of `samples_matrix` is one sample's option-probability vector (a one-hot row for a parsed answer).
    `statistic` maps the mean vector (1-D) to a number; the estimate is statistic(mean of all rows). Resamples
    are drawn at once as multinomial row counts (n_boot x n), so the resampled means are one matrix product.
    With vectorized=True, `statistic` is called once on the (n_boot, k) matrix of means and must return n_boot
    values (the functions in this module work that way along the last axis).
    """
    x = np.asarray(samples_matrix, dtype=float)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError("samples_matrix must be 2-D with at least one row")
    n = x.shape[0]
    estimate = float(statistic(x.mean(axis=0)))
    rng = np.random.default_rng(seed)
    means = np.empty((n_boot, x.shape[1]))
    step = max(1, min(n_boot, 4_000_000 // max(n, 1)))  # bound the (chunk x n) count matrix
    for s in range(0, n_boot, step):
        m = min(step, n_boot - s)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=m)
        means[s : s + m] = counts @ x / n
    if vectorized:
        vals = np.asarray(statistic(means), dtype=float).reshape(n_boot)
    else:
        vals = np.fromiter((statistic(m) for m in means), dtype=float, count=n_boot)
    lo, hi = np.quantile(vals, [alpha / 2, 1 - alpha / 2])
    return estimate, float(lo), float(hi)


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when n == 0."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    if n == 0:
        return 0.0, 1.0
    z = float(stats.norm.ppf(1 - alpha / 2))
    p = successes / n
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))
