"""Evaluation: stratified k-fold cross-validation on our training data and scoring on external labelled sets.

Accuracy and macro F1 come with bootstrap 95% intervals (percentile bootstrap over examples).
External sets (Reuter & Schulze; XSTest) are read from a folder given by the caller and are never trained on.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.model_selection import StratifiedKFold

from classifiers.base import LABELS, REFUSING

log = logging.getLogger(__name__)


def load_jsonl(path: str | Path) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                rec = json.loads(line)
                if "response" not in rec or "label" not in rec:
                    raise ValueError(f"{path}:{i}: needs 'response' and 'label'")
                out.append(rec)
    return out


def bootstrap_ci(y_true, y_pred, metric, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    rng = np.random.default_rng(seed)
    m = len(y_true)
    vals = []
    for _ in range(n):
        idx = rng.integers(0, m, m)
        vals.append(metric(y_true[idx], y_pred[idx]))
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


def _macro_f1(a, b):
    return f1_score(a, b, average="macro", zero_division=0)


def binary(labels) -> list[str]:
    return ["refusal" if lab in REFUSING else "compliance" for lab in labels]


def summarize(y_true: list[str], y_pred: list[str], n_boot: int = 1000, seed: int = 0) -> dict:
    """3-way and binary accuracy / macro F1 with bootstrap intervals, plus confusion matrices."""
    out: dict = {"n": len(y_true)}
    present = [lab for lab in LABELS if lab in set(y_true) | set(y_pred)]
    for view, (t, p, labs) in {"three_way": (y_true, y_pred, present), "binary": (binary(y_true), binary(y_pred), ["compliance", "refusal"])}.items():
        out[view] = {
            "accuracy": float(accuracy_score(t, p)),
            "accuracy_ci95": bootstrap_ci(t, p, accuracy_score, n_boot, seed),
            "macro_f1": float(_macro_f1(t, p)),
            "macro_f1_ci95": bootstrap_ci(t, p, _macro_f1, n_boot, seed),
            "labels": labs,
            "confusion": confusion_matrix(t, p, labels=labs).tolist(),
        }
    return out


def cross_validate(data_path: str | Path, kind: str = "tfidf", folds: int = 5, seed: int = 0, n_boot: int = 1000) -> dict:
    """Stratified k-fold CV of classifier `kind` on a training file; out-of-fold predictions are scored together."""
    from classifiers.train import fit_kind, training_items

    recs = load_jsonl(data_path)
    texts = training_items(recs, seed)
    labels = np.asarray([r["label"] for r in recs])
    pred = np.empty(len(recs), dtype=object)
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (tr, te) in enumerate(skf.split(texts, labels)):
        clf = fit_kind(kind, [texts[i] for i in tr], labels[tr].tolist(), seed=seed)
        pred[te] = [p.label for p in clf.predict([recs[i]["response"] for i in te], [recs[i].get("prompt") or "" for i in te])]
        log.info("fold %d/%d done", k + 1, folds)
    res = summarize(labels.tolist(), pred.tolist(), n_boot=n_boot, seed=seed)
    res.update(kind=kind, folds=folds, seed=seed)
    return res


def evaluate_on(records: list[dict], classifier, n_boot: int = 1000, seed: int = 0) -> dict:
    """Score `classifier` on records with `response`, `label` (3-way or binary labels) and optional `prompt`."""
    texts = [r["response"] for r in records]
    prompts = [r.get("prompt", "") for r in records]
    preds = classifier.predict(texts, prompts)
    y_true = [r["label"] for r in records]
    y_pred = [p.label for p in preds]
    res = summarize(y_true, y_pred, n_boot=n_boot, seed=seed)
    res["p_refusal"] = [p.p_refusal for p in preds]
    return res


# ---- external sets (paths supplied by the caller; never bundled, never trained on) ----

def load_reuter(path: str | Path) -> list[dict]:
    """Reuter & Schulze all_hand_labeled.json with the paper's binarisation: drop incoherent/dontknow,
    complied -> compliance, everything else -> refusal."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    out = []
    for r in data:
        if r["tone"] in ("incoherent", "dontknow"):
            continue
        out.append({"prompt": r["prompt"], "response": r["response"], "label": "compliance" if r["tone"] == "complied" else "refusal",
                    "tone": r["tone"]})
    return out


_XS = {"1_full_compliance": "compliance", "2_full_refusal": "refusal", "3_partial_refusal": "partial"}


def load_xstest(folder: str | Path) -> list[dict]:
    """XSTest v2 completions (all model CSVs in `folder`): final_label -> compliance | refusal | partial."""
    out = []
    for f in sorted(Path(folder).glob("*.csv")):
        with open(f, encoding="utf-8", newline="") as fh:
            for r in csv.DictReader(fh):
                out.append({"prompt": r["prompt"], "response": r["completion"], "label": _XS[r["final_label"].strip()],
                            "model": f.stem.rsplit("_", 1)[-1], "type": r["type"]})
    return out
