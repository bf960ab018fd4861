"""Schema migrations (Alembic), applied when a store opens and by `probe db upgrade`, race-free.

Concurrent openers of a new database (a worker and `probe run`, or several workers starting together) take
one lock before migrating: a PostgreSQL advisory lock, or an exclusive file lock beside a SQLite file. The
first migrates; the others find the schema at head and go on. A store made by `create_all` before
migrations existed is stamped at the baseline revision, then upgraded.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"
# The newest revision, so that opening a store already at head is one query with no Alembic import (~0.2 s of
# every command's start); tests/unit/test_migrations.py checks it against the scripts.
HEAD = "0006"
_PG_LOCK_ID = 0x70726F6265  # "probe": one advisory lock id for every probe store


def _config(conn: Connection | None = None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def current(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def _lock(engine: Engine):
    """Yield a connection that holds the migration lock."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_ID})
            conn.commit()
            try:
                yield conn
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_ID})
                conn.commit()
        return
    db = engine.url.database
    if engine.dialect.name == "sqlite" and db and db != ":memory:" and Path(db).parent.is_dir():
        with open(Path(db).with_name(Path(db).name + ".migrate-lock"), "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                with engine.connect() as conn:
                    yield conn
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        return
    with engine.connect() as conn:
        yield conn


def at_head(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
    except DBAPIError:  # no version table yet (a new store), or an unreachable one: upgrade() says which
        return False


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Bring the store's schema to `revision`; returns (revision before, revision after)."""
    target = head() if revision == "head" else revision
    with _lock(engine) as conn:
        before = current(conn)
        if before == target:
            return before, target
        from alembic import command

        cfg = _config(conn)
        if before is None and inspect(conn).has_table("campaigns"):
            log.info("stamping a store made before migrations at %s", BASELINE)
            command.stamp(cfg, BASELINE)
            conn.commit()
            before = BASELINE
        command.upgrade(cfg, target)
        conn.commit()
        log.info("store migrated from %s to %s", before, target)
        return before, target
