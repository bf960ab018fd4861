"""SQLAlchemy store: the source of truth. Writes are upserts on the item key, so a task run twice is harmless."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import islice
from datetime import timedelta

from sqlalchemy import create_engine, delete, event, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from probe import paths
from probe.errors import ProbeError
from probe.store import migrate
from probe.store.schema import CachedResponse, Campaign, Item, Label, Response, utcnow

__all__ = ["Store", "Campaign", "Item", "Label", "Response", "open_store"]

_stores: dict[str, "Store"] = {}


def _upsert(session: Session, table, rows: list[dict], keys: list[str]):
    if not rows:
        return
    dialect = session.bind.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover - other databases: merge one by one
        for r in rows:
            session.merge(table(**r))
        return
    stmt = insert(table.__table__)
    cols = {c: getattr(stmt.excluded, c) for c in rows[0] if c not in keys}
    session.execute(stmt.on_conflict_do_update(index_elements=keys, set_=cols), rows)




class Store:
    def __init__(self, url: str | None = None, upgrade: bool = True):
        self.url = url or paths.default_db_url()
        try:
            self.engine: Engine = create_engine(self.url, **self._engine_args())
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
            if upgrade and not migrate.at_head(self.engine):
                migrate.upgrade(self.engine)
        except (SQLAlchemyError, ModuleNotFoundError, ValueError, OSError) as e:
            raise ProbeError(f"cannot open database {_redact(self.url)}: {str(e).splitlines()[0][:200]}") from None
        self.session = sessionmaker(self.engine, expire_on_commit=False)
        # A forked child (Celery's prefork pool, embedded processes) must never reuse the parent's connections:
        # shared PostgreSQL connections fail with "can't change 'autocommit' now" and worse.
        os.register_at_fork(after_in_child=lambda: self.engine.dispose(close=False))

    def _engine_args(self) -> dict:
        if self.url.startswith("sqlite"):
            return {"connect_args": {"timeout": 60}}
        return {"pool_pre_ping": True, "pool_recycle": 300}

    # -- campaigns ---------------------------------------------------------------------------------------------
    def create_campaign(self, campaign: dict, items: Iterable) -> int:
        """Campaign and all its items in one transaction (nothing half-written), streamed in batches so a
        million-item plan never sits in memory; returns the number of items."""
        n = 0
        with self.session.begin() as s:
            s.add(Campaign(**campaign))
            s.flush()
            it = iter(items)
            while batch := [vars(i) | {"status": "pending", "attempts": 0} for i in islice(it, 5000)]:
                s.execute(insert(Item.__table__), batch)  # a new campaign's keys are new: a plain insert
                n += len(batch)
        return n

    def campaign(self, campaign_id: str) -> Campaign:
        with self.session() as s:
            c = s.get(Campaign, campaign_id)
            if c is None:
                ids = s.scalars(select(Campaign.id).order_by(Campaign.created_at.desc()).limit(5)).all()
                hint = f" (recent: {', '.join(ids)})" if ids else " (the database has no campaigns)"
                raise ProbeError(f"no campaign '{campaign_id}' in {_redact(self.url)}{hint}")
            return c

    def campaigns(self, limit: int = 20) -> list[Campaign]:
        with self.session() as s:
            return list(s.scalars(select(Campaign).order_by(Campaign.created_at.desc()).limit(limit)))

    # -- state ---------------------------------------------------------------------------------------------------
    def set_state(self, campaign_id: str, state: str, reason: str | None = None,
                  only_from: tuple[str, ...] | None = None, mode: str | None = None) -> bool:
        """Move a campaign to `state` (only from `only_from` states when given); True if it moved."""
        values = {"state": state, "state_reason": reason, "updated_at": utcnow()}
        if mode:
            values["mode"] = mode
        with self.session.begin() as s:
            q = update(Campaign).where(Campaign.id == campaign_id)
            if only_from:
                q = q.where(Campaign.state.in_(only_from))
            return s.execute(q.values(**values)).rowcount > 0

    def state(self, campaign_id: str) -> str | None:
        with self.session() as s:
            return s.scalar(select(Campaign.state).where(Campaign.id == campaign_id))

    def state_and_cap(self, campaign_id: str) -> tuple[str | None, float | None]:
        """The campaign's state and its budget (spec max_cost) as stored now: `probe resume --max-cost` moves it."""
        with self.session() as s:
            row = s.execute(select(Campaign.state, Campaign.spec).where(Campaign.id == campaign_id)).first()
            return (row[0], (row[1] or {}).get("max_cost")) if row else (None, None)

    def set_spec_fields(self, campaign_id: str, **fields) -> None:
        with self.session.begin() as s:
            c = s.get(Campaign, campaign_id, with_for_update=True)
            c.spec = dict(c.spec) | fields

    def finish_if_complete(self, campaign_id: str) -> str | None:
        """A running campaign with nothing pending is done (failed when no item succeeded); returns the new state."""
        with self.session.begin() as s:
            if s.scalar(select(Item.key).where(Item.campaign_id == campaign_id, Item.status == "pending").limit(1)):
                return None
            any_done = s.scalar(select(Item.key).where(Item.campaign_id == campaign_id, Item.status == "done").limit(1))
            state, reason = ("done", None) if any_done else ("failed", "every item failed")
            moved = s.execute(update(Campaign).where(Campaign.id == campaign_id, Campaign.state == "running")
                              .values(state=state, state_reason=reason, updated_at=utcnow())).rowcount
            return state if moved else None

    def reset_failed(self, campaign_id: str, everything: bool = False) -> int:
        """Failed items back to pending: those whose last error was transient, or all of them."""
        with self.session.begin() as s:
            q = update(Item).where(Item.campaign_id == campaign_id, Item.status == "failed")
            if not everything:
                transient = select(Response.key).where(Response.key == Item.key, Response.error_kind == "transient")
                q = q.where(transient.exists())
            return s.execute(q.values(status="pending")).rowcount

    def mark_enqueued(self, campaign_id: str) -> None:
        with self.session.begin() as s:
            s.execute(update(Campaign).where(Campaign.id == campaign_id).values(enqueued_at=utcnow()))

    def claim(self, keys: list[str], owner: str, seconds: float) -> set[str]:
        """Lease the pending items that no other live task holds to `owner` until now + seconds; returns the keys
        it holds. Two tasks given the same items (a resume racing old messages, a redelivery) never both run them:
        the row update is atomic, and a second claimer finds the lease taken."""
        now = utcnow()
        until = now + timedelta(seconds=seconds)
        mine: set[str] = set()
        with self.session.begin() as s:
            for i in range(0, len(keys), 2000):
                chunk = keys[i:i + 2000]
                s.execute(update(Item).where(Item.key.in_(chunk), Item.status == "pending",
                                             or_(Item.lease_until.is_(None), Item.lease_until < now,
                                                 Item.lease_owner == owner))
                          .values(lease_until=until, lease_owner=owner))
                mine.update(s.scalars(select(Item.key).where(Item.key.in_(chunk), Item.status == "pending",
                                                             Item.lease_owner == owner)))
        return mine

    def release(self, keys: list[str], owner: str) -> None:
        """Give back `owner`'s lease on items it claimed and did not run (a cancel, a pause, an error), so a
        resume's tasks can claim them at once instead of after the lease runs out."""
        with self.session.begin() as s:
            for i in range(0, len(keys), 2000):
                s.execute(update(Item).where(Item.key.in_(keys[i:i + 2000]), Item.status == "pending",
                                             Item.lease_owner == owner).values(lease_until=None, lease_owner=None))

    def lease(self, keys: list[str], owner: str, seconds: float) -> None:
        """Renew `owner`'s lease on its items while it works on them."""
        until = utcnow() + timedelta(seconds=seconds)
        with self.session.begin() as s:
            for i in range(0, len(keys), 2000):
                s.execute(update(Item).where(Item.key.in_(keys[i:i + 2000]), Item.status == "pending",
                                             Item.lease_owner == owner).values(lease_until=until))

    def unleased_pending(self, campaign_id: str) -> list[str]:
        with self.session() as s:
            now = utcnow()
            q = select(Item.key).where(Item.campaign_id == campaign_id, Item.status == "pending",
                                       or_(Item.lease_until.is_(None), Item.lease_until < now))
            return list(s.scalars(q))

    def campaign_ids(self, state: str, mode: str | None = None) -> list[str]:
        with self.session() as s:
            q = select(Campaign.id).where(Campaign.state == state)
            if mode:
                q = q.where(Campaign.mode == mode)
            return list(s.scalars(q))

    # -- progress and status -------------------------------------------------------------------------------------
    def progress(self, campaign_id: str) -> Counter:
        with self.session() as s:
            rows = s.execute(select(Item.status, func.count()).where(Item.campaign_id == campaign_id).group_by(Item.status))
            return Counter(dict(rows.all()))

    def keys(self, campaign_id: str, status: str | None = "pending") -> list[str]:
        return list(self.iter_keys(campaign_id, status))

    def iter_keys(self, campaign_id: str, status: str | None = "pending", batch: int = 10_000) -> Iterator[str]:
        """Item keys in plan order, streamed from the database in batches."""
        with self.session() as s:
            q = select(Item.key).where(Item.campaign_id == campaign_id)
            if status:
                q = q.where(Item.status == status)
            q = q.order_by(Item.model, Item.source, Item.item_id, Item.sample).execution_options(yield_per=batch)
            yield from s.scalars(q)

    def progress_by(self, campaign_id: str) -> list[tuple[str, str, str, str, int]]:
        """(model, kind, source, status, count) rows; an index-only scan of ix_items_campaign_progress."""
        with self.session() as s:
            q = (select(Item.model, Item.kind, Item.source, Item.status, func.count())
                 .where(Item.campaign_id == campaign_id).group_by(Item.model, Item.kind, Item.source, Item.status))
            return [tuple(r) for r in s.execute(q)]

    def progress_many(self, campaign_ids: list[str]) -> dict[str, Counter]:
        out: dict[str, Counter] = {c: Counter() for c in campaign_ids}
        with self.session() as s:
            q = (select(Item.campaign_id, Item.status, func.count()).where(Item.campaign_id.in_(campaign_ids))
                 .group_by(Item.campaign_id, Item.status))
            for cid, status, n in s.execute(q):
                out[cid][status] = n
        return out

    def costs(self, campaign_ids: list[str]) -> dict[str, dict[str, float]]:
        """Cost so far per campaign and model (LiteLLM's figure per response; None counts as 0)."""
        out: dict[str, dict[str, float]] = {c: {} for c in campaign_ids}
        with self.session() as s:
            # only finished items carry a cost: an index range, not every pending item of a big campaign
            q = (select(Item.campaign_id, Item.model, func.sum(Response.cost)).join(Response, Response.key == Item.key)
                 .where(Item.campaign_id.in_(campaign_ids), Item.status.in_(("done", "failed")))
                 .group_by(Item.campaign_id, Item.model))
            for cid, model, cost in s.execute(q):
                out[cid][model] = float(cost or 0.0)
        return out

    def cost_total(self, campaign_id: str) -> float:
        return sum(self.costs([campaign_id])[campaign_id].values())

    def cached_counts(self, campaign_ids: list[str]) -> dict[str, int]:
        """Responses served from the response cache, per campaign."""
        out = dict.fromkeys(campaign_ids, 0)
        with self.session() as s:
            q = (select(Item.campaign_id, func.count()).join(Response, Response.key == Item.key)
                 .where(Item.campaign_id.in_(campaign_ids), Item.status == "done", Response.cached.is_(True))
                 .group_by(Item.campaign_id))
            out.update(dict(s.execute(q).all()))
        return out

    def failures(self, campaign_id: str) -> list[tuple[str, str, int]]:
        """(error kind, first error, count) over failed items. Transient failures are retried in the task and
        stored only once an item gives up, so pending items hold no errors: reading only failed items is an index
        range on ix_items_campaign_status, however many items are pending or done."""
        with self.session() as s:
            q = (select(Response.error_kind, Response.error).join(Item, Item.key == Response.key)
                 .where(Item.campaign_id == campaign_id, Item.status == "failed", Response.error.is_not(None)))
            groups: dict[tuple[str, str], list] = {}
            for kind, error in s.execute(q):
                cls = (error or "").split(":", 1)[0][:80]
                g = groups.setdefault((kind or "unknown", cls), [error, 0])
                g[1] += 1
            return sorted(((k, e, n) for (k, _), (e, n) in groups.items()), key=lambda r: -r[2])

    def done_since(self, campaign_id: str, seconds: float) -> int:
        """Responses stored in the last `seconds` (throughput), through the responses.created_at index: the recent
        responses are read and each one's item checked (EXISTS), never the campaign's items (a join let SQLite,
        without statistics, walk all of a million-item campaign's items to probe responses for each)."""
        with self.session() as s:
            since = utcnow() - timedelta(seconds=seconds)
            mine = select(Item.key).where(Item.key == Response.key, Item.campaign_id == campaign_id).exists()
            q = select(func.count()).select_from(Response).where(Response.created_at >= since, mine)
            return s.scalar(q) or 0

    def first_error(self, campaign_id: str) -> str | None:
        with self.session() as s:
            return s.scalar(select(Response.error).join(Item, Item.key == Response.key)
                            .where(Item.campaign_id == campaign_id, Response.error.is_not(None)).limit(1))

    def items(self, keys: list[str]) -> list[Item]:
        with self.session() as s:
            return list(s.scalars(select(Item).where(Item.key.in_(keys))))

    # -- results -----------------------------------------------------------------------------------------------
    def save_results(self, results: list[dict]) -> None:
        """Each result: {key, status, attempts, response: {...}, labels: [{...}], cache: {...}?}; one transaction
        for all. `cache` (probe.cache.entry) adds the answer to the response cache in the same transaction."""
        if not results:
            return
        with self.session.begin() as s:
            _upsert(s, Response, [{"cached": False} | r["response"] | {"key": r["key"]} for r in results], ["key"])
            cache = list({r["cache"]["key"]: r["cache"] for r in results if r.get("cache")}.values())
            _upsert(s, CachedResponse, cache, ["key"])
            _write_labels(s, [lab | {"key": r["key"]} for r in results for lab in r.get("labels", [])])
            for status in {r["status"] for r in results}:
                keys = [r["key"] for r in results if r["status"] == status]
                s.execute(update(Item).where(Item.key.in_(keys)).values(status=status, attempts=Item.attempts + 1))

    def rows(self, campaign_id: str, kind: str | tuple[str, ...] | None = None):
        """(Item, Response | None) rows for reports; kind: one item kind or several."""
        with self.session() as s:
            q = (select(Item, Response).outerjoin(Response, Response.key == Item.key)
                 .where(Item.campaign_id == campaign_id))
            if kind:
                q = q.where(Item.kind.in_((kind,) if isinstance(kind, str) else kind))
            return s.execute(q).all()

    def labels(self, campaign_id: str, labeller: str | None = None,
               refusal_version: str | None = None, kinds: tuple[str, ...] | None = None) -> dict[str, dict[str, Label]]:
        """key -> labeller -> Label (of the items of those kinds when given). Refusal labels ("refusal") are one
        labeller's: `refusal_version`, by default the campaign's chosen one (refusal_labeller); where that labeller
        gave no label and names a fallback (an LLM judge whose call failed), the fallback's row stands in, so its
        labeller_version says who labelled."""
        if labeller in (None, REFUSAL):
            refusal_version = refusal_version or self.refusal_labeller(campaign_id)
        with self.session() as s:
            q = select(Label).join(Item, Item.key == Label.key).where(Item.campaign_id == campaign_id)
            if kinds:
                q = q.where(Item.kind.in_(kinds))
            if labeller:
                q = q.where(Label.labeller == labeller)
            q = q.where(or_(Label.labeller != REFUSAL, Label.labeller_version == refusal_version))
            out: dict[str, dict[str, Label]] = {}
            stand_in: dict[str, list[str]] = {}  # fallback version -> keys
            for lab in s.scalars(q):
                out.setdefault(lab.key, {})[lab.labeller] = lab
                if lab.labeller == REFUSAL and lab.label is None and lab.fallback:
                    stand_in.setdefault(lab.fallback, []).append(lab.key)
            for version, keys in stand_in.items():
                for i in range(0, len(keys), 2000):
                    q = select(Label).where(Label.key.in_(keys[i:i + 2000]), Label.labeller == REFUSAL,
                                            Label.labeller_version == version)
                    for lab in s.scalars(q):
                        out[lab.key][REFUSAL] = lab
            return out

    def label_history(self, campaign_id: str) -> dict[str, dict[str, Label]]:
        """Every refusal labeller's labels: labeller_version -> key -> Label (rows as stored, fallbacks unresolved)."""
        with self.session() as s:
            q = (select(Label).join(Item, Item.key == Label.key)
                 .where(Item.campaign_id == campaign_id, Label.labeller == REFUSAL))
            out: dict[str, dict[str, Label]] = {}
            for lab in s.scalars(q):
                out.setdefault(lab.labeller_version, {})[lab.key] = lab
            return out

    def refusal_labellers(self, campaign_id: str) -> dict[str, int]:
        """labeller_version -> number of refusal labels stored for the campaign's responses."""
        with self.session() as s:
            q = (select(Label.labeller_version, func.count()).join(Item, Item.key == Label.key)
                 .where(Item.campaign_id == campaign_id, Label.labeller == REFUSAL).group_by(Label.labeller_version))
            return dict(s.execute(q).all())

    def refusal_labeller(self, campaign_id: str) -> str | None:
        """The refusal labeller a report reads: the campaign's choice; without one, the labeller of most labels."""
        with self.session() as s:
            chosen = s.scalar(select(Campaign.refusal_labeller).where(Campaign.id == campaign_id))
        if chosen:
            return chosen
        counts = self.refusal_labellers(campaign_id)
        return max(sorted(counts), key=counts.get) if counts else None

    def set_refusal_labeller(self, campaign_id: str, version: str) -> None:
        with self.session.begin() as s:
            s.execute(update(Campaign).where(Campaign.id == campaign_id).values(refusal_labeller=version))

    def add_labels(self, labels: list[dict], choose: tuple[str, str] | None = None) -> None:
        """Store label rows (one transaction); with choose=(campaign id, labeller_version), also make that the
        campaign's refusal labeller, in the same transaction."""
        with self.session.begin() as s:
            _write_labels(s, labels)
            if choose:
                s.execute(update(Campaign).where(Campaign.id == choose[0]).values(refusal_labeller=choose[1]))


REFUSAL = "refusal"  # the labeller of refusal-probe labels (probe.labelling.LABELLER); one row per version
SINGLE = ("answers", "gold", "individual")  # labellers with one row per item: a new version replaces the old
LABEL_COLUMNS = ("labeller", "labeller_version", "label", "option_code", "option_probs", "letter_probs", "p_refusal",
                 "letter_mass", "reason", "fallback", "turns")


def _write_labels(session: Session, labels: list[dict]) -> None:
    """Upsert label rows on (key, labeller, labeller_version); every column is written (a missing one as None), so a
    row rewritten is the new row whole. A survey answer or a person's gold label replaces the item's earlier one
    whatever its version; refusal labellers' rows accumulate side by side."""
    if not labels:
        return
    rows = list({(lab["key"], lab["labeller"], lab["labeller_version"]): {"key": lab["key"], **{c: lab.get(c) for c in
                LABEL_COLUMNS}} for lab in labels}.values())  # the last of duplicates (one upsert cannot take two)
    groups: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        if r["labeller"] in SINGLE:
            groups.setdefault((r["labeller"], r["labeller_version"]), []).append(r["key"])
    for (labeller, version), keys in groups.items():
        for i in range(0, len(keys), 2000):
            session.execute(delete(Label).where(Label.key.in_(keys[i:i + 2000]), Label.labeller == labeller,
                                                Label.labeller_version != version))
    _upsert(session, Label, rows, ["key", "labeller", "labeller_version"])


def _sqlite_pragmas(dbapi_conn, _):
    import sqlite3
    import time

    cur = dbapi_conn.cursor()
    # WAL: readers (progress polling) never block the writers. Switching a new file to WAL takes its lock without
    # waiting on the busy timeout, so processes opening a new store together (a worker and `probe run`) can get
    # "database is locked" here: retry, since once one has switched the file the others find it in WAL.
    deadline = time.monotonic() + 60
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.execute("PRAGMA cache_size=-65536")  # 64 MB: a million-item insert touches index pages all over
    cur.close()


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def open_store(url: str | None = None) -> Store:
    """One Store (engine and pool) per URL per process."""
    key = url or paths.default_db_url()
    if key not in _stores:
        _stores[key] = Store(key)
    return _stores[key]
