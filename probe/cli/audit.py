"""`probe audit`: periodic model audits (schedules in the store, fired by `probe beat`), their history and drift."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from probe.cli.common import BrokerOpt, DbOpt, broker_url, db_url, err, out, quiet_logs, write_text_out

app = typer.Typer(name="audit", help="Periodic model audits: scheduled campaigns, history, drift reports.",
                  no_args_is_help=True)
NameArg = Annotated[str, typer.Argument(help="Audit name.")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")]
ALERT_EXIT = 3  # `probe audit diff` when the newer run alerts: cron or CI can act on it


def _store(db):
    from probe.store import open_store

    return open_store(db_url(db))


def _fmt(fmt: str, allowed: tuple[str, ...]) -> None:
    from probe.errors import ProbeError

    if fmt not in allowed:
        raise ProbeError(f"--format: '{fmt}' is not one of {', '.join(allowed)}")


def _write(text: str, out_file: Path | None) -> None:
    write_text_out(text, out_file)


def _view(a, runs: list[dict] | None = None) -> dict:
    from probe.store.schema import aware

    v = {"name": a.name, "every_s": a.every_s, "cron": a.cron, "paused": a.paused,
         "next_run_at": aware(a.next_run_at).isoformat() if a.next_run_at else None,
         "created_at": aware(a.created_at).isoformat(), "models": [m["id"] for m in a.spec["models"]],
         "sets": [*a.spec.get("surveys", []), *a.spec.get("refusals", [])], "alerts": a.spec.get("alerts", [])}
    if runs is not None:
        v["runs"] = len(runs)
        v["last_run"] = ({k: runs[-1][k] for k in ("run", "campaign_id", "state", "trigger", "started_at")}
                         | {"alerting": bool(runs[-1]["alerts"])}) if runs else None
        v["spec"] = a.spec
    return v


@app.command("create")
def create(
    name: NameArg,
    spec: Annotated[str, typer.Option("--spec", help="Campaign spec YAML, with optional alerts, webhook, fdr_q, cache.")],
    every: Annotated[str | None, typer.Option("--every", help="Period: 30s, 15m, 24h, 7d (first run at the next beat tick).")] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="Cron expression in UTC, e.g. \"0 3 * * *\".")] = None,
    db: DbOpt = None,
) -> None:
    """Create an audit: its schedule lives in the store, so every beat replica sees it."""
    from probe import audits

    a = audits.create(_store(db), name, audits.load_spec(spec), every, cron)
    err.print(f"audit {a.name}: next run {audits.aware(a.next_run_at).isoformat(timespec='seconds')} "
              f"({'every ' + every if every else 'cron ' + cron}); `probe beat` fires it")


@app.command("list")
def list_cmd(fmt: Annotated[str, typer.Option("--format")] = "table", db: DbOpt = None) -> None:
    """Every audit: schedule, next run, state of its last run."""
    from probe import audits

    _fmt(fmt, ("table", "json"))
    store = _store(db)
    views = [_view(a, audits.runs(store, a.name)) for a in audits.all_audits(store)]
    for v in views:
        v.pop("spec")
    if fmt == "json":
        print(json.dumps(views, indent=2))
        return
    t = Table(title=f"{len(views)} audit(s)")
    for col in ("name", "schedule", "next run", "paused", "runs", "last run", "alerting"):
        t.add_column(col)
    for v in views:
        last = v["last_run"] or {}
        t.add_row(v["name"], f"every {v['every_s']:g} s" if v["every_s"] else f"cron {v['cron']}",
                  (v["next_run_at"] or "")[:19], "yes" if v["paused"] else "no", str(v["runs"]),
                  f"{last.get('campaign_id', '')} {last.get('state', '')}", "yes" if last.get("alerting") else "")
    out.print(t)


@app.command("show")
def show(name: NameArg, db: DbOpt = None) -> None:
    """One audit as JSON: schedule, spec, runs so far and the last one."""
    from probe import audits

    store = _store(db)
    print(json.dumps(_view(audits.get(store, name), audits.runs(store, name)), indent=2))


@app.command("run")
def run(name: NameArg, db: DbOpt = None, broker: BrokerOpt = None,
        no_wait: Annotated[bool, typer.Option("--no-wait", help="With a broker: enqueue and return at once.")] = False) -> None:
    """Run an audit now: on the fleet with a broker, else in-process. Prints the run's campaign id last."""
    from probe import audits, dispatch
    from probe.errors import ProbeError

    quiet_logs()
    store = _store(db)
    broker = broker_url(broker)
    a = audits.get(store, name)
    if (running := audits.active_run(store, name)) is not None:
        raise ProbeError(f"audit {name}: run {running} is still going (`probe status {running}`)")
    if broker:
        dispatch.check_broker(broker)
        dispatch.check_timeouts(audits.AuditSpec.model_validate(a.spec))
    cid = audits.start_run(store, a, broker, "manual")
    err.print(f"audit {name}: run {cid}")
    if broker and no_wait:
        print(cid)
        return
    if broker:
        dispatch.wait(store, cid, lambda d, f, t: None)
    else:
        dispatch.run_embedded(store, cid, audits.AuditSpec.model_validate(a.spec).concurrency)
    audits.finish(store, cid)
    [r] = [r for r in audits.runs(store, name) if r["campaign_id"] == cid]
    if r["alerts"]:
        err.print(f"[red]run {cid} alerts:[/] " + escape("; ".join(x["message"] for x in r["alerts"])), highlight=False)
    print(cid)


@app.command("pause")
def pause(name: NameArg, db: DbOpt = None) -> None:
    """Stop firing the audit (a run in progress goes on)."""
    from probe import audits

    audits.set_paused(_store(db), name, True)
    err.print(f"audit {name} paused")


@app.command("resume")
def resume(name: NameArg, db: DbOpt = None) -> None:
    """Fire the audit again, from its next slot (no backlog of the paused periods)."""
    from probe import audits

    audits.set_paused(_store(db), name, False)
    err.print(f"audit {name} resumed")


@app.command("delete")
def delete(name: NameArg, db: DbOpt = None) -> None:
    """Delete the audit and its run records; the runs' campaigns stay in the store."""
    from probe import audits

    n = audits.delete_audit(_store(db), name)
    err.print(f"audit {name} deleted ({n} run record(s); their campaigns stay)")


@app.command("tick")
def tick(db: DbOpt = None, broker: BrokerOpt = None) -> None:
    """One scheduler pass, what `probe beat` does every PROBE_AUDIT_TICK_S s: finish ended runs, start due ones
    (on the fleet with a broker; in-process without)."""
    from probe import audits, dispatch

    quiet_logs()
    store = _store(db)
    broker = broker_url(broker)
    done = audits.tick(store, broker)
    if not broker:
        for cid in done["started"]:
            dispatch.run_embedded(store, cid, store.campaign(cid).spec.get("concurrency", 32))
            audits.finish(store, cid)
            done["finished"].append(cid)
    print(json.dumps(done))


@app.command("history")
def history(name: NameArg, fmt: Annotated[str, typer.Option("--format", help="table | json | html")] = "table",
            out_file: OutOpt = None, db: DbOpt = None) -> None:
    """One row per run and model: refusal rates, over-refusal, A-bias, entropy, divergence, invalid rate, cost."""
    from probe import audit_history, audits

    _fmt(fmt, ("table", "json", "html"))
    store = _store(db)
    audits.get(store, name)
    rows = audit_history.history_rows(audits.runs(store, name))
    if fmt == "json":
        _write(json.dumps(rows, indent=2), out_file)
    elif fmt == "html":
        from probe.audit_html import history_html

        _write(history_html(name, rows), out_file)
    else:
        _history_table(name, rows)


def _history_table(name: str, rows: list[dict]) -> None:
    """One column per figure and set (names in the headers), so the rows stay narrow."""
    sets = sorted({k for r in rows for k in r["refusal_rate"]})
    surveys = sorted({k for r in rows for k in r["a_bias"]})
    several = len({r["model"] for r in rows}) > 1
    def named(label: str, key: str, keys: list[str]) -> str:
        return label if len(keys) == 1 else f"{label} {key}"

    cols = ["run", "started", "state"] + (["model"] if several else []) + ["version"]
    cols += [named("refusal", s, sets) for s in sets] + [named("over-ref.", s, sets) for s in sets]
    cols += [named(m, s, surveys) for s in surveys for m in ("A-bias", "entropy", "KL")] + ["invalid", "cost", "alert"]
    what = "; ".join(x for x in (f"refusals: {', '.join(sets)}" if sets else "",
                                  f"survey: {', '.join(surveys)} (KL to its main population)" if surveys else "") if x)
    t = Table(title=f"audit {name}: {len({r['run'] for r in rows})} run(s)", caption=what)
    for c in cols:
        t.add_column(c, no_wrap=c not in ("version", "model", "state"))

    def f(x) -> str:
        return "" if x is None else f"{x:.3f}"

    for r in rows:
        cells = [str(r["run"]), r["started_at"][5:16].replace("T", " "),
                 r["state"] + ("" if r["trigger"] == "schedule" else f" ({r['trigger']})")]
        cells += ([r["model"] or ""] if several else []) + [" | ".join(x for x in (r["version"], r["fingerprint"]) if x)]
        cells += [f(r["refusal_rate"].get(s)) for s in sets] + [f(r["over_refusal"].get(s)) for s in sets]
        cells += [f(r[m].get(s)) for s in surveys for m in ("a_bias", "entropy", "divergence")]
        cells += [f(r["invalid_rate"]), "" if r["cost"] is None else f"${r['cost']:.4f}", "yes" if r["alerting"] else ""]
        t.add_row(*cells)
    out.print(t)


def _pick(runs: list[dict], ref: str) -> dict:
    from probe.errors import ProbeError

    for r in runs:
        if ref in (str(r["run"]), r["campaign_id"]):
            if not r["summary"]:
                raise ProbeError(f"run {ref} ({r['campaign_id']}) has no summary yet: it is {r['state']}")
            return r
    raise ProbeError(f"no run '{ref}' in this audit (runs 1..{len(runs)}, or a campaign id)")


@app.command("diff")
def diff(
    name: NameArg,
    run_a: Annotated[str | None, typer.Argument(help="Earlier run (number or campaign id); default: the second last.")] = None,
    run_b: Annotated[str | None, typer.Argument(help="Later run; default: the last.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json | html")] = "table",
    out_file: OutOpt = None,
    db: DbOpt = None,
) -> None:
    """What changed between two runs, with significance tests and FDR control; exits 3 when the later run alerts."""
    from probe import alerts, audits, drift
    from probe.errors import ProbeError

    _fmt(fmt, ("table", "json", "html"))
    store = _store(db)
    spec = audits.AuditSpec.model_validate(audits.get(store, name).spec)
    runs = audits.runs(store, name)
    if (run_a is None) != (run_b is None):
        raise ProbeError("give both runs (RUN_A RUN_B) or neither (the last two finished runs)")
    if run_a is None:
        done = [r for r in runs if r["state"] == "done" and r["summary"]]
        if len(done) < 2:
            raise ProbeError(f"audit {name} has {len(done)} finished run(s); a diff needs two")
        ra, rb = done[-2], done[-1]
    else:
        ra, rb = _pick(runs, run_a), _pick(runs, run_b)
    d = drift.diff(ra["summary"], rb["summary"], spec.fdr_q)
    found = alerts.evaluate(spec.rules(), d, ra["summary"], rb["summary"])
    if fmt == "json":
        _write(json.dumps({"audit": name, **d, "alerting": bool(found), "alerts": found}, indent=2), out_file)
    elif fmt == "html":
        from probe.audit_html import diff_html

        _write(diff_html(name, d, found), out_file)
    else:
        _diff_table(name, d, found, ra, rb)
    if found:
        raise typer.Exit(ALERT_EXIT)


def _diff_table(name: str, d: dict, found: list[dict], ra: dict, rb: dict) -> None:
    from probe.drift import fmt_p

    for v in d["version_changed"]:
        out.print("[bold red]version changed[/]: " + escape(f"{v['model']} {v['field']} {v['a']!r} -> {v['b']!r}"),
                  highlight=False)
    c = d["correction"]
    out.print(escape(f"audit {name}: run {ra['run']} ({ra['campaign_id']}) -> run {rb['run']} ({rb['campaign_id']}); "
              f"{c['n_tests']} tests, {c['method']} at q = {c['q']}; {len(d['significant'])} significant"),
              highlight=False)
    t = Table()
    for col in ("model", "what", "before", "after", "change", "test", "p", "adj. p"):
        t.add_column(col)
    for x in d["tests"]:
        style = "bold yellow" if x["significant"] else None
        if x["kind"] == "refusal_rate":
            what, before, after = f"refusal {x['key']}", f"{x['a']:.3f}", f"{x['b']:.3f}"
        else:
            what, before, after = f"answers {x['key']} (TV)", "", ""
        t.add_row(x["model"], what, before, after, f"{x['change']:+.3f}", x["test"], fmt_p(x["p"]),
                  fmt_p(x["p_adjusted"]), style=style)
    out.print(t)
    for x in found:
        out.print("[red]ALERT[/] " + escape(f"{x['message']}  ({x['rule']})"), highlight=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="audit")
