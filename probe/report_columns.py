"""A campaign's survey answers for the report, read column-wise: counts grouped in the database, per-sample
vectors streamed as plain Core rows into numpy arrays (no ORM objects, no per-row dicts kept).

One GROUP BY per (model, survey, question, status, answer mode, label, reason, logprobs asked, parameters dropped)
gives the pending, failed, invalid and how-read counts and the letter-mass sums; one streamed select gives the valid
answers' option and letter probabilities, decoded once per distinct stored text (a simulator or a text answer
repeats a few vectors many times). The same query runs on SQLite and PostgreSQL (JSON fields read with
SQLAlchemy's portable `params[...]` accessors). probe.report.collect_rows is the row-by-row reference the tests
compare this with.
"""

from __future__ import annotations

import json
from array import array
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Text, and_, cast, func, select

from probe.store import Store
from probe.store.schema import Item, Label, Response

BATCH = 20_000
DECODED_KEPT = 200_000  # distinct stored texts kept decoded at once (a cache, emptied when full)


@dataclass
class Cell:
    """One (model, survey, question)'s answers: counts, and the valid answers' vectors ordered by sample."""

    pending: int = 0
    errors: int = 0
    invalid: int = 0
    invalid_reasons: Counter = field(default_factory=Counter)  # stored reason -> answers (unnormalised)
    modes: Counter = field(default_factory=Counter)
    fallback_to_text: int = 0
    dropped: Counter = field(default_factory=Counter)
    mass_sum: float = 0.0
    mass_n: int = 0
    samples: array = field(default_factory=lambda: array("q"))
    options: array = field(default_factory=lambda: array("d"))  # n x k, form order (codes)
    letters: array = field(default_factory=lambda: array("d"))  # n x k when every vector has k entries
    ragged: list | None = None  # letter vectors as stored, when some do not have k entries

    def arrays(self, k: int) -> tuple[np.ndarray, np.ndarray | list]:
        """(options n x k, letters n x k or a list) in sample order."""
        order = np.argsort(np.frombuffer(self.samples, dtype=np.int64), kind="stable")
        x = np.frombuffer(self.options, dtype=float).reshape(-1, k)[order]
        if self.ragged is not None:
            return x, [self.ragged[i] for i in order]
        return x, np.frombuffer(self.letters, dtype=float).reshape(-1, k)[order]


def _truthy(v) -> bool:
    """Python truthiness of a JSON field as the database returns it: PostgreSQL the value's JSON text (->>),
    SQLite the value itself (1 for true)."""
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except ValueError:
            pass
    return bool(v)


def _survey(campaign_id: str):
    return and_(Item.campaign_id == campaign_id, Item.kind == "survey")


def count_rows(store: Store, campaign_id: str):
    """The grouped counts: (model, source, item_id, status, labeller_version, label, reason, logprobs, dropped,
    n, letter-mass sum, letter-mass count)."""
    answers = and_(Label.key == Item.key, Label.labeller == "answers")
    logprobs = Response.params["logprobs"].as_string()
    dropped = Response.params["dropped"].as_string()
    cols = (Item.model, Item.source, Item.item_id, Item.status, Label.labeller_version, Label.label, Label.reason,
            logprobs, dropped)
    q = (select(*cols, func.count(), func.sum(Label.letter_mass), func.count(Label.letter_mass))
         .select_from(Item).outerjoin(Label, answers).outerjoin(Response, Response.key == Item.key)
         .where(_survey(campaign_id)).group_by(*cols))
    with store.engine.connect() as conn:
        return conn.execute(q).all()


def survey_cells(store: Store, campaign_id: str, codes: dict[tuple[str, str], list[int]]) -> dict[tuple, Cell]:
    """(model, survey, question) -> Cell, for every survey question with items. codes: (survey, question) -> its
    option codes in form order."""
    cells: dict[tuple, Cell] = {}
    decoded: dict[str, list] = {}
    for (model, source, qid, status, version, label, reason, logprobs, dropped, n, mass_sum,
         mass_n) in count_rows(store, campaign_id):
        c = cells.setdefault((model, source, qid), Cell())
        if status == "pending":
            c.pending += n
            continue
        if status == "failed" or version is None:
            c.errors += n
            continue
        c.modes[version] += n  # probe.report._how_read, for n answers at once
        drop = json.loads(dropped) if dropped else []
        if version == "text" and (_truthy(logprobs) or "logprobs" in drop):
            c.fallback_to_text += n
        for p in drop or []:
            c.dropped[p] += n
        c.mass_sum += float(mass_sum or 0.0)
        c.mass_n += mass_n
        if label == "invalid":
            c.invalid += n
            c.invalid_reasons[reason] += n
    q = (select(Item.model, Item.source, Item.item_id, Item.sample, cast(Label.option_probs, Text),
                cast(Label.letter_probs, Text))
         .join(Label, and_(Label.key == Item.key, Label.labeller == "answers"))
         .where(_survey(campaign_id), Item.status.not_in(("pending", "failed")),
                Label.label.is_distinct_from("invalid")))
    with store.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(q)
        for model, source, qid, sample, opts, lets in result:
            c = cells[(model, source, qid)]
            cs = codes[(source, qid)]
            if len(decoded) > DECODED_KEPT:
                decoded.clear()
            vec = decoded.get((source, qid, opts))
            if vec is None:
                probs = json.loads(opts) if opts else {}
                vec = decoded[(source, qid, opts)] = [float(probs.get(str(code), 0.0)) for code in cs]
            lv = decoded.get(lets) if lets is not None else None
            if lv is None:
                lv = json.loads(lets) if lets is not None else None
                if lets is not None:
                    decoded[lets] = lv
            c.samples.append(sample)
            c.options.extend(vec)
            if c.ragged is None and lv is not None and len(lv) == len(cs):
                c.letters.extend(lv)
            else:
                if c.ragged is None:  # from now on keep the vectors as stored (probe.report._letters decides)
                    k = len(cs)
                    c.ragged = [list(c.letters[i:i + k]) for i in range(0, len(c.letters), k)]
                c.ragged.append(lv)
    return cells
