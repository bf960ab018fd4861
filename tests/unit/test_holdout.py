"""Thresholdout (Dwork et al. 2015): the classic demonstration, and the ledger that keeps a holdout's budget."""

import json

import numpy as np
import pytest

from probe.holdout import BudgetSpent, Ledger, Thresholdout

KS = (10, 20, 50, 100, 200, 300, 400, 500)


def adaptive_selection(n: int = 4000, d: int = 4000, seed: int = 0) -> dict[str, np.ndarray]:
    """Random labels, Gaussian features (no signal at all). Features are picked by their correlation with the label on
    the training set *and* the holdout (same sign, both above 1/sqrt(n)); the top k by training correlation vote. The
    holdout is queried naively, or through Thresholdout (correlations: the paper's threshold 0.04 and noise 0.01
    scaled to n by sqrt(10,000 / n); accuracies: threshold 0.02, noise 0.0025). Returns holdout accuracy per k."""
    rng = np.random.default_rng(seed)
    xt, xh = rng.standard_normal((n, d), dtype=np.float32), rng.standard_normal((n, d), dtype=np.float32)
    yt, yh = (rng.choice([-1.0, 1.0], n).astype(np.float32) for _ in range(2))
    ct, ch = xt.T @ yt / n, xh.T @ yh / n
    scale = np.sqrt(10_000 / n)
    corr_guard = Thresholdout(0.04 * scale, 0.01 * scale, budget=d, rng=np.random.default_rng(seed + 1))
    acc_guard = Thresholdout(0.02, 0.0025, budget=len(KS), rng=np.random.default_rng(seed + 2))
    out = {}
    for name, hv in (("naive", ch), ("thresholdout", corr_guard.query_many(ct, ch))):
        thr = 1 / np.sqrt(n)
        idx = np.flatnonzero((np.abs(ct) > thr) & (np.abs(hv) > thr) & (np.sign(ct) == np.sign(hv)))
        order = idx[np.argsort(-np.abs(ct[idx]))]
        accs = []
        for k in KS:
            f = order[:k]
            w = np.sign(ct[f])
            train_acc = float(np.mean(np.sign(xt[:, f] @ w) == yt))
            hold_acc = float(np.mean(np.sign(xh[:, f] @ w) == yh))
            accs.append(hold_acc if name == "naive" else acc_guard.query(train_acc, hold_acc)[0])
        out[name] = np.array(accs)
    return out


def test_reused_holdout_overfits_and_thresholdout_does_not():
    res = adaptive_selection()
    print(f"\nholdout accuracy by k {KS} (labels are random: the truth is 0.5)\n naive:        {res['naive'].round(3)}"
          f"\n thresholdout: {res['thresholdout'].round(3)}")
    assert res["naive"].max() > 0.6  # the naive reused holdout climbs well above chance
    assert np.abs(res["thresholdout"] - 0.5).max() <= 0.05


def test_answers_training_value_when_close_and_noisy_holdout_when_not():
    m = Thresholdout(0.05, 0.001, budget=2, rng=np.random.default_rng(0))
    assert m.query(0.90, 0.91) == (0.90, False)  # agree: the holdout told nothing, nothing spent
    ans, used = m.query(0.99, 0.80)
    assert used and abs(ans - 0.80) < 0.02 and m.left == 1


def test_ledger_records_and_refuses_when_spent(tmp_path):
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps({"holdouts": {"h": {"threshold": 0.02, "sigma": 0.001, "budget": 2, "spent": 0,
                                                   "queries": []}}}))
    led = Ledger("h", path, rng=np.random.default_rng(1))
    led.query(0.99, 0.70, who="clf-a")
    led.query(0.99, 0.71, who="clf-b")
    data = json.loads(path.read_text())["holdouts"]["h"]
    assert data["spent"] == 2 and [q["classifier"] for q in data["queries"]] == ["clf-a", "clf-b"]
    assert all(q["over_threshold"] for q in data["queries"])
    again = Ledger("h", path)  # a later session reads the spent budget
    with pytest.raises(BudgetSpent, match="budget of 2 holdout answers is spent"):
        again.query(0.99, 0.70)
    assert len(json.loads(path.read_text())["holdouts"]["h"]["queries"]) == 2  # nothing written by a refusal
