"""Sample until precise: rounds of sampling that go where the intervals are widest, until every cell's anytime-valid
interval (probe.confseq) is within the target half-width or the cell has reached its cap.

A cell is what a report gives an interval for: (model, survey question), whose statistics are the option shares,
or (model, refusal category), whose statistic is the refusal rate. After each round, `allocate` gives each cell
still short of the target a number of new samples proportional to its projected shortfall n ((w / target)^2 - 1),
which for a fixed target is proportional to the cell's estimated variance (Neyman-style allocation for a common
precision), taking half the projected step per round so that a noisy early estimate does not overshoot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from probe.confseq import BettingCS

GROWTH = 0.5  # the share of a cell's projected shortfall sampled in one round
DEFAULT_CAP = 400  # --max-samples when not given
MIN_STEP = 8  # the fewest new samples a cell short of the target gets in a round


@dataclass
class Cell:
    """One cell's running confidence sequences: one per statistic (one refusal rate, or each option's share)."""

    key: tuple
    k: int = 1  # statistics (options) per observation
    alpha: float = 0.05
    cs: list[BettingCS] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.cs:
            self.cs = [BettingCS(self.alpha) for _ in range(self.k)]

    def update(self, rows) -> None:
        """rows: (samples,) values in [0, 1], or (samples, k) option-probability vectors, in sample order."""
        a = np.asarray(rows, dtype=float).reshape(-1, self.k)
        for j, cs in enumerate(self.cs):
            cs.update(a[:, j])

    @property
    def n(self) -> int:
        return self.cs[0].n

    @property
    def half_width(self) -> float:
        return max(cs.half_width for cs in self.cs)

    def summary(self) -> dict:
        return {"n": self.n, "half_width": self.half_width,
                "estimate": [float(cs.mean) if cs.n else None for cs in self.cs] if self.k > 1 else
                (float(self.cs[0].mean) if self.n else None),
                "interval": [list(cs.interval()) for cs in self.cs] if self.k > 1 else list(self.cs[0].interval())}


def shortfall(cell: Cell, target: float) -> float:
    """Projected further samples for the cell to reach the target (0 when it has)."""
    w = cell.half_width
    return 0.0 if w <= target else cell.n * ((w / target) ** 2 - 1)


def allocate(cells: list[Cell], target: float, cap: int) -> dict[tuple, int]:
    """New samples per cell key for the next round; {} when every cell has met the target or its cap."""
    out = {}
    for c in cells:
        room = cap - c.n
        need = shortfall(c, target)
        if need > 0 and room > 0:
            out[c.key] = min(room, max(MIN_STEP, math.ceil(GROWTH * need)))
    return out


def simulate(draw, n_cells: int, target: float, cap: int, first: int, adaptive: bool = True,
             step: int | None = None) -> list[Cell]:
    """Run the rounds against a simulator: draw(cell index, how many) -> observations in [0, 1]. adaptive=False is
    uniform sampling: every cell gets `step` more samples per round until the worst cell meets the target."""
    cells = [Cell((i,)) for i in range(n_cells)]
    for c in cells:
        c.update(draw(c.key[0], first))
    while True:
        if adaptive:
            plan = allocate(cells, target, cap)
        else:
            worst = max(c.half_width for c in cells)
            plan = {} if worst <= target or cells[0].n >= cap else {c.key: min(step, cap - c.n) for c in cells}
        if not plan:
            return cells
        for c in cells:
            if c.key in plan:
                c.update(draw(c.key[0], plan[c.key]))
