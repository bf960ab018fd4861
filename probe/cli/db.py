"""`probe db upgrade|current`: the store's schema migrations (also applied when any command opens a store)."""

from __future__ import annotations

import contextlib

import typer

from probe.cli.common import DbOpt, db_url, err

app = typer.Typer(help="The store's schema (Alembic migrations).", no_args_is_help=True)


@contextlib.contextmanager
def _reachable(store):
    """An unreachable or broken database is one `error:` line (password hidden), as when any command opens a store;
    these two open it without migrating, so the first connection is made here."""
    from sqlalchemy.exc import SQLAlchemyError

    from probe.errors import ProbeError
    from probe.store import _redact

    try:
        yield
    except SQLAlchemyError as e:
        raise ProbeError(f"cannot open database {_redact(store.url)}: {str(e).splitlines()[0][:200]}") from None


@app.command("upgrade")
def upgrade(db: DbOpt = None) -> None:
    """Bring the store's schema to the newest revision; safe to run from several machines at once."""
    from probe.store import Store, migrate

    store = Store(db_url(db), upgrade=False)
    with _reachable(store):
        before, after = migrate.upgrade(store.engine)
    err.print(f"store at revision {after}" + (f" (was {before or 'empty'})" if before != after else " (already)"))


@app.command("current")
def current(db: DbOpt = None) -> None:
    """Print the store's schema revision and the newest one."""
    from probe.store import Store, migrate

    store = Store(db_url(db), upgrade=False)
    with _reachable(store), store.engine.connect() as conn:
        print(f"{migrate.current(conn) or 'empty'} (head {migrate.head()})")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="db")
