"""Refusal labels of stored responses: the label row a classifier writes, a campaign's labelled responses, and
relabelling a finished campaign with another classifier (an LLM judge, or an artifact adapted to the campaign).

A classifier artifact trained on a campaign's gold labels carries out-of-fold ("cross-fitted") predictions for those
gold responses (meta.json `gold.cross_fit`). Relabelling uses them for exactly those responses, so that the DSL
correction in the report compares each gold label with a prediction from a model that never saw it; otherwise the
residuals on the gold sample would look smaller than they are and the corrected interval would be too narrow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from classifiers.base import REFUSING
from probe.store import Store

LABELLER = "refusal"  # the labeller name reports read for a refusal-probe response
BATCH = 256


def label_row(labeller_version: str, label: str, p_refusal: float, labeller: str = LABELLER) -> dict:
    """A refusal-probe label row: a classifier's (labeller "refusal") or a person's (labeller "gold")."""
    return {"labeller": labeller, "labeller_version": labeller_version, "label": label, "p_refusal": p_refusal,
            "option_code": None, "option_probs": None, "letter_probs": None, "letter_mass": None, "reason": None}


def classifier_id(clf) -> str:
    return f"{clf.name}:{clf.version}"


@dataclass(frozen=True)
class StoredResponse:
    key: str
    prompt: str
    response: str
    label: str | None  # the current refusal label
    gold: str | None  # a person's label, where there is one


def responses(store: Store, campaign_id: str) -> list[StoredResponse]:
    """The campaign's answered refusal-probe items, in store order."""
    labels = store.labels(campaign_id)
    out = []
    for item, resp in store.rows(campaign_id, "refusal"):
        if resp is None or resp.raw_text is None or not resp.messages:
            continue
        labs = labels.get(item.key, {})
        cur, gold = labs.get(LABELLER), labs.get("gold")
        out.append(StoredResponse(item.key, resp.messages[-1]["content"], resp.raw_text,
                                  cur.label if cur else None, gold.label if gold else None))
    return out


def relabel(store: Store, rows: list[StoredResponse], clf, on_batch: Callable[[int], None] | None = None) -> dict:
    """Label the given stored responses (a campaign's `responses`) with `clf`, replacing their refusal labels in one
    transaction at the end (a failure midway leaves the old labels whole). Returns counts for the caller."""
    cross_fit = ((getattr(clf, "meta", None) or {}).get("gold") or {}).get("cross_fit") or {}
    new, used_cross_fit = [], 0
    for start in range(0, len(rows), BATCH):
        chunk = rows[start:start + BATCH]
        preds = clf.predict([r.response for r in chunk], [r.prompt for r in chunk])
        for r, p in zip(chunk, preds):
            label, p_ref = p.label, p.p_refusal
            if r.key in cross_fit:
                label, p_ref = cross_fit[r.key]["label"], cross_fit[r.key]["p_refusal"]
                used_cross_fit += 1
            new.append(label_row(classifier_id(clf), label, p_ref) | {"key": r.key})
        if on_batch:
            on_batch(len(chunk))
    store.add_labels(new)
    return {"n": len(rows), "changed": sum(r.label != n["label"] for r, n in zip(rows, new)),
            "rate_before": _share([r.label for r in rows]), "rate_after": _share([n["label"] for n in new]),
            "cross_fitted": used_cross_fit, "classifier": classifier_id(clf)}


def _share(labels: list) -> float | None:
    labels = [x for x in labels if x is not None]
    return sum(x in REFUSING for x in labels) / len(labels) if labels else None
