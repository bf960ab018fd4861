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


def _boot_confusions(codes: np.ndarray, k: int, n: int, seed: int) -> np.ndarray:
    """(n, k, k) confusion matrices of n bootstrap resamples of examples whose cells are `codes` (true * k + pred).
    Each resample is a multinomial draw of example counts, so its confusion is one matrix product with the examples'
    one-hot cells (chunked to bound memory) instead of n metric calls."""
    rng = np.random.default_rng(seed)
    m = len(codes)
    onehot = np.zeros((m, k * k))
    onehot[np.arange(m), codes] = 1.0
    out = np.empty((n, k * k))
    step = max(1, min(n, 2_000_000 // max(m, 1)))
    for s in range(0, n, step):
        c = min(step, n - s)
        out[s:s + c] = rng.multinomial(m, np.full(m, 1.0 / m), size=c) @ onehot
    return out.reshape(n, k, k)


def _accuracy(conf: np.ndarray) -> np.ndarray:
    return np.trace(conf, axis1=-2, axis2=-1) / conf.sum(axis=(-2, -1))


def _macro_f1_conf(conf: np.ndarray) -> np.ndarray:
    """Macro F1 over the labels present (as truth or prediction), 0 for a label with no true positive: sklearn's
    f1_score(average="macro", zero_division=0) on the same rows."""
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    denom = conf.sum(axis=-1) + conf.sum(axis=-2)  # 2tp + fp + fn
    present = denom > 0
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp, dtype=float), where=present)
    return f1.sum(axis=-1) / present.sum(axis=-1)


def bootstrap_scores(y_true, y_pred, n: int = 1000, seed: int = 0) -> dict:
    """Percentile 95% intervals of accuracy and macro F1 over examples, from one set of resamples."""
    labs = sorted(set(y_true) | set(y_pred))
    ix = {lab: i for i, lab in enumerate(labs)}
    codes = np.asarray([ix[t] * len(labs) + ix[p] for t, p in zip(y_true, y_pred)])
    conf = _boot_confusions(codes, len(labs), n, seed)
    pct = lambda v: tuple(float(x) for x in np.percentile(v, [2.5, 97.5]))  # noqa: E731
    return {"accuracy_ci95": pct(_accuracy(conf)), "macro_f1_ci95": pct(_macro_f1_conf(conf))}


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
            "macro_f1": float(_macro_f1(t, p)),
            **bootstrap_scores(t, p, n_boot, seed),
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
