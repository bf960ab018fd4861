"""Anytime-valid confidence sequences for the mean of observations in [0, 1] (a refusal rate, an option's share).

Sampling until an interval is narrow enough stops when the data say so, and a fixed-n interval computed at that
data-dependent time no longer covers at its nominal rate. A confidence sequence covers the mean at every time at
once (P(for all t: mean in CS_t) >= 1 - alpha), so it stays valid at any stopping time.

Method: the hedged betting confidence sequence with predictable plug-in bets (Waudby-Smith & Ramdas, "Estimating
means of bounded random variables by betting", JRSS-B 2024, Theorem 3 and section 5.1 "hedged capital"). For each
candidate mean m on a grid, two bettors wager that the mean is above / below m; their average capital
K_t(m) = (prod(1 + l+_i (x_i - m)) + prod(1 - l-_i (x_i - m))) / 2 is a nonnegative martingale when m is the true
mean, so by Ville's inequality it reaches 1/alpha with probability at most alpha, ever. CS_t = {m: K_t(m) < 1/alpha},
intersected over time. Bets l_i = sqrt(2 log(2/alpha) / (var_{i-1} i log(1 + i))) use the running variance, so the
width adapts to it (a rate near 0 gets a much narrower interval than one near 0.5: what Neyman-style allocation
exploits), truncated at c / m and c / (1 - m) with c = 1/2.
"""

from __future__ import annotations

import math

import numpy as np

GRID = 1000  # candidate means; the interval is widened by one grid step so that it stays conservative
TRUNC = 0.5


class BettingCS:
    """A running confidence sequence; update() with new observations in order, interval() at any time."""

    def __init__(self, alpha: float = 0.05, grid: int = GRID):
        self.alpha = alpha
        self.m = (np.arange(grid) + 0.5) / grid
        self.step = 1.0 / grid
        self.log_kp = np.zeros(grid)
        self.log_km = np.zeros(grid)
        self.n = 0
        self.total = 0.0
        self._mu = 0.5  # running regularized mean and variance, for the predictable bets
        self._ssq = 0.25
        self.lo, self.hi = 0.0, 1.0

    def update(self, xs) -> None:
        xs = np.asarray(xs, dtype=float).ravel()
        if xs.size == 0:
            return
        lam = np.empty(xs.size)
        c = math.log(2 / self.alpha)
        for j, x in enumerate(xs):  # the bet on x_i uses only x_1..x_{i-1}
            i = self.n + 1
            var = self._ssq / i
            lam[j] = math.sqrt(2 * c / (var * i * math.log(1 + i)))
            self._ssq += (x - self._mu) ** 2
            self.total += x
            self.n = i
            self._mu = (0.5 + self.total) / (i + 1)
        d = xs[:, None] - self.m[None, :]
        lp = np.minimum(lam[:, None], TRUNC / self.m[None, :])
        lm = np.minimum(lam[:, None], TRUNC / (1 - self.m[None, :]))
        self.log_kp += np.log1p(lp * d).sum(axis=0)
        self.log_km += np.log1p(-lm * d).sum(axis=0)
        self._narrow()

    def _narrow(self) -> None:
        log_k = np.logaddexp(self.log_kp, self.log_km) - math.log(2)
        inside = np.flatnonzero(log_k < math.log(1 / self.alpha))
        if inside.size == 0:  # cannot happen for the true mean but with probability alpha; keep the last interval
            return
        lo = max(0.0, self.m[inside[0]] - self.step)
        hi = min(1.0, self.m[inside[-1]] + self.step)
        if lo <= self.hi and hi >= self.lo:  # running intersection (still valid: every CS_t holds at once)
            self.lo, self.hi = max(self.lo, lo), min(self.hi, hi)

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    def interval(self) -> tuple[float, float]:
        return self.lo, self.hi

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    @property
    def variance(self) -> float:
        """The running (regularized) variance estimate the bets use."""
        return self._ssq / (self.n + 1)


def sequence(xs, alpha: float = 0.05) -> tuple[float, float]:
    """The confidence sequence's interval after observing xs in order."""
    cs = BettingCS(alpha)
    cs.update(xs)
    return cs.interval()
