"""The paper's second model: predict from the prompt alone whether a model will refuse it.

Core: train_prompt_model(pairs) with pairs of (prompt, refused: bool). TF-IDF word 1-2 grams + char_wb 2-5 grams
into a class-balanced logistic regression; `predict_proba(prompts)` returns P(refusal) per prompt.
The shipped artifact (classifiers/artifacts/prompt) is trained on the prompts of our own training data and is a
baseline only; train one on a campaign's prompts and labels for a model-specific predictor.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ARTIFACT = Path(__file__).resolve().parent / "artifacts" / "prompt"


def _pipeline(C: float = 2.0, seed: int = 0):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    feats = FeatureUnion([
        ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_features=30000, dtype=np.float32)),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2, max_features=30000, dtype=np.float32)),
    ])
    return Pipeline([("features", feats), ("clf", LogisticRegression(C=C, class_weight="balanced", max_iter=3000, random_state=seed))])


class PromptModel:
    def __init__(self, pipeline, meta: dict | None = None):
        self.pipeline = pipeline
        self.meta = meta or {}
        self.version = self.meta.get("version", "prompt-unversioned")

    def predict_proba(self, prompts: list[str]) -> list[float]:
        if not prompts:
            return []
        classes = list(self.pipeline.classes_)
        proba = self.pipeline.predict_proba([p or "" for p in prompts])
        return [float(x) for x in proba[:, classes.index(True)]] if True in classes else [0.0] * len(prompts)

    def save(self, out_dir: str | Path) -> Path:
        from classifiers.artifact import save_model

        out = Path(out_dir)
        save_model(self.pipeline, out)
        (out / "meta.json").write_text(json.dumps(self.meta, indent=2) + "\n", encoding="utf-8")
        return out


def _digest(pairs) -> str:
    h = hashlib.sha256()
    for p, y in pairs:
        h.update(f"{int(bool(y))}\t{p}\n".encode())
    return h.hexdigest()


def train_prompt_model(pairs: list[tuple[str, bool]], seed: int = 0, source: str = "pairs") -> PromptModel:
    """Fit on (prompt, refused) pairs; needs both classes present."""
    pairs = [(str(p), bool(y)) for p, y in pairs if p]
    ys = {y for _, y in pairs}
    if ys != {True, False}:
        raise ValueError("train_prompt_model needs prompts that were refused and prompts that were not")
    pipe = _pipeline(seed=seed)
    pipe.fit([p for p, _ in pairs], [y for _, y in pairs])
    digest = _digest(pairs)
    import sklearn

    meta = {"kind": "prompt", "version": f"prompt-{digest[:12]}", "training_data_sha256": digest, "source": source,
            "n_train": len(pairs), "n_refused": sum(y for _, y in pairs), "sklearn_version": sklearn.__version__,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return PromptModel(pipe, meta)


def pairs_from_jsonl(path: str | Path) -> list[tuple[str, bool]]:
    """Read (prompt, refused) pairs from JSONL lines with `prompt` and either `refused` (bool) or `label`."""
    from probe.datafiles import read_jsonl_objects

    out = []
    for i, rec in read_jsonl_objects(path):
        try:
            refused = bool(rec["refused"]) if "refused" in rec else rec["label"] in ("refusal", "partial")
            out.append((rec["prompt"], refused))
        except (KeyError, TypeError) as e:
            raise ValueError(f"{path}:{i}: needs 'prompt' and 'refused' or 'label' ({e})") from None
    return out


def load(path: str | Path = ARTIFACT) -> PromptModel:
    from classifiers.artifact import load_model

    path = Path(path)
    if not (path / "model.joblib").is_file():
        raise FileNotFoundError(f"{path}: no prompt-model artifact (model.joblib)")
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    return PromptModel(load_model(path), meta)


def main(argv: list[str] | None = None) -> None:
    """python -m classifiers.prompt_model [--data classifiers/data/train.jsonl] [--out classifiers/artifacts/prompt]"""
    import argparse

    ap = argparse.ArgumentParser(description="Train the prompt-only refusal predictor.")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parent / "data" / "train.jsonl"))
    ap.add_argument("--out", default=str(ARTIFACT))
    a = ap.parse_args(argv)
    model = train_prompt_model(pairs_from_jsonl(a.data), source=Path(a.data).name)
    model.save(a.out)
    print(f"{model.version}: {model.meta['n_train']} prompts -> {a.out}")


if __name__ == "__main__":
    main()
