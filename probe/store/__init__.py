"""SQLAlchemy store: the source of truth. Writes are upserts on the item key, so a task run twice is harmless."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict

from sqlalchemy import create_engine, event, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from probe import paths
from probe.errors import ProbeError
from probe.store.schema import Base, Campaign, Item, Label, Response

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
    def __init__(self, url: str | None = None):
        self.url = url or paths.default_db_url()
        try:
            self.engine: Engine = create_engine(self.url, **self._engine_args())
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
            Base.metadata.create_all(self.engine)
        except (SQLAlchemyError, ModuleNotFoundError, ValueError) as e:
            raise ProbeError(f"cannot open database {_redact(self.url)}: {str(e).splitlines()[0][:200]}") from None
        self.session = sessionmaker(self.engine, expire_on_commit=False)

    def _engine_args(self) -> dict:
        if self.url.startswith("sqlite"):
            return {"connect_args": {"timeout": 60}}
        return {"pool_pre_ping": True}

    # -- campaigns ---------------------------------------------------------------------------------------------
    def create_campaign(self, campaign: dict, items: list) -> None:
        """Campaign and all its items in one transaction: nothing half-written."""
        with self.session.begin() as s:
            s.add(Campaign(**campaign))
            s.flush()
            rows = [asdict(i) for i in items]
            for i in range(0, len(rows), 5000):
                _upsert(s, Item, rows[i:i + 5000], ["key"])

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

    def progress(self, campaign_id: str) -> Counter:
        with self.session() as s:
            rows = s.execute(select(Item.status, func.count()).where(Item.campaign_id == campaign_id).group_by(Item.status))
            return Counter(dict(rows.all()))

    def keys(self, campaign_id: str, status: str | None = "pending") -> list[str]:
        with self.session() as s:
            q = select(Item.key).where(Item.campaign_id == campaign_id)
            if status:
                q = q.where(Item.status == status)
            return list(s.scalars(q.order_by(Item.model, Item.source, Item.item_id, Item.sample)))

    def first_error(self, campaign_id: str) -> str | None:
        with self.session() as s:
            return s.scalar(select(Response.error).join(Item, Item.key == Response.key)
                            .where(Item.campaign_id == campaign_id, Response.error.is_not(None)).limit(1))

    def items(self, keys: list[str]) -> list[Item]:
        with self.session() as s:
            return list(s.scalars(select(Item).where(Item.key.in_(keys))))

    # -- results -----------------------------------------------------------------------------------------------
    def save_results(self, results: list[dict]) -> None:
        """Each result: {key, status, attempts, response: {...}, labels: [{...}]}; one transaction for all."""
        if not results:
            return
        with self.session.begin() as s:
            _upsert(s, Response, [r["response"] | {"key": r["key"]} for r in results], ["key"])
            labels = [lab | {"key": r["key"]} for r in results for lab in r.get("labels", [])]
            _upsert(s, Label, labels, ["key", "labeller"])
            for status in {r["status"] for r in results}:
                keys = [r["key"] for r in results if r["status"] == status]
                s.execute(update(Item).where(Item.key.in_(keys)).values(status=status, attempts=Item.attempts + 1))

    def rows(self, campaign_id: str, kind: str | None = None):
        """(Item, Response | None, Label | None for the given labeller) rows for reports."""
        with self.session() as s:
            q = (select(Item, Response).outerjoin(Response, Response.key == Item.key)
                 .where(Item.campaign_id == campaign_id))
            if kind:
                q = q.where(Item.kind == kind)
            return s.execute(q).all()

    def labels(self, campaign_id: str, labeller: str | None = None) -> dict[str, dict[str, Label]]:
        with self.session() as s:
            q = select(Label).join(Item, Item.key == Label.key).where(Item.campaign_id == campaign_id)
            if labeller:
                q = q.where(Label.labeller == labeller)
            out: dict[str, dict[str, Label]] = {}
            for lab in s.scalars(q):
                out.setdefault(lab.key, {})[lab.labeller] = lab
            return out

    def add_labels(self, labels: list[dict]) -> None:
        with self.session.begin() as s:
            _upsert(s, Label, labels, ["key", "labeller"])


def _sqlite_pragmas(dbapi_conn, _):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers (progress polling) never block the writers
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=60000")
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
