"""`probe cache stats|clear`: the fleet's response cache in the store."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from probe.cli.common import DbOpt, db_url, err, out

app = typer.Typer(help="The response cache (identical requests are paid once).", no_args_is_help=True)


@app.command("stats")
def stats(
    fmt: Annotated[str, typer.Option("--format", help="table | json.")] = "table",
    db: DbOpt = None,
) -> None:
    """Entries per model, their age, the cost they saved once each, and responses served from the cache."""
    from rich.table import Table

    from probe import cache
    from probe.errors import ProbeError
    from probe.store import open_store

    if fmt not in ("table", "json"):
        raise ProbeError(f"--format: '{fmt}' is not one of table, json")
    s = cache.stats(open_store(db_url(db)))
    if fmt == "json":
        print(json.dumps(s, indent=2))
        return
    t = Table(title=f"{s['entries']} cached responses; {s['responses_served']} responses served from the cache")
    for col in ("model", "entries", "oldest", "newest", "cost when made"):
        t.add_column(col)
    for m in s["models"]:
        t.add_row(m["model"], str(m["entries"]), m["oldest"], m["newest"], f"${m['cost_when_made']:,.4f}")
    out.print(t)


@app.command("clear")
def clear(
    model: Annotated[str | None, typer.Option("--model", help="Only this model's entries.")] = None,
    older_than: Annotated[str | None, typer.Option("--older-than", help="Only entries older than this (30d, 12h, 45m, 90s).")] = None,
    db: DbOpt = None,
) -> None:
    """Delete cached responses (all, one model's, or those older than an age); stored responses stay."""
    from probe import cache
    from probe.errors import ProbeError
    from probe.store import open_store

    try:
        age = cache.parse_age(older_than) if older_than else None
    except ValueError as e:
        raise ProbeError(f"--older-than: {e}") from None
    n = cache.clear(open_store(db_url(db)), model, age)
    err.print(f"deleted {n} cached responses")
    print(n)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="cache")
