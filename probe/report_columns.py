"""A campaign's survey answers for the report, read column-wise: one streamed select of plain Core rows (no ORM
objects), counted as they pass and the valid answers' vectors packed into numpy arrays.

Only the columns the report needs are read: the item's cell and status, its "answers" label's mode, label, reason
and letter mass, two fields of the response's parameters (extracted by the database with SQLAlchemy's portable
`params[...]` accessors, so the same query runs on SQLite and PostgreSQL) and the stored probability texts, each
distinct text decoded once (a simulator or a text answer repeats a few vectors many times). A grouped count in SQL
was tried first: on SQLite its sort cost more than counting in the one pass. probe.report.collect_rows is the
row-by-row reference the tests compare this with.
"""

from __future__ import annotations

import json
from array import array
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Text, and_, cast, select

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


def _stream(conn, q):
    """q's rows as the driver gives them (a server-side cursor on PostgreSQL), in batches, without SQLAlchemy's
    per-row result processing (a third of the time over a million rows); q's only parameters are literals."""
    sql = str(q.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    raw = conn.connection.driver_connection
    cur = raw.cursor(name="probe_report_columns") if conn.dialect.name == "postgresql" else raw.cursor()
    try:
        cur.execute(sql)
        while rows := cur.fetchmany(BATCH):
            yield from rows
    finally:
        cur.close()


def _truthy(v) -> bool:
    """Python truthiness of a JSON field as the database returns it: PostgreSQL the value's JSON text (->>),
    SQLite the value itself (1 for true)."""
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except ValueError:
            pass
    return bool(v)


def survey_cells(store: Store, campaign_id: str, codes: dict[tuple[str, str], list[int]],
                 costs: dict | None = None) -> dict[tuple, Cell]:
    """(model, survey, question) -> Cell, for every survey question with items. codes: (survey, question) -> its
    option codes in form order. One streamed select over the campaign's items, their "answers" label and their
    response's logprobs and dropped parameters; counts as probe.report.collect_rows and _how_read make them.
    costs: filled with model -> [cost, cached, paid] over every finished item (any kind), the figures of
    probe.spend.summary's cost query, so the report does not join the responses a second time. (Two threads
    reading two halves of the items were tried: on a busy 2-core machine they took more CPU and more time.)"""
    cells: dict[tuple, Cell] = {}
    decoded: dict = {}  # stored text -> its vector (options: per survey and question)
    drops: dict = {}  # stored dropped-parameter list -> parsed
    costs = {} if costs is None else costs
    q = (select(Item.model, Item.kind, Item.source, Item.item_id, Item.sample, Item.status, Response.cost,
                Response.cached, Label.labeller_version, Label.label, Label.reason, Label.letter_mass,
                Response.params["logprobs"].as_string(), Response.params["dropped"].as_string(),
                cast(Label.option_probs, Text), cast(Label.letter_probs, Text))
         .select_from(Item).outerjoin(Label, and_(Label.key == Item.key, Label.labeller == "answers"))
         .outerjoin(Response, Response.key == Item.key)
         .where(Item.campaign_id == campaign_id))
    with store.engine.connect() as conn:
        for (model, kind, source, qid, sample, status, cost, cached, version, label, reason, mass, logprobs, dropped,
             opts, lets) in _stream(conn, q):
            if status in ("done", "failed") and (cost is not None or cached):  # no response: nothing to add
                m = costs.get(model)
                if m is None:
                    m = costs[model] = [0.0, 0, 0]
                m[0] += cost or 0.0
                m[1] += bool(cached)  # SQLite: 1 or 0
                m[2] += status == "done" and cost is not None and not cached
            if kind != "survey":
                continue
            c = cells.get((model, source, qid))
            if c is None:
                c = cells[(model, source, qid)] = Cell()
            if status == "pending":
                c.pending += 1
                continue
            if status == "failed" or version is None:
                c.errors += 1
                continue
            c.modes[version] += 1
            drop = drops.get(dropped)
            if drop is None:
                drop = drops[dropped] = (json.loads(dropped) if dropped else None) or []
            if version == "text" and ("logprobs" in drop or _truthy(logprobs)):
                c.fallback_to_text += 1
            for p in drop:
                c.dropped[p] += 1
            if mass is not None:
                c.mass_sum += mass
                c.mass_n += 1
            if label == "invalid":
                c.invalid += 1
                c.invalid_reasons[reason] += 1
                continue
            cs = codes[(source, qid)]
            if len(decoded) > DECODED_KEPT:
                decoded.clear()
            vec = decoded.get((source, qid, opts))
            if vec is None:
                probs = json.loads(opts) if opts else {}
                vec = decoded[(source, qid, opts)] = [float(probs.get(str(code), 0.0)) for code in cs]
            lv = decoded.get(lets) if lets is not None else None
            if lv is None and lets is not None:
                lv = decoded[lets] = json.loads(lets)
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
