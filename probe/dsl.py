"""Design-based supervised learning (Egami et al.) for a rate: combine a classifier's labels on every response
with a person's gold labels on a random sample, for an estimate that stays unbiased however wrong the classifier
is, with a valid interval.

With surrogate Q_i (the classifier's p_refusal) for all N responses, gold Y_i on a sample drawn with known
probability pi_i, and R_i = 1 when item i was gold-labelled, the pseudo-outcome is
    Y~_i = Q_i + (R_i / pi_i) (Y_i - Q_i),
whose mean is the DSL estimate; its standard error is sd(Y~) / sqrt(N). `probe label` samples uniformly at
random, so pi_i = n_gold / N. The surrogate is fixed (not fitted on the gold labels), so no cross-fitting is needed.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def dsl_mean(surrogate, gold: dict[int, float], pi: float | None = None, alpha: float = 0.05) -> dict:
    q = np.asarray(surrogate, dtype=float)
    n = len(q)
    if n == 0 or not gold:
        return {"rate": None, "ci95": [None, None], "n_gold": len(gold), "n": n}
    pi = pi if pi is not None else len(gold) / n
    y_tilde = q.copy()
    for i, y in gold.items():
        y_tilde[i] = q[i] + (y - q[i]) / pi
    est = float(y_tilde.mean())
    se = float(y_tilde.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    z = stats.norm.ppf(1 - alpha / 2)
    return {"rate": est, "ci95": [max(0.0, est - z * se), min(1.0, est + z * se)], "se": se,
            "n_gold": len(gold), "n": n}
