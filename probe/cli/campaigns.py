"""Steering campaigns: `probe campaigns`, `probe status`, `probe cancel`, `probe resume`."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.table import Table

from probe.cli.common import BrokerOpt, DbOpt, broker_url, db_url, err, out, quiet_logs

FormatOpt = Annotated[str, typer.Option("--format", help="table | json.")]


def _check_format(fmt: str) -> None:
    from probe.errors import ProbeError

    if fmt not in ("table", "json"):
        raise ProbeError(f"--format: '{fmt}' is not one of table, json")


def _money(x: float) -> str:
    return f"${x:,.4f}" if x else "$0"


def campaigns(
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 20,
    fmt: FormatOpt = "table",
    db: DbOpt = None,
) -> None:
    """List campaigns: id, created, models, sets, state, progress, failures, cost so far."""
    from probe import status
    from probe.store import open_store

    _check_format(fmt)
    rows = status.overview(open_store(db_url(db)), limit)
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return
    t = Table(title=f"{len(rows)} campaign(s), newest first")
    for col in ("id", "created", "models", "sets", "state", "progress", "failed", "cost"):
        t.add_column(col, justify="right" if col in ("progress", "failed", "cost") else "left",
                     no_wrap=col in ("id", "created", "state", "progress"), min_width=len(col))
    for r in rows:
        t.add_row(r["id"], r["created"][5:16].replace("T", " "), ", ".join(r["models"]), ", ".join(r["sets"]),
                  r["state"], f"{r['done'] + r['failed']}/{r['n_items']}", str(r["failed"]), _money(r["cost"]))
    out.print(t)


def _status_table(s: dict) -> None:
    reason = f" ({s['state_reason']})" if s["state_reason"] else ""
    c = s["counts"]
    eta = f" · ETA {s['eta_s']:.0f} s" if s["eta_s"] is not None else ""
    out.print(f"[bold]Campaign {s['id']}[/] · {s['mode']} · [bold]{s['state']}[/]{reason}", highlight=False)
    out.print(f"{c['done']} done, {c['failed']} failed, {c['pending']} pending of {s['n_items']} "
              f"({100 * s['progress']:.1f}%) · {s['throughput_per_s']:.2f} items/s{eta} · cost {_money(s['cost']['total'])}",
              highlight=False)
    sp = s["cost"]
    extra = [f"{_money(sp['cost_per_1000_items'] or 0)} per 1,000 items"]
    if sp["projected_rest"] is not None:
        extra.append(f"projected rest {_money(sp['projected_rest'])}")
    if sp["max_cost"] is not None:
        extra.append(f"budget ${sp['max_cost']:,.2f}")
    extra.append(f"{s['cache']['served']} from the cache" if s["cache"]["allowed"] else "cache off")
    out.print("spend: " + ", ".join(f"{m} {_money(x)}" for m, x in sp["by_model"].items()) + " · " + " · ".join(extra),
              highlight=False)
    for m in s.get("limits") or []:
        set_ = ", ".join(f"{k} {m[k]:g}" for k in ("rpm", "tpm", "max_concurrency") if m[k]) or "no limits set"
        learned = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in m["learned"].items() if v) or "nothing yet"
        out.print(f"limits {m['model']}: {set_}; learned: {learned}", highlight=False)
    t = Table()
    for col in ("model", "kind", "set", "done", "failed", "pending"):
        t.add_column(col, justify="right" if col in ("done", "failed", "pending") else "left")
    for r in s["by_model_set"]:
        t.add_row(r["model"], r["kind"], r["set"], str(r["done"]), str(r["failed"]), str(r["pending"]))
    out.print(t)
    if s["failures"]:
        f = Table(title="errors (failed items and items waiting on a retry)")
        for col in ("kind", "count", "first example"):
            f.add_column(col, overflow="fold")
        for x in s["failures"]:
            f.add_row(x["kind"], str(x["count"]), x["example"] or "")
        out.print(f)
    if s["workers"]:
        out.print("workers holding its tasks: " + ", ".join(
            f"{w['worker']} ({w['active']} active, {w['reserved'] + w['scheduled']} waiting)" for w in s["workers"]),
            highlight=False)


def status_cmd(
    campaign_id: Annotated[str, typer.Argument(help="Campaign id (see `probe campaigns`).")],
    watch: Annotated[bool, typer.Option("--watch", help="Refresh every --interval seconds until it stops running.")] = False,
    interval: Annotated[float, typer.Option(min=0.2)] = 2.0,
    fmt: FormatOpt = "table",
    db: DbOpt = None,
    broker: BrokerOpt = None,
) -> None:
    """A campaign's state, items by status per model and set, throughput, ETA, errors, cost, workers."""
    from probe import status
    from probe.store import open_store

    _check_format(fmt)
    store = open_store(db_url(db))
    broker = broker_url(broker)
    while True:
        s = status.status(store, campaign_id, broker)
        if fmt == "json":
            print(json.dumps(s, indent=2 if not watch else None), flush=True)
        else:
            _status_table(s)
        if not watch or s["state"] not in ("running", "queued"):
            return
        time.sleep(interval)


def cancel(
    campaign_id: Annotated[str, typer.Argument(help="Campaign id.")],
    db: DbOpt = None,
) -> None:
    """Stop a campaign: workers start none of its items from now on; calls in flight finish and are stored."""
    from probe import lifecycle
    from probe.store import open_store

    store = open_store(db_url(db))
    lifecycle.cancel(store, campaign_id)
    p = store.progress(campaign_id)
    err.print(f"campaign {campaign_id} cancelled ({p.get('done', 0)} done, {p.get('pending', 0)} not run); "
              f"`probe resume {campaign_id}` continues it")


def resume(
    campaign_id: Annotated[str, typer.Argument(help="Campaign id.")],
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Run every failed item again (default: only those whose last error was transient).")] = False,
    db: DbOpt = None,
    broker: BrokerOpt = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="With a broker: enqueue and return at once.")] = False,
    processes: Annotated[int | None, typer.Option(min=1, help="Embedded: processes sharing the work.")] = None,
    max_cost: Annotated[float | None, typer.Option("--max-cost", help="A new budget in USD (a campaign paused by its budget needs a higher one).")] = None,
) -> None:
    """Continue a campaign after Ctrl-C, a crash, a lost Redis or a cancel: enqueues exactly the items not done,
    embedded or on the fleet (--broker / PROBE_BROKER). Prints the campaign id last."""
    from probe import dispatch, lifecycle, limits
    from probe.cli.run import drive
    from probe.spec import CampaignSpec
    from probe.store import open_store

    quiet_logs()
    store = open_store(db_url(db))
    broker = broker_url(broker)
    c = store.campaign(campaign_id)
    spec = CampaignSpec.model_validate(c.spec)
    if broker:
        dispatch.check_broker(broker)
        dispatch.check_timeouts(spec)
    was = c.state
    if max_cost is not None:
        spec = lifecycle.set_budget(store, campaign_id, max_cost)
    todo = lifecycle.prepare_resume(store, campaign_id, retry_failed)
    limits.shared(broker).reset_budget(campaign_id)  # committed spend is counted again from the store
    # Every item not done is sent again, even where an old message may still name it (a cancelled fleet
    # campaign's queue, a lost Redis that was not lost after all): a task claims its items before running them,
    # so whichever message comes second finds them done or held, and nothing runs twice.
    err.print(f"resuming campaign {campaign_id} ({was}): {todo} items to run")
    drive(store, campaign_id, spec, broker, no_wait=no_wait, processes=processes)


def register(app: typer.Typer) -> None:
    app.command("campaigns")(campaigns)
    app.command("status")(status_cmd)
    app.command("cancel")(cancel)
    app.command("resume")(resume)
