"""Expand a campaign spec into work items: one per (model, item, sample), with a deterministic key,
a seed derived from (campaign seed, model, item, sample) and, for survey items, the option order shown."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from probe import probesets, questionnaires
from probe.questionnaires import Question
from probe.spec import CampaignSpec, Ordering


INDIVIDUAL = "individual"  # the item id of a whole-questionnaire item


@dataclass(frozen=True)
class WorkItem:
    key: str
    campaign_id: str
    model: str
    kind: str  # "survey" | "refusal" | "individual" (a whole questionnaire in one conversation)
    source: str  # questionnaire or prompt-set name
    item_id: str  # question id or prompt id
    sample: int
    seed: int
    permutation: list[int] | None = field(default=None)  # option codes in the order shown


def _digest(*parts) -> bytes:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()


def item_key(campaign_id: str, model: str, kind: str, source: str, item_id: str, sample: int) -> str:
    return _digest(campaign_id, model, kind, source, item_id, sample).hex()[:32]


def item_seed(seed: int, model: str, kind: str, source: str, item_id: str, sample: int) -> int:
    """Independent of the campaign id, so the same --seed reproduces the same orders and model seeds."""
    return int.from_bytes(_digest(seed, model, kind, source, item_id, sample)[:4], "big") & 0x7FFFFFFF


def permutation(question: Question, ordering: Ordering, seed: int) -> list[int]:
    """Option codes in display order. Anchored options keep their form position; the others move."""
    codes = question.codes
    free_pos = [i for i, c in enumerate(codes) if c not in question.anchored]
    free = [codes[i] for i in free_pos]
    if ordering == "random":
        random.Random(seed).shuffle(free)
    elif ordering == "reversed":
        free.reverse()
    out = list(codes)
    for pos, code in zip(free_pos, free):
        out[pos] = code
    return out


def _sources(spec: CampaignSpec, surveys: dict | None, sets: dict | None):
    """The questionnaires and prompt sets to plan from: given (a campaign's stored content), or from disk."""
    return (list(surveys.values()) if surveys is not None else [questionnaires.load(n) for n in spec.surveys],
            list(sets.values()) if sets is not None else [probesets.load(n) for n in spec.refusals])


def count(spec: CampaignSpec, surveys: dict | None = None, sets: dict | None = None) -> int:
    qs, ps = _sources(spec, surveys, sets)
    per_model = sum(1 if spec.survey_mode == "individuals" else len(q.questions) for q in qs)
    per_model += sum(len(p.prompts) for p in ps)
    return per_model * spec.samples * len(spec.models)


def expand(spec: CampaignSpec, campaign_id: str) -> list[WorkItem]:
    return list(iter_items(spec, campaign_id))


def iter_items(spec: CampaignSpec, campaign_id: str, surveys: dict | None = None,
               sets: dict | None = None) -> Iterator[WorkItem]:
    """The campaign's work items in plan order, one at a time (a million-item plan never sits in memory)."""
    qs, pss = _sources(spec, surveys, sets)
    for m in spec.models:
        for q in qs:
            if spec.survey_mode == "individuals":  # each turn's answer order derives from the item's seed
                for s in range(spec.samples):
                    yield WorkItem(
                        key=item_key(campaign_id, m.id, "individual", q.name, INDIVIDUAL, s),
                        campaign_id=campaign_id, model=m.id, kind="individual", source=q.name, item_id=INDIVIDUAL,
                        sample=s, seed=item_seed(spec.seed, m.id, "individual", q.name, INDIVIDUAL, s))
                continue
            for question in q.questions:
                for s in range(spec.samples):
                    seed = item_seed(spec.seed, m.id, "survey", q.name, question.id, s)
                    yield WorkItem(
                        key=item_key(campaign_id, m.id, "survey", q.name, question.id, s),
                        campaign_id=campaign_id, model=m.id, kind="survey", source=q.name,
                        item_id=question.id, sample=s, seed=seed,
                        permutation=permutation(question, spec.ordering, seed),
                    )
        for ps in pss:
            for prompt in ps.prompts:
                for s in range(spec.samples):
                    yield WorkItem(
                        key=item_key(campaign_id, m.id, "refusal", ps.name, prompt.id, s),
                        campaign_id=campaign_id, model=m.id, kind="refusal", source=ps.name,
                        item_id=prompt.id, sample=s,
                        seed=item_seed(spec.seed, m.id, "refusal", ps.name, prompt.id, s),
                    )
