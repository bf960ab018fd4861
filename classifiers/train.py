"""Train a refusal classifier and write its artifact: model.joblib + meta.json.

    python -m classifiers.train [--data classifiers/data/train.jsonl] [--kind tfidf] [--out classifiers/artifacts/tfidf]
    python -m classifiers.train --all      # every shipped artifact (tfidf, embedding, prompt model)

meta.json records the version (kind + training-data sha256 prefix), the training-data sha256, the kind, package
versions and cross-validated metrics, so every stored label can be traced to its classifier and data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import platform
import random
from datetime import datetime, timezone
from pathlib import Path

import sklearn

from classifiers.artifact import FORMAT, save_model
from classifiers.evaluate import cross_validate, load_jsonl

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent
DEFAULT_DATA = ROOT / "data" / "train.jsonl"
KINDS = ("tfidf", "embedding")


PROMPT_DROPOUT = 0.35  # share of training items shown without their prompt, so the model also works on responses alone


def training_items(recs: list[dict], seed: int = 0, prompt_dropout: float = PROMPT_DROPOUT) -> list[tuple[str, str]]:
    """(response, prompt) pairs; a seeded share of prompts is blanked out."""
    rng = random.Random(seed)
    return [(r["response"], "" if rng.random() < prompt_dropout else (r.get("prompt") or "")) for r in recs]


def fit_kind(kind: str, texts: list, labels: list[str], seed: int = 0):
    """`texts`: response strings or (response, prompt) pairs. The fitted classifier comes wrapped the way the registry
    loads it (classifiers.segment), so cross-validation and gold cross-fits label as the shipped classifier does."""
    from classifiers.segment import segmenting

    if kind == "tfidf":
        from classifiers import tfidf

        return segmenting(tfidf.fit(texts, labels, seed=seed))
    if kind == "embedding":
        from classifiers import embedding

        return segmenting(embedding.fit(texts, labels, seed=seed))
    raise ValueError(f"unknown classifier kind {kind!r}; choose from {', '.join(KINDS)}")


def sha256_file(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cross_fit_gold(kind: str, base_items: list, base_labels: list[str], gold: list[dict], folds: int = 5,
                   seed: int = 0) -> dict:
    """Out-of-fold predictions for gold records ({key, prompt, response, label}): fold k is predicted by a model
    trained on the base data plus the other folds. Scored against the gold labels, and beside the default
    classifier's score on the same records, they estimate how much the adaptation gains in the gold's own domain;
    stored in the artifact, they let a relabelled campaign keep a valid DSL correction (probe.labelling)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    from classifiers import registry
    from classifiers.evaluate import summarize

    y = [g["label"] for g in gold]
    k = max(2, min(folds, len(gold)))
    strat = min(y.count(c) for c in set(y)) >= k
    split = (StratifiedKFold if strat else KFold)(n_splits=k, shuffle=True, random_state=seed)
    pair = [(g["response"], g.get("prompt") or "") for g in gold]
    preds: dict = {}
    for tr, te in split.split(pair, y):
        clf = fit_kind(kind, base_items + [pair[i] for i in tr], base_labels + [y[i] for i in tr], seed=seed)
        for i, p in zip(te, clf.predict([pair[i][0] for i in te], [pair[i][1] for i in te])):
            preds[gold[i]["key"]] = {"label": p.label, "p_refusal": round(p.p_refusal, 6)}
    default = registry.get().predict([r for r, _ in pair], [q for _, q in pair])
    adapted = summarize(y, [preds[g["key"]]["label"] for g in gold], n_boot=500, seed=seed)
    before = summarize(y, [p.label for p in default], n_boot=500, seed=seed)
    return {"folds": k, "n": len(gold), "binary": adapted["binary"], "three_way": adapted["three_way"],
            "default_binary": before["binary"], "cross_fit": preds}


def train(data_path: str | Path = DEFAULT_DATA, kind: str = "tfidf", out_dir: str | Path | None = None, folds: int = 5,
          seed: int = 0, gold: list[dict] | None = None, gold_source: str | None = None) -> dict:
    """Fit `kind` on all of `data_path` (plus `gold` records, e.g. a campaign's gold labels, with their prompts),
    cross-validate it, and write out_dir/model.joblib and out_dir/meta.json. Without gold, the CV is over the
    training file; with gold, it is the gold records' cross-fit (see cross_fit_gold), the figure that matters."""
    data_path = Path(data_path)
    out_dir = Path(out_dir or ROOT / "artifacts" / kind)
    recs = load_jsonl(data_path)
    texts, labels = training_items(recs, seed), [r["label"] for r in recs]
    digest = sha256_file(data_path)
    gold_meta = None
    if gold:
        h = hashlib.sha256(bytes.fromhex(digest))
        h.update(json.dumps([[g["key"], g["prompt"], g["response"], g["label"]] for g in gold]).encode())
        digest = h.hexdigest()
        gold_meta = {"source": gold_source, **cross_fit_gold(kind, texts, labels, gold, folds=folds, seed=seed)}
        texts = texts + [(g["response"], g.get("prompt") or "") for g in gold]
        labels = labels + [g["label"] for g in gold]
    cv = (cross_validate(data_path, kind, folds=folds, seed=seed, n_boot=200)
          if not gold and folds and folds > 1 else None)
    clf = fit_kind(kind, texts, labels, seed=seed)
    meta = {
        "name": kind,
        "kind": kind,
        "version": f"{kind}-{digest[:12]}",
        "training_data": data_path.name,
        "training_data_sha256": digest,
        "n_train": len(labels),
        "labels": sorted(set(labels)),
        "sklearn_version": sklearn.__version__,
        "python_version": platform.python_version(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "model_format": FORMAT,
        "cv": None if cv is None else {k: cv[k] for k in ("folds", "n", "three_way", "binary")},
        "gold": gold_meta,
    }
    meta.update(getattr(clf, "extra_meta", {}))
    out_dir.mkdir(parents=True, exist_ok=True)
    save_model(clf.model, out_dir)
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    log.info("wrote %s (%s)", out_dir, meta["version"])
    return meta


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Train a refusal classifier artifact.")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--kind", default="tfidf", choices=KINDS)
    ap.add_argument("--out", default=None)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--all", action="store_true", help="rebuild every shipped artifact: tfidf, embedding and the prompt model")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for kind in (KINDS if a.all else (a.kind,)):
        meta = train(a.data, kind, None if a.all else a.out, folds=a.folds)
        cv = meta["cv"]
        if cv:
            print(f"{meta['version']}: cv binary acc {cv['binary']['accuracy']:.3f}, 3-way acc {cv['three_way']['accuracy']:.3f}")
        else:
            print(meta["version"])
    if a.all:
        from classifiers import prompt_model

        prompt_model.main(["--data", a.data])


if __name__ == "__main__":
    main()
