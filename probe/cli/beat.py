"""`probe beat`: Celery beat for the fleet; its schedule sends the watchdog that heals lost messages."""

from __future__ import annotations

from typing import Annotated

import typer

from probe.cli.common import BrokerOpt, broker_url


def beat(
    broker: BrokerOpt = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
    schedule: Annotated[str | None, typer.Option(help="Beat's schedule state file (default: in the probe data dir).")] = None,
) -> None:
    """Run Celery beat: every PROBE_WATCHDOG_S seconds (30) a worker re-enqueues pending items of running
    campaigns that no task holds (their messages were lost), so a restarted Redis heals without a person; every
    PROBE_AUDIT_TICK_S seconds (15) a worker starts the due audits' runs (`probe audit`) and finishes ended ones."""
    import os

    from probe import dispatch, paths
    from probe.errors import ProbeError

    broker = broker_url(broker)
    if not broker:
        raise ProbeError("beat needs a broker: --broker redis://HOST:6379/0 or PROBE_BROKER")
    dispatch.check_broker(broker)
    os.environ["PROBE_BROKER"] = broker
    app = dispatch.celery_app(broker)
    app.start(["beat", "--loglevel", loglevel, "--schedule", schedule or str(paths.data_dir() / "celerybeat-schedule")])


def register(app: typer.Typer) -> None:
    app.command("beat")(beat)
