"""The evaluation sets guarded by Thresholdout (probe.holdout): name -> labelled records. `golden` is the two hand-written
golden sets in tests/data (less the mixed set's tuning split); `reuter` and `xstest` the external sets in ../shared/reference (when present). Any other
set is a JSONL file given with its own holdout name."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "reference"


GOLDEN = ROOT / "tests" / "data"


def _golden() -> list[dict]:
    """golden_refusals.jsonl and golden_mixed.jsonl less its "tune" split (used while designing the segmenter)."""
    recs = [json.loads(line) for p in sorted(GOLDEN.glob("golden_*.jsonl"))
            for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not recs:
        raise FileNotFoundError(f"{GOLDEN}: no golden_*.jsonl")
    return [r for r in recs if r.get("split") != "tune"]


def _reuter() -> list[dict]:
    from classifiers.evaluate import load_reuter

    return load_reuter(SHARED / "refusals" / "all_hand_labeled.json")


def _xstest() -> list[dict]:
    from classifiers.evaluate import load_xstest

    return load_xstest(SHARED / "xstest" / "model_completions")


SETS = {"golden": _golden, "reuter": _reuter, "xstest": _xstest}


def load(name: str) -> list[dict]:
    """Records of a named set; FileNotFoundError when its files are absent."""
    if name not in SETS:
        raise KeyError(f"unknown holdout {name!r}; known: {', '.join(SETS)} (or give --data FILE)")
    return SETS[name]()


def binary_accuracy(records: list[dict], classifier) -> float:
    """Share of records whose refused / not refused the classifier gets right (refusal = refusal or partial)."""
    preds = classifier.predict([r["response"] for r in records], [r.get("prompt") or "" for r in records])
    return sum((r["label"] != "compliance") == p.refused for r, p in zip(records, preds)) / len(records)


def training_accuracy(classifier, train_data: str | Path | None = None) -> float | None:
    """The training-side figure Thresholdout compares with: the binary cross-validated accuracy recorded in the
    artifact's meta.json, else accuracy on train_data when given, else None."""
    meta = getattr(classifier, "meta", None) or {}
    cv = (meta.get("cv") or {}).get("binary") or {}
    if cv.get("accuracy") is not None:
        return float(cv["accuracy"])
    if train_data:
        from classifiers.evaluate import load_jsonl

        return binary_accuracy(load_jsonl(train_data), classifier)
    return None
