"""TF-IDF + logistic regression refusal classifier (3-way: refusal | partial | compliance).

Features: word 1-2 grams over the (truncated) response; char_wb 2-5 grams and a separate word 1-3 gram TF-IDF over
the opening (first sentence / ~220 characters, where refusals sit); cue counts split between the opening and the
rest; and, when a prompt is given, a few prompt-side cues (an opinion question answered with "I have no personal
opinions" is a non-answer). Logistic regression with class weights balanced in the binary view (see
binary_balanced_weights).
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer

from classifiers import features as F
from classifiers.base import FittedClassifier

KIND = "tfidf"
TOKENS = r"(?u)\b\w[\w']*\b"  # keep contractions (can't, don't, I'm) whole


def build_pipeline(C: float = 4.0, seed: int = 0, class_weight="balanced") -> Pipeline:
    def tf(fn, **kw):
        return Pipeline([("view", FunctionTransformer(fn)), ("tfidf", TfidfVectorizer(sublinear_tf=True, lowercase=True, dtype=np.float32, **kw))])

    union = FeatureUnion(
        [
            ("word", tf(F.bodies, analyzer="word", ngram_range=(1, 2), min_df=2, max_features=40000, token_pattern=TOKENS)),
            ("char", tf(F.heads, analyzer="char_wb", ngram_range=(2, 5), min_df=3, max_features=40000)),
            ("open", tf(F.openings, analyzer="word", ngram_range=(1, 3), min_df=2, max_features=30000, token_pattern=TOKENS)),
            ("cues", FunctionTransformer(F.cue_features)),
            ("prompt", FunctionTransformer(F.prompt_features)),
        ],
        transformer_weights={"word": 1.0, "char": 1.0, "open": 1.5, "cues": 1.0, "prompt": 1.0},
    )
    clf = LogisticRegression(C=C, class_weight=class_weight, max_iter=3000, random_state=seed)
    return Pipeline([("prepare", FunctionTransformer(F.prepare)), ("features", union), ("clf", clf)])


def binary_balanced_weights(labels, partial_boost: float = 2.0) -> dict:
    """Class weights that balance the binary view (compliance vs refusal+partial) while up-weighting the rarer
    partial class within the refusing side. Plain 3-class "balanced" weights would tilt the binary view toward refusal
    because partial refusals are rare."""
    n = len(labels)
    cnt = {c: max(1, sum(1 for x in labels if x == c)) for c in set(labels)}
    if "compliance" not in cnt:
        return "balanced"
    w = {"compliance": n / (2 * cnt["compliance"])}
    ref = {c: k for c, k in cnt.items() if c != "compliance"}
    raw = {c: (partial_boost if c == "partial" else 1.0) for c in ref}
    mass = sum(raw[c] * ref[c] for c in ref)
    for c in ref:
        w[c] = raw[c] * (n / 2) / mass
    return w


class TfidfClassifier(FittedClassifier):
    """The fitted pipeline (text views -> features -> logistic regression) plus its metadata."""

    name = KIND

    def predict_proba(self, responses: list[str], prompts: list[str] | None = None):
        return self.model.predict_proba(F.pack(responses, prompts))


def fit(items: list, labels: list[str], seed: int = 0, **params) -> TfidfClassifier:
    """`items`: response strings or (response, prompt) pairs (see classifiers.features.pack)."""
    params.setdefault("class_weight", binary_balanced_weights(labels))
    pipe = build_pipeline(seed=seed, **params)
    pipe.fit(list(items), list(labels))
    return TfidfClassifier(pipe)
