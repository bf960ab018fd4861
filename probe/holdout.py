"""A reusable holdout (Dwork et al., "The reusable holdout", Science 2015): Thresholdout answers queries on a
holdout set so that figures reused adaptively to guide development do not overfit it.

Every query compares the training-side value (e.g. the classifier's cross-validated accuracy) with the holdout
value. When they agree within a noisy threshold, the training value is the answer and the holdout told nothing;
otherwise the holdout value plus Laplace noise is the answer and one unit of the budget is spent. A spent budget
refuses further queries: the holdout has been used up and a fresh one is needed.

The budget's ledger is a JSON file committed with the code (classifiers/holdout_ledger.json), so every developer
and every benchmark draw on the same budget: {"holdouts": {NAME: {threshold, sigma, budget, spent, queries: [{at,
classifier, answer, over_threshold}]}}}. Only answers are recorded, never the raw holdout figure. The threshold's
noise is drawn afresh per session from the system's entropy (seeded only in tests).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from probe.errors import ProbeError

LEDGER = Path(__file__).resolve().parents[1] / "classifiers" / "holdout_ledger.json"
# The paper's setting (n = 10,000): threshold 0.04, noise 0.01. Our holdouts hold a few hundred to two thousand
# examples, whose accuracy has a standard error of 0.005-0.02; a threshold of 0.02 and noise 0.005 keep answers useful
# (the threshold's own noise, Laplace(4 sigma), then rarely hides a gap of 0.05).
THRESHOLD, SIGMA, BUDGET = 0.02, 0.005, 25


class BudgetSpent(ProbeError):
    pass


@dataclass
class Thresholdout:
    """The mechanism over (training value, holdout value) pairs; `spent` counts answers that used the holdout."""

    threshold: float = THRESHOLD
    sigma: float = SIGMA
    budget: int = BUDGET
    spent: int = 0
    rng: np.random.Generator = field(default_factory=np.random.default_rng)

    def __post_init__(self) -> None:
        self._t_hat = self.threshold + self.rng.laplace(0, 2 * self.sigma)

    @property
    def left(self) -> int:
        return self.budget - self.spent

    def query(self, train_value: float, holdout_value: float) -> tuple[float, bool]:
        """(answer, whether the holdout was used); BudgetSpent once the budget is used up."""
        if self.left < 1:
            raise BudgetSpent(f"holdout budget spent ({self.spent} of {self.budget})")
        if abs(holdout_value - train_value) > self._t_hat + self.rng.laplace(0, 4 * self.sigma):
            self.spent += 1
            self._t_hat = self.threshold + self.rng.laplace(0, 2 * self.sigma)
            return float(holdout_value + self.rng.laplace(0, self.sigma)), True
        return float(train_value), False

    def query_many(self, train_values, holdout_values) -> np.ndarray:
        """Answers to a batch of queries in order (each one as `query`)."""
        return np.array([self.query(t, h)[0] for t, h in zip(train_values, holdout_values)])


class Ledger:
    """A holdout's Thresholdout state kept in the ledger file: open, query, save (atomically, after each answer)."""

    def __init__(self, name: str, path: str | Path | None = None, rng: np.random.Generator | None = None):
        self.name, self.path = name, Path(path or LEDGER)
        self.data = self._read()
        entry = self.data["holdouts"].setdefault(name, {"threshold": THRESHOLD, "sigma": SIGMA, "budget": BUDGET,
                                                        "spent": 0, "queries": []})
        self.entry = entry
        self.mech = Thresholdout(entry["threshold"], entry["sigma"], entry["budget"], entry["spent"],
                                 rng or np.random.default_rng())

    def _read(self) -> dict:
        if not self.path.exists():
            return {"holdouts": {}}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data.get("holdouts"), dict):
                raise ValueError("no 'holdouts' object")
            return data
        except ValueError as e:
            raise ProbeError(f"{self.path}: not a holdout ledger ({e})") from None

    def check(self) -> None:
        """BudgetSpent (one line, naming the ledger) when no answer is left: before any work reads the holdout."""
        if self.mech.left < 1:
            raise BudgetSpent(f"holdout {self.name!r}: its budget of {self.entry['budget']} holdout answers is spent "
                              f"(ledger {self.path}); evaluate on a fresh holdout set")

    def query(self, train_value: float, holdout_value: float, who: str = "", save: bool = True) -> float:
        self.check()
        answer, used = self.mech.query(train_value, holdout_value)
        self.entry["spent"] = self.mech.spent
        self.entry["queries"].append({"at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                      "classifier": who, "answer": round(answer, 4), "over_threshold": used})
        if save:
            self.save()
        return answer

    @property
    def left(self) -> int:
        return self.mech.left

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".ledger-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.data, f, indent=2)
            f.write("\n")
        os.replace(tmp, self.path)
