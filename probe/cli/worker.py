"""`probe worker`: a Celery worker for the fleet."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from probe.cli.common import BrokerOpt, DbOpt, broker_url, db_url


def worker(
    broker: BrokerOpt = None,
    db: DbOpt = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Worker processes (each runs a task's items concurrently).")] = 2,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
    name: Annotated[str | None, typer.Option(help="Worker node name (default probe-PID@HOST: unique per worker).")] = None,
) -> None:
    """Start a Celery worker that runs campaign tasks from the broker and writes to the store."""
    from probe import dispatch
    from probe.errors import ProbeError
    from probe.store import open_store

    broker = broker_url(broker)
    if not broker:
        raise ProbeError("a worker needs a broker: --broker redis://HOST:6379/0 or PROBE_BROKER")
    db = db_url(db)
    if not db:  # a private SQLite file would silently split the fleet's results
        raise ProbeError("a worker needs the fleet's store: --db URL or PROBE_DB (e.g. postgresql+psycopg://user@host/probe)")
    os.environ["PROBE_DB"] = db  # the tasks read it in every worker process
    open_store(db)  # fail now, in one line, if the database cannot be opened; migrates a new one
    dispatch.check_broker(broker)
    os.environ["PROBE_BROKER"] = broker
    from probe import models

    models.preload()  # import litellm once, before the pool forks
    from workers.celery_app import make_app

    app = make_app(broker)
    app.worker_main(["worker", "--concurrency", str(concurrency), "--pool", "prefork", "-Q", "probe",
                     "--loglevel", loglevel, "--without-gossip", "--without-mingle", "-E",
                     "--hostname", name or f"probe-{os.getpid()}@%h"])


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
