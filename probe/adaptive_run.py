"""`probe run --target-ci W --max-samples N`: a campaign sampled in rounds until every cell's anytime-valid interval
(probe.confseq) has half-width <= W or the cell has N samples; probe.adaptive decides each round's allocation.

Cells: (model, survey question), whose statistics are the option shares (each sample's option probabilities), and
(model, prompt set, refusal category), whose statistic is the refusal rate. A survey cell's samples are i.i.d. (a
fresh seeded answer order each); its stream is ordered by sample index, which continues across rounds. A refusal
category's samples are draws of one of its prompts uniformly at random (keyed by the draw index t, which is the
item's sample index), so its stream is i.i.d. with the category's mean refusal rate: the confidence sequence's
condition. The first round is `--samples` per cell (a survey question's samples, a category's draws). Items join
the campaign with deterministic keys, so a repeated round adds nothing twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator

from sqlalchemy import select, update

from probe import adaptive, campaigns, plan
from probe.plan import WorkItem
from probe.spec import CampaignSpec
from probe.store import Store
from probe.store.schema import Campaign, Item

REFUSED = ("refusal", "partial")
METHOD = ("hedged betting confidence sequence (Waudby-Smith & Ramdas 2024) with predictable plug-in bets, 95%, "
          "anytime-valid, so the interval holds at the data-dependent stopping time; allocation: each round's samples "
          "go to the cells short of the target in proportion to their projected shortfall n((w/target)^2 - 1), "
          "i.e. to their estimated variance (Neyman-style)")


def _draw(spec: CampaignSpec, model: str, pset: str, category: str, t: int, prompts: list) -> object:
    return prompts[plan.item_seed(spec.seed, model, "draw", pset, category, t) % len(prompts)]


def _categories(ps) -> dict[str, list]:
    by: dict[str, list] = defaultdict(list)
    for p in ps.prompts:
        by[p.category].append(p)
    return dict(sorted(by.items()))


def _survey_items(spec, cid, model, q, question, start, count) -> Iterator[WorkItem]:
    for s in range(start, start + count):
        seed = plan.item_seed(spec.seed, model, "survey", q.name, question.id, s)
        yield WorkItem(key=plan.item_key(cid, model, "survey", q.name, question.id, s), campaign_id=cid, model=model,
                       kind="survey", source=q.name, item_id=question.id, sample=s, seed=seed,
                       permutation=plan.permutation(question, spec.ordering, seed))


def _refusal_items(spec, cid, model, ps, category, prompts, start, count) -> Iterator[WorkItem]:
    for t in range(start, start + count):
        p = _draw(spec, model, ps.name, category, t, prompts)
        yield WorkItem(key=plan.item_key(cid, model, "refusal", ps.name, p.id, t), campaign_id=cid, model=model,
                       kind="refusal", source=ps.name, item_id=p.id, sample=t,
                       seed=plan.item_seed(spec.seed, model, "refusal", ps.name, p.id, t))


def items(spec: CampaignSpec, cid: str, surveys: dict, sets: dict, wanted: dict[tuple, tuple[int, int]]
          ) -> Iterator[WorkItem]:
    """Work items for cells: wanted maps a cell key to (first sample index, how many); None = the first round."""
    for m in spec.models:
        for q in surveys.values():
            for question in q.questions:
                key = (m.id, "survey", q.name, question.id)
                if key in wanted:
                    yield from _survey_items(spec, cid, m.id, q, question, *wanted[key])
        for ps in sets.values():
            for cat, prompts in _categories(ps).items():
                key = (m.id, "refusal", ps.name, cat)
                if key in wanted:
                    yield from _refusal_items(spec, cid, m.id, ps, cat, prompts, *wanted[key])


def all_cells(spec: CampaignSpec, surveys: dict, sets: dict) -> list[tuple]:
    return ([(m.id, "survey", q.name, question.id) for m in spec.models for q in surveys.values()
             for question in q.questions]
            + [(m.id, "refusal", ps.name, cat) for m in spec.models for ps in sets.values() for cat in _categories(ps)])


def create(store: Store, spec: CampaignSpec, mode: str) -> tuple[str, int]:
    """campaigns.create for an adaptive campaign: the same record, with the first round's items."""
    content = campaigns.validate(spec)
    cid = campaigns.new_id()
    surveys, sets = campaigns.surveys_from(content), campaigns.probesets_from(content)
    first = {c: (0, spec.samples) for c in all_cells(spec, surveys, sets)}
    n = store.create_campaign(
        {"id": cid, "spec": spec.model_dump(mode="json"), "prompt_hashes": campaigns.hashes_of(content),
         "content": content, "code_revision": campaigns.code_revision(),
         "package_versions": campaigns.package_versions(), "n_items": len(first) * spec.samples, "mode": mode,
         "refusal_labeller": campaigns._default_labeller() if spec.refusals else None},
        items(spec, cid, surveys, sets, first))
    return cid, n


def observe(store: Store, cid: str, spec: CampaignSpec) -> tuple[dict[tuple, adaptive.Cell], dict[tuple, int]]:
    """(cells with their confidence sequences fed in stream order, planned items per cell). Failed calls, invalid
    answers and responses with no content are left out of the streams (counted in the report's own figures)."""
    surveys, sets = campaigns.prompts_of(store.campaign(cid))
    labels = store.labels(cid)
    streams: dict[tuple, list] = defaultdict(list)
    planned: dict[tuple, int] = defaultdict(int)
    for item, _resp in store.rows(cid):
        if item.kind == "survey":
            key = (item.model, "survey", item.source, item.item_id)
            lab = labels.get(item.key, {}).get("answers")
            q = surveys[item.source].question(item.item_id)
            obs = ([lab.option_probs.get(str(c), 0.0) for c in q.codes]
                   if item.status == "done" and lab is not None and lab.label != "invalid" else None)
        else:
            key = (item.model, "refusal", item.source, sets[item.source].prompt(item.item_id).category)
            lab = labels.get(item.key, {}).get("refusal")
            obs = (float(lab.label in REFUSED) if item.status == "done" and lab is not None
                   and lab.label not in (None, "no_content") else None)
        planned[key] += 1
        streams[key].append((item.sample, obs))
    cells = {}
    for key in all_cells(spec, surveys, sets):
        k = len(surveys[key[2]].question(key[3]).codes) if key[1] == "survey" else 1
        cell = cells[key] = adaptive.Cell(key, k=k)
        rows = [o for _, o in sorted(streams.get(key, []), key=lambda t: t[0]) if o is not None]
        if rows:
            cell.update(rows)
    return cells, dict(planned)


def add_round(store: Store, cid: str, spec: CampaignSpec, alloc: dict[tuple, int], planned: dict[tuple, int]) -> int:
    """Insert the round's items (sample indices continuing each cell's) and reopen the campaign; returns how many."""
    surveys, sets = campaigns.prompts_of(store.campaign(cid))
    wanted = {key: (planned.get(key, 0), n) for key, n in alloc.items()}
    new = [vars(i) | {"status": "pending", "attempts": 0} for i in items(spec, cid, surveys, sets, wanted)]
    with store.session.begin() as s:
        have = set()
        for i in range(0, len(new), 500):
            have |= set(s.scalars(select(Item.key).where(Item.key.in_([r["key"] for r in new[i:i + 500]]))))
        rows = [r for r in new if r["key"] not in have]
        if rows:
            s.execute(Item.__table__.insert(), rows)
            c = s.get(Campaign, cid)
            s.execute(update(Campaign).where(Campaign.id == cid).values(n_items=c.n_items + len(rows)))
    if rows:
        store.set_state(cid, "running", None, only_from=("done", "failed"))
    return len(rows)


def run_rounds(store: Store, cid: str, spec: CampaignSpec, run_once: Callable[[], None],
               say: Callable[[str], None] = lambda s: None) -> dict:
    """After the first round has run: allocate, add, run, until no cell wants more; returns summary()."""
    cap = spec.max_samples or adaptive.DEFAULT_CAP
    for r in range(2, 10_000):
        if store.state(cid) not in ("running", "done"):  # paused or cancelled: stop deciding
            break
        cells, planned = observe(store, cid, spec)
        alloc = adaptive.allocate(list(cells.values()), spec.target_ci, cap)
        alloc = {k: min(n, cap - planned.get(k, 0)) for k, n in alloc.items() if cap - planned.get(k, 0) > 0}
        if not alloc:
            break
        n = add_round(store, cid, spec, alloc, planned)
        say(f"round {r}: {n} more samples for {len(alloc)} of {len(cells)} cells still wider than "
            f"+/-{spec.target_ci:g}")
        if n == 0:
            break
        run_once()
    return summary(store, cid, spec)


def summary(store: Store, cid: str, spec: CampaignSpec) -> dict:
    """The report's `adaptive` section: the method, and per cell the samples used and the final half-width."""
    cells, planned = observe(store, cid, spec)
    cap = spec.max_samples or adaptive.DEFAULT_CAP
    out = []
    for key, c in cells.items():
        model, kind, source, cell = key
        s = c.summary()
        out.append({"model": model, "kind": kind, "source": source, "cell": cell, "samples": planned.get(key, 0),
                    "observed": int(s["n"]), "half_width": float(s["half_width"]), "estimate": s["estimate"],
                    "interval": [[float(x) for x in i] for i in s["interval"]] if c.k > 1 else
                    [float(x) for x in s["interval"]], "met_target": bool(s["half_width"] <= spec.target_ci),
                    "at_cap": planned.get(key, 0) >= cap})
    return {"method": METHOD, "target_ci": spec.target_ci, "max_samples": cap, "cells": out,
            "cells_meeting_target": sum(x["met_target"] for x in out), "calls": sum(planned.values())}
