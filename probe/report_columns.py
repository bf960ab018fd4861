"""A campaign's survey answers for the report, read column-wise: one streamed select of plain Core rows (no ORM
objects), counted as they pass and the valid answers' vectors packed into numpy arrays.

Only the columns the report needs are read: the item's cell and status, its "answers" label's mode, label, reason
and letter mass, two fields of the response's parameters (extracted by the database with SQLAlchemy's portable
`params[...]` accessors, so the same query runs on SQLite and PostgreSQL) and the stored probability texts, each
distinct text decoded once (a simulator or a text answer repeats a few vectors many times). A grouped count in SQL
was tried first: on SQLite its sort cost more than counting in the one pass. On SQLite, when the campaign holds
most of the store's rows, the three tables are scanned in stored order and joined here by key (_merged) instead of
looked up by key in the database. The cycle collector is off while rows are read. probe.report.collect_rows is the
row-by-row reference the tests compare this with.
"""

from __future__ import annotations

import gc
import json
import queue
import threading
from array import array
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Text, and_, cast, func, select

from probe.store import Store
from probe.store.schema import Item, Label, Response

BATCH = 20_000
SQLITE_CACHE_KB = 262_144  # while streaming: 256 MB of SQLite page cache (the store's default is 64 MB)
PG_WORK_MEM = "256MB"  # while streaming on PostgreSQL: hash joins in memory, not 64 batches on disk
DECODED_KEPT = 100_000  # distinct stored texts kept decoded at once (caches, emptied when full)
MOSTLY = 0.5  # SQLite: scan whole tables when the campaign holds at least this share of their rows (_mostly)
SEP = "\x1f"  # joins model, survey and question in the select (unit separator: in none of them)


@dataclass
class Cell:
    """One (model, survey, question)'s answers: counts, and the valid answers' vectors ordered by sample."""

    codes: list = field(default_factory=list)  # the question's option codes in form order
    decoded: dict = field(default_factory=dict)  # while reading: stored option text -> vector
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


def _stream(conn, qs):
    """(i, rows) batches of the selects qs as the driver gives them (a server-side cursor on PostgreSQL, so rows
    are not all held here), without SQLAlchemy's per-row result processing (a third of the time over a million
    rows); the selects' only parameters are literals. Several selects are read in turn, a batch of each, on one
    connection. A thread fetches the next batches while the caller works on this one: the database's work
    (SQLite's reads run with the GIL released; PostgreSQL's in its server) overlaps the caller's, on two cores."""
    sqls = [str(q.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})) for q in qs]
    raw = conn.connection.driver_connection
    sqlite = conn.dialect.name == "sqlite"
    batches: queue.Queue = queue.Queue(maxsize=3)
    stop = threading.Event()

    def put(x) -> bool:
        while not stop.is_set():
            try:
                batches.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        curs = []
        try:
            if sqlite:  # key lookups (the join) read the key indexes in random order: keep them cached
                raw.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KB}")
            else:  # a cursor is planned for its first rows (nested loops: minutes over a million); plan for all
                # rows, with room for the hash joins (server memory, this transaction only)
                raw.execute("SET LOCAL cursor_tuple_fraction = 1.0")
                raw.execute(f"SET LOCAL work_mem = '{PG_WORK_MEM}'")
            for i, sql in enumerate(sqls):
                cur = raw.cursor() if sqlite else raw.cursor(name=f"probe_report_columns_{i}")
                curs.append(cur)
                cur.execute(sql)
            live = list(range(len(curs)))
            while live:
                for i in list(live):
                    rows = curs[i].fetchmany(BATCH)
                    if not rows:
                        live.remove(i)
                    elif not put((i, rows)):
                        return
            put(None)
        except BaseException as e:  # handed to the caller
            put(e)
        finally:
            for cur in curs:
                cur.close()
            if sqlite:
                raw.execute("PRAGMA cache_size=-65536")  # the store's setting (probe.store._sqlite_pragmas)

    thread = threading.Thread(target=fetch, name="report-columns-fetch", daemon=True)
    thread.start()
    try:
        while (got := batches.get()) is not None:
            if isinstance(got, BaseException):
                raise got
            yield got
    finally:
        stop.set()
        thread.join()


def _merged(conn, items, labels, responses):
    """(item row, response row, label row) for each row of items LEFT JOIN labels LEFT JOIN responses on key (a
    missing one all None), from three selects each led by the key, each read in the table's stored order, joined
    here by key (the rows are handed on whole: no tuples built per row). On SQLite a join looks up each item's label and response by key: an index descent and a row fetch
    per table in random key order (14 s of the report's 25 s of CPU over a million items, no ordering of the scan
    helped); a plain scan reads each table's pages in order (~7 s for the three). Rows written together (an item's
    label and response follow their items) meet within a few batches, so the rows waiting for their partners stay
    few; in the worst case they are the whole campaign. Rows of other campaigns wait until the end, then are
    dropped: the caller scans whole tables only when the campaign holds most of their rows. Order of the rows out
    is not the items' order."""
    no_label, no_response = (None,) * len(labels.selected_columns), (None,) * len(responses.selected_columns)
    waiting_items: dict = {}  # key -> [item row, label row or None, response row or None]
    waiting = ({}, {})  # labels', responses' rows by key, their item not read yet
    for i, rows in _stream(conn, [items, labels, responses]):
        if i == 0:
            lw, rw = waiting
            for row in rows:
                key = row[0]
                lab = lw.pop(key, None)
                resp = rw.pop(key, None)
                if lab is not None and resp is not None:
                    yield row, resp, lab
                else:
                    waiting_items[key] = [row, lab, resp]
        else:
            side = waiting[i - 1]
            for row in rows:
                key = row[0]
                w = waiting_items.get(key)
                if w is None:
                    side[key] = row
                    continue
                w[i] = row
                if w[3 - i] is not None:  # the other one is here too
                    del waiting_items[key]
                    yield w[0], w[2], w[1]
    for w in waiting_items.values():
        yield w[0], w[2] or no_response, w[1] or no_label
def _mostly(conn, campaign_id: str) -> bool:
    """Whether the campaign's items are at least MOSTLY of the labels' and of the responses' rows (by their
    largest rowid, read from the end of each table), so that scanning those whole tables (_merged) reads little
    that is not the campaign's."""
    n = conn.execute(select(func.count()).select_from(Item).where(Item.campaign_id == campaign_id)).scalar()
    tables = [t.__table__.name for t in (Label, Response)]
    most = max(conn.exec_driver_sql(f"SELECT coalesce(max(rowid), 0) FROM {t}").scalar() for t in tables)
    return n > 0 and n >= MOSTLY * most


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
    costs = {} if costs is None else costs
    collecting = gc.isenabled()
    gc.disable()  # the loop makes millions of short-lived tuples: the cycle collector's passes over the growing
    try:  # heap cost 1.5 s (join) to 6 s (_merged) per million rows, and nothing here makes cycles
        return _cells(store, campaign_id, codes, costs)
    finally:
        if collecting:
            gc.enable()


def _cells(store: Store, campaign_id: str, codes: dict[tuple[str, str], list[int]], costs: dict) -> dict[tuple, Cell]:
    by_key: dict[str, Cell] = {}  # model, survey and question joined by SEP (one string per row, one hash)
    letters: dict[str, list] = {}  # stored letter-probability text -> decoded
    drops: dict = {}  # stored dropped-parameter list -> parsed
    kept = 0  # option vectors kept decoded, all questions together
    cell = Item.model + SEP + Item.source + SEP + Item.item_id
    item_cols = (cell, Item.kind, Item.sample, Item.status, Item.model)
    resp_cols = (Response.cost, Response.cached, Response.params["logprobs"].as_string(),
                 Response.params["dropped"].as_string())
    label_cols = (Label.labeller_version, Label.label, Label.reason, Label.letter_mass, cast(Label.option_probs, Text),
                  cast(Label.letter_probs, Text))
    with store.engine.connect() as conn:
        if conn.dialect.name == "sqlite" and _mostly(conn, campaign_id):
            rows = _merged(conn, select(Item.key, *item_cols).where(Item.campaign_id == campaign_id),
                           select(Label.key, *label_cols).where(Label.labeller == "answers"),
                           select(Response.key, *resp_cols))
        else:
            q = (select(Item.key, *item_cols, Item.key, *resp_cols, Item.key, *label_cols)
                 .select_from(Item).outerjoin(Label, and_(Label.key == Item.key, Label.labeller == "answers"))
                 .outerjoin(Response, Response.key == Item.key)
                 .where(Item.campaign_id == campaign_id))
            i, r = 1 + len(item_cols), 2 + len(item_cols) + len(resp_cols)
            rows = ((row[:i], row[i:r], row[r:]) for _, batch in _stream(conn, [q]) for row in batch)
        for ((_, key, kind, sample, status, model), (_, cost, cached, logprobs, dropped),
             (_, version, label, reason, mass, opts, lets)) in rows:
            if status in ("done", "failed") and (cost is not None or cached):  # no response: nothing to add
                m = costs.get(model)
                if m is None:
                    m = costs[model] = [0.0, 0, 0]
                m[0] += cost or 0.0
                m[1] += bool(cached)  # SQLite: 1 or 0
                m[2] += status == "done" and cost is not None and not cached
            if kind != "survey":
                continue
            c = by_key.get(key)
            if c is None:
                _, source, qid = key.split(SEP)
                c = by_key[key] = Cell(codes=codes[(source, qid)])
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
            vec = c.decoded.get(opts)
            if vec is None:
                kept += 1
                if kept > DECODED_KEPT:
                    for other in by_key.values():
                        other.decoded.clear()
                    kept = 1
                probs = json.loads(opts) if opts else {}
                vec = c.decoded[opts] = [float(probs.get(str(code), 0.0)) for code in c.codes]
            lv = letters.get(lets) if lets is not None else None
            if lv is None and lets is not None:
                if len(letters) > DECODED_KEPT:
                    letters.clear()
                lv = letters[lets] = json.loads(lets)
            c.samples.append(sample)
            c.options.extend(vec)
            if c.ragged is None and lv is not None and len(lv) == len(c.codes):
                c.letters.extend(lv)
            else:
                if c.ragged is None:  # from now on keep the vectors as stored (probe.report._letters decides)
                    k = len(c.codes)
                    c.ragged = [list(c.letters[i:i + k]) for i in range(0, len(c.letters), k)]
                c.ragged.append(lv)
    cells = {tuple(key.split(SEP)): c for key, c in by_key.items()}
    for c in cells.values():
        c.decoded = {}
    return cells
