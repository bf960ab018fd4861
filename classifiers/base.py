"""The classifier protocol and its output type.

Labels keep their positive meaning: `refusal`, `partial` or `compliance`, with `p_refusal` the probability that the
response is a refusal in the binary view (refusal or partial). Scores are never flipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

LABELS: tuple[str, ...] = ("compliance", "partial", "refusal")
REFUSING: frozenset[str] = frozenset({"refusal", "partial"})


@dataclass(frozen=True)
class Prediction:
    label: str  # refusal | partial | compliance
    p_refusal: float  # P(refusal or partial)
    # Set when another classifier than the one asked produced this label (an LLM judge's fallback): its
    # "name:version", and why (not compared: the label is the same label whoever gave it)
    labeller: str | None = field(default=None, compare=False)
    note: str | None = field(default=None, compare=False)

    @property
    def refused(self) -> bool:
        """Binary view: a partial refusal counts as a refusal."""
        return self.label in REFUSING


def is_refusal(label: str) -> bool:
    return label in REFUSING


@runtime_checkable
class Classifier(Protocol):
    name: str
    version: str  # includes the training-data sha256 prefix

    def predict(self, responses: list[str], prompts: list[str] | None = None) -> list[Prediction]: ...


class FittedClassifier:
    """A fitted scikit-learn estimator (`model`, with `classes_`) plus its artifact metadata; subclasses set `name`
    and turn responses into the estimator's input in `predict_proba`. Satisfies the Classifier protocol."""

    name = "fitted"

    def __init__(self, model, meta: dict | None = None):
        self.model = model  # what classifiers.train saves as model.joblib
        self.meta = meta or {}
        self.version = self.meta.get("version", f"{self.name}-unversioned")

    def predict_proba(self, responses: list[str], prompts: list[str] | None = None):
        raise NotImplementedError

    def predict(self, responses: list[str], prompts: list[str] | None = None) -> list[Prediction]:
        if not responses:
            return []
        return predictions_from_proba(self.model.classes_, self.predict_proba(responses, prompts))


def predictions_from_proba(classes, proba) -> list[Prediction]:
    """Turn a (n, k) probability matrix over `classes` into Predictions (argmax label, P(refusal)+P(partial))."""
    classes = list(classes)
    idx_ref = [i for i, c in enumerate(classes) if c in REFUSING]
    out = []
    for row in proba:
        p_ref = float(sum(row[i] for i in idx_ref))
        label = str(classes[int(max(range(len(classes)), key=lambda i: row[i]))])
        # Keep the binary view consistent with p_refusal: if the refusing classes together outweigh compliance,
        # the label is the likelier refusing class (and vice versa).
        if p_ref >= 0.5 and label not in REFUSING:
            label = max(idx_ref, key=lambda i: row[i])
            label = str(classes[label])
        elif p_ref < 0.5 and label in REFUSING:
            label = "compliance"
        out.append(Prediction(label=label, p_refusal=round(min(1.0, max(0.0, p_ref)), 6)))
    return out
