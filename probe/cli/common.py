"""Shared CLI options and helpers. Rich output lives only under probe/cli/."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress



def _console(**kw) -> Console:
    """A Console that reads COLUMNS / LINES (and the terminal) at each print: rich fixes them when it is built,
    and these consoles are built once, when the CLI is imported, which may be before the caller sets them."""
    c = Console(**kw)
    c._width = c._height = None
    return c


err = _console(stderr=True, soft_wrap=True)  # never break a line: hints carry commands to copy (probe resume ID)
out = _console()

DbOpt = Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL of the store (env PROBE_DB; default: SQLite in the user data dir).")]
BrokerOpt = Annotated[str | None, typer.Option("--broker", help="Celery broker URL, e.g. redis://127.0.0.1:6379/0 (env PROBE_BROKER). Without one, work runs in-process.")]


def db_url(db: str | None) -> str | None:
    return db or os.environ.get("PROBE_DB") or None


def broker_url(broker: str | None) -> str | None:
    return broker or os.environ.get("PROBE_BROKER") or None


def quiet_logs() -> None:
    logging.basicConfig(level=os.environ.get("PROBE_LOG", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("LiteLLM", "litellm", "httpx", "transformers"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def progress_bar(label: str) -> "Progress":
    """A progress bar on stderr for long labelling work; hidden when stderr is not a terminal (pipes, CI)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err, transient=True, disable=not err.is_terminal)


def write_text_out(text: str, out_file: Path | None) -> None:
    """`text` to `out_file` (whole or not at all: written beside it, then moved), else to stdout."""
    if out_file:
        tmp = out_file.with_name(out_file.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out_file)
    else:
        print(text)
