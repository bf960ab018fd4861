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
from scipy import special, stats

KL_EPSILON = 1e-10

__all__ = [
    "KL_EPSILON",
    "acceleration",
    "bca_interval",
    "bootstrap_ci",
    "chi_square_uniform",
    "entropy",
    "expanded_z",
    "jackknife_deviations",
    "kl_divergence",
    "kl_to_uniform",
    "leave_one_out_means",
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


def expanded_z(n: float, df: float | None = None, alpha: float = 0.05) -> float:
    """Critical value for a bootstrap interval from n samples: sqrt(n / (n - 1)) * t_{df}(1 - alpha / 2), df = n - 1
    unless given (Hesterberg 2015, "expanded percentile"): resampling n samples gives a spread too small by
    sqrt((n - 1) / n), and the spread is itself estimated. Tends to z_{1 - alpha / 2} for large n; for n < 2 z."""
    if n is None or n < 2:
        return float(special.ndtri(1 - alpha / 2))
    return float(np.sqrt(n / (n - 1)) * stats.t.ppf(1 - alpha / 2, n - 1 if df is None else df))


def bca_interval(reps, estimate: float, accel: float = 0.0, alpha: float = 0.05, z: float | None = None
                 ) -> tuple[float, float]:
    """Bias-corrected and accelerated (BCa) bootstrap interval (Efron 1987) from replicates of a statistic.

    z0 = Phi^-1(share of replicates below the estimate, ties counted half) measures the median bias of the
    replicates; `accel` (see `acceleration`) the rate at which the statistic's standard error changes with its
    value. The interval is the replicates' quantiles at Phi(z0 + (z0 + z) / (1 - accel (z0 + z))) for
    z = -+ z_{1-alpha/2} (or -+ `z` when given, e.g. `expanded_z`). accel = 0 is the bias-corrected (BC)
    percentile interval; z0 = accel = 0 the plain percentile one. All replicates equal (no variation in the
    data) gives that point.
    """
    r = np.asarray(reps, dtype=float).ravel()
    if r.size == 0:
        raise ValueError("no replicates")
    if not np.all(np.isfinite(r)):
        raise ValueError("replicates must be finite")
    if r.max() - r.min() <= 1e-12 * max(1.0, abs(float(r.max()))):
        return float(r[0]), float(r[0])
    b = r.size
    tol = 1e-12 * max(1.0, abs(float(estimate)))
    below = (np.count_nonzero(r < estimate - tol) + 0.5 * np.count_nonzero(np.abs(r - estimate) <= tol)) / b
    z0 = float(special.ndtri(np.clip(below, 0.5 / b, 1 - 0.5 / b)))
    crit = float(special.ndtri(1 - alpha / 2)) if z is None else z
    z = np.array([-crit, crit])
    num = z0 + z
    den = 1 - accel * num
    with np.errstate(divide="ignore", invalid="ignore"):
        levels = np.where(den > 0, special.ndtr(z0 + num / den), np.array([0.0, 1.0]))
    lo, hi = np.quantile(r, levels)
    return float(lo), float(hi)


def acceleration(deviations) -> float:
    """BCa acceleration from jackknife deviations d_j = mean of the leave-one-out values - the j-th value:
    sum d^3 / (6 (sum d^2)^1.5); 0 when they are all 0.

    For a statistic that is a weighted sum of independent groups' statistics (questions resampled separately),
    pass the concatenated deviations, each group's scaled by its weight and by (n_g - 1) / n_g (the stratified
    form, Davison & Hinkley 1997, section 5.3)."""
    d = np.asarray(deviations, dtype=float).ravel()
    d2 = d * d
    s2 = float(d2.sum())
    return 0.0 if s2 <= 0 else float((d2 * d).sum() / (6.0 * s2 ** 1.5))  # d * d * d: not pow (10x slower)


def jackknife_deviations(loo_values) -> np.ndarray:
    """(n - 1) / n * (mean of the leave-one-out values - each value): the deviations `acceleration` takes,
    scaled so that groups of different sizes combine (for one group the scale cancels)."""
    v = np.asarray(loo_values, dtype=float)
    n = v.shape[-1]
    if n < 2:
        return np.zeros(v.shape)
    return (n - 1) / n * (v.mean(axis=-1, keepdims=True) - v)


def leave_one_out_means(x: np.ndarray) -> np.ndarray:
    """(n x k) means of the rows of x with row j left out; zeros when n < 2."""
    x = np.asarray(x, dtype=float)
    n = x.shape[0]
    if n < 2:
        return np.zeros_like(x)
    return (x.sum(axis=0) - x) / (n - 1)


def bootstrap_ci(
    samples_matrix,
    statistic: Callable[[np.ndarray], float],
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    vectorized: bool = False,
) -> tuple[float, float, float]:
    """BCa bootstrap over rows: (estimate, lo, hi).

    Each row of `samples_matrix` is one sample's option-probability vector (a one-hot row for a parsed answer).
    `statistic` maps the mean vector (1-D) to a number; the estimate is statistic(mean of all rows). Resamples
    are drawn at once as multinomial row counts (n_boot x n), so the resampled means are one matrix product; the
    acceleration comes from the jackknife (the statistic on each leave-one-out mean), the critical value is
    `expanded_z`(n). With vectorized=True, `statistic` is called once on a 2-D matrix of means and must return one
    value per row (the functions in this module work that way along the last axis). See `bca_interval`.

    BCa corrects a bias of up to about two standard errors; a statistic whose plug-in bias is larger than its
    spread (KL or entropy near 0 from few samples, where nearly every replicate lies on one side of the estimate)
    needs its bias removed first, as probe.analysis does (jackknife correction, replicates centred on it).
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

    def apply(rows: np.ndarray) -> np.ndarray:
        if vectorized:
            return np.asarray(statistic(rows), dtype=float).reshape(len(rows))
        return np.fromiter((statistic(m) for m in rows), dtype=float, count=len(rows))

    vals = apply(means)
    accel = acceleration(jackknife_deviations(apply(leave_one_out_means(x)))) if n > 1 else 0.0
    lo, hi = bca_interval(vals, estimate, accel, alpha, expanded_z(n, alpha=alpha))
    return estimate, lo, hi


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
