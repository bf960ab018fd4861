"""Refusal labels of stored responses: the label rows a classifier writes, a campaign's labelled responses,
relabelling a finished campaign with another classifier (an LLM judge, or an artifact adapted to the campaign), and
the agreement between the labellers a campaign has had.

Every labeller's labels are kept side by side (one row per response and labeller version); the campaign names the
one its report reads (`refusal_labeller`): the workers' default classifier, then whichever `probe relabel` made or
chose last.

A response with no content (null or blank text: a content filter, a reasoning model's empty answer, a stop at 0
tokens) is not classified: every labeller stores `no_content` for it, with the finish reason in `reason`, and the
report keeps such responses out of the refusal rate (and shows the rate counting them as refusals beside it).

An LLM judge that cannot label a response (a failed call, a reply with no label) leaves the label to its fallback
classifier; the fallback's label is stored under the fallback's name and version, and the judge's row for that
response has no label and names the fallback (`fallback`), so the report counts the stand-ins and says who gave them.

A classifier artifact trained on a campaign's gold labels carries out-of-fold ("cross-fitted") predictions for those
gold responses (meta.json `gold.cross_fit`). Relabelling uses them for exactly those responses, so that the DSL
correction in the report compares each gold label with a prediction from a model that never saw it; otherwise the
residuals on the gold sample would look smaller than they are and the corrected interval would be too narrow.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

from classifiers.base import REFUSING
from probe.errors import ProbeError
from probe.store import Store

LABELLER = "refusal"  # the labeller name reports read for a refusal-probe response
NO_CONTENT = "no_content"
ORDER = ("refusal", "partial", "compliance")  # rows and columns of the agreement confusion matrices
BATCH = 256


def label_row(labeller_version: str, label: str | None, p_refusal: float | None, labeller: str = LABELLER,
              reason: str | None = None, fallback: str | None = None) -> dict:
    """A refusal-probe label row: a classifier's (labeller "refusal") or a person's (labeller "gold")."""
    return {"labeller": labeller, "labeller_version": labeller_version, "label": label, "p_refusal": p_refusal,
            "option_code": None, "option_probs": None, "letter_probs": None, "letter_mass": None, "reason": reason,
            "fallback": fallback}


def classifier_id(clf) -> str:
    return f"{clf.name}:{clf.version}"


def has_content(text: str | None) -> bool:
    return text is not None and text.strip() != ""


def no_content_reason(text: str | None, finish_reason: str | None) -> str:
    what = "null content" if text is None else "empty text" if text == "" else "blank text"
    return f"no content: {what}, finish_reason {finish_reason or 'none'}"


def prediction_rows(clf_id: str, p) -> list[dict]:
    """The rows for one prediction of classifier `clf_id`: its label, or, where another classifier gave the label (a
    judge's fallback), that classifier's row plus a label-less row of `clf_id` that names it and says why."""
    if p.labeller and p.labeller != clf_id:
        return [label_row(clf_id, None, None, reason=p.note, fallback=p.labeller),
                label_row(p.labeller, p.label, p.p_refusal)]
    return [label_row(clf_id, p.label, p.p_refusal)]


def label_responses(clf, texts: list[str | None], prompts: list[str], finish_reasons: list[str | None],
                    override: Callable[[int], tuple[str, float] | None] | None = None) -> list[list[dict]]:
    """The label rows for each response (workers and relabelling alike): `no_content` for those with no text, the
    classifier's prediction (prediction_rows) for the rest; `override(i)` may give (label, p_refusal) to use instead
    (cross-fitted predictions)."""
    clf_id = classifier_id(clf)
    out: list[list[dict]] = [[label_row(clf_id, NO_CONTENT, None, reason=no_content_reason(t, f))]
                             for t, f in zip(texts, finish_reasons)]
    idx = [i for i, t in enumerate(texts) if has_content(t)]
    preds = clf.predict([texts[i] for i in idx], [prompts[i] for i in idx]) if idx else []
    for i, p in zip(idx, preds):
        fixed = override(i) if override else None
        out[i] = [label_row(clf_id, *fixed)] if fixed else prediction_rows(clf_id, p)
    return out


@dataclass(frozen=True)
class StoredResponse:
    key: str
    prompt: str
    response: str | None  # None: the model's content was null
    label: str | None  # the current refusal label (the campaign's chosen labeller, or the one that filled in)
    gold: str | None  # a person's label, where there is one
    finish_reason: str | None = None


def responses(store: Store, campaign_id: str) -> list[StoredResponse]:
    """The campaign's answered refusal-probe items (those with no content included), in store order."""
    labels = store.labels(campaign_id)
    out = []
    for item, resp in store.rows(campaign_id, "refusal"):
        if resp is None or item.status != "done" or not resp.messages:
            continue
        labs = labels.get(item.key, {})
        cur, gold = labs.get(LABELLER), labs.get("gold")
        out.append(StoredResponse(item.key, resp.messages[-1]["content"], resp.raw_text,
                                  cur.label if cur else None, gold.label if gold else None, resp.finish_reason))
    return out


def relabel(store: Store, rows: list[StoredResponse], clf, on_batch: Callable[[int], None] | None = None,
            campaign_id: str | None = None) -> dict:
    """Label the given stored responses (a campaign's `responses`) with `clf`, beside the labels already stored, in
    one transaction at the end (a failure midway leaves the store as it was); with `campaign_id`, `clf` becomes the
    campaign's refusal labeller in that transaction. Returns counts for the caller."""
    clf_id = classifier_id(clf)
    cross_fit = ((getattr(clf, "meta", None) or {}).get("gold") or {}).get("cross_fit") or {}
    new, effective, used_cross_fit = [], [], 0
    for start in range(0, len(rows), BATCH):
        chunk = rows[start:start + BATCH]
        fit = [cross_fit.get(r.key) for r in chunk]
        labelled = label_responses(clf, [r.response for r in chunk], [r.prompt for r in chunk],
                                   [r.finish_reason for r in chunk],
                                   override=lambda i: (fit[i]["label"], fit[i]["p_refusal"]) if fit[i] else None)
        used_cross_fit += sum(f is not None and has_content(r.response) for f, r in zip(fit, chunk))
        for r, labs in zip(chunk, labelled):
            new += [lab | {"key": r.key} for lab in labs]
            effective.append(labs[-1])  # the row that carries the label (the stand-in's, after a fallback)
        if on_batch:
            on_batch(len(chunk))
    store.add_labels(new, choose=(campaign_id, clf_id) if campaign_id else None)
    stand_ins = [e["labeller_version"] for e in effective if e["labeller_version"] != clf_id]
    return {"n": len(rows), "changed": sum(r.label != e["label"] for r, e in zip(rows, effective)),
            "rate_before": _share([r.label for r in rows]), "rate_after": _share([e["label"] for e in effective]),
            "cross_fitted": used_cross_fit, "classifier": clf_id,
            "no_content": sum(e["label"] == NO_CONTENT for e in effective),
            "fallback": len(stand_ins), "fallback_labellers": sorted(set(stand_ins))}


def _share(labels: list) -> float | None:
    labels = [x for x in labels if x is not None and x != NO_CONTENT]
    return sum(x in REFUSING for x in labels) / len(labels) if labels else None


def resolve_labeller(store: Store, campaign_id: str, name: str) -> str:
    """A stored refusal labeller of the campaign named exactly (its labeller_version, e.g. "tfidf:tfidf-8e5b…"), or
    by a part before or after its ":" that names only one; else an error that lists the stored ones."""
    stored = store.refusal_labellers(campaign_id)
    if name in stored:
        return name
    hits = [v for v in stored if name in v.split(":", 1)]
    if len(hits) == 1:
        return hits[0]
    listing = ", ".join(f"{v} ({n} labels)" for v, n in sorted(stored.items())) or "none"
    why = f"'{name}' names {len(hits)} of them" if hits else f"no labeller '{name}'"
    raise ProbeError(f"campaign {campaign_id}: {why}; stored refusal labellers: {listing}")


def agreement(store: Store, campaign_id: str) -> dict:
    """Every refusal labeller the campaign has had (and the person's gold labels), with agreement between every pair
    on the responses both labelled refusal | partial | compliance: share agreeing, Cohen's kappa on the three labels
    and on the binary view (partial counts as refusal), and the confusion matrix (rows: first labeller, columns:
    second, in ORDER). Responses with no content, and a judge's responses it gave no label (filled in by a
    fallback), are left out of its pairs."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    hist = store.label_history(campaign_id)
    gold = store.labels(campaign_id, "gold")
    if gold:
        hist["gold"] = {k: labs["gold"] for k, labs in gold.items()}
    first = {v: min(lab.created_at for lab in rows.values()) for v, rows in hist.items()}
    names = sorted(hist, key=lambda v: (v == "gold", first[v], v))  # in the order they labelled; the person last
    labellers = []
    for v in names:
        labs = [lab.label for lab in hist[v].values()]
        labellers.append({"labeller": v, "responses": len(labs), **{x: labs.count(x) for x in ORDER},
                          NO_CONTENT: labs.count(NO_CONTENT), "no_label": labs.count(None),
                          "fallback": sorted({lab.fallback for lab in hist[v].values() if lab.fallback})})
    pairs = []
    for a, b in combinations(names, 2):
        keys = sorted(k for k, lab in hist[a].items() if lab.label in ORDER and k in hist[b] and hist[b][k].label in ORDER)
        ya, yb = [hist[a][k].label for k in keys], [hist[b][k].label for k in keys]
        pair = {"a": a, "b": b, "n": len(keys), "agreement": None, "kappa": None, "kappa_binary": None,
                "confusion": [[0] * len(ORDER) for _ in ORDER]}
        if keys:
            ba, bb = [x in REFUSING for x in ya], [x in REFUSING for x in yb]
            pair |= {"agreement": sum(x == y for x, y in zip(ya, yb)) / len(keys),
                     "kappa": _kappa(cohen_kappa_score, ya, yb, list(ORDER)),
                     "kappa_binary": _kappa(cohen_kappa_score, ba, bb, [True, False]),
                     "confusion": confusion_matrix(ya, yb, labels=list(ORDER)).tolist()}
        pairs.append(pair)
    return {"campaign": campaign_id, "chosen": store.refusal_labeller(campaign_id), "order": list(ORDER),
            "labellers": labellers, "pairs": pairs,
            "note": "kappa: Cohen's kappa over the responses both labelled refusal | partial | compliance (None when "
                    "undefined: both labellers gave one label throughout); kappa_binary: partial counts as refusal; "
                    "confusion: rows the first labeller (a), columns the second (b), in the order of `order`"}


def _kappa(fn, a: list, b: list, labels: list) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k = float(fn(a, b, labels=labels))
    return k if math.isfinite(k) else None
