"""`probe db upgrade|current`: the store's schema migrations (also applied when any command opens a store)."""

from __future__ import annotations

import typer

from probe.cli.common import DbOpt, db_url, err

app = typer.Typer(help="The store's schema (Alembic migrations).", no_args_is_help=True)


@app.command("upgrade")
def upgrade(db: DbOpt = None) -> None:
    """Bring the store's schema to the newest revision; safe to run from several machines at once."""
    from probe.store import Store, migrate

    store = Store(db_url(db), upgrade=False)
    before, after = migrate.upgrade(store.engine)
    err.print(f"store at revision {after}" + (f" (was {before or 'empty'})" if before != after else " (already)"))


@app.command("current")
def current(db: DbOpt = None) -> None:
    """Print the store's schema revision and the newest one."""
    from probe.store import Store, migrate

    store = Store(db_url(db), upgrade=False)
    with store.engine.connect() as conn:
        print(f"{migrate.current(conn) or 'empty'} (head {migrate.head()})")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="db")
