"""`probe report ID`: the campaign's aggregates as a table, JSON, Markdown or HTML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from probe.cli.common import DbOpt, db_url, out, write_text_out


def _tables(report: dict) -> None:
    from probe.analysis import state_baselines
    from probe.report_text import REFUSAL_COLUMNS, ci, column_baselines, fmt, refusal_notes, refusal_row, survey_rows
    from probe.report_text import answer_warnings, reasons_text

    c = report["campaign"]
    out.print(f"[bold]Campaign {c['id']}[/] · {c['mode']} · {c['n_items']} items · done {c['status']['done']}, "
              f"failed {c['status']['failed']}, pending {c['status']['pending']}")
    if report.get("cost"):
        from probe.spend import line as spend_line

        out.print("spend: " + spend_line(report["cost"]), highlight=False)
    for line in c.get("prompt_drift") or []:
        out.print(f"[yellow]warning: {escape(line)}[/]", highlight=False)
    for model, m in report["models"].items():
        for sname, s in m["surveys"].items():
            bnames = column_baselines(s["summary"])  # KL uniform has its column; states are in the ranking
            t = Table(title=f"{model}{' (simulator)' if m['simulator'] else ''} · survey {sname}")
            for col in ["question", "n", "inv.", "mass", "A-bias", "entropy", "KL unif.",
                        *[f"KL {b}" for b in bnames], "modal answer"]:
                if col == "modal answer":  # the only column that may shrink: long option texts end in "…"
                    width = max(20, out.width - 66 - sum(len(b) + 6 for b in bnames))  # "KL b", padding, border
                    t.add_column(col, max_width=width, no_wrap=True, overflow="ellipsis")
                else:
                    t.add_column(col, justify="left" if col == "question" else "right", no_wrap=True,
                                 min_width=len(col) if col in ("question", "n", "inv.") else max(len(col), 5))
            for var, q in s["questions"].items():
                t.add_row(var, *survey_rows(q, bnames))
            sm = s["summary"]
            t.caption = (f"mean A-bias {fmt(sm['mean_a_bias'])} · mean norm. entropy {fmt(sm['mean_normalized_entropy'])}"
                         f" · mean KL uniform {fmt(sm['mean_kl_to_uniform'])} · invalid rate {fmt(sm['invalid_rate'])}"
                         f"\nmean letter mass {fmt(sm.get('mean_letter_mass'))} (first-token probability on the option "
                         "letters; under 0.1 invalid)")
            if sm.get("invalid_reasons"):
                t.caption += f"\ninvalid: {reasons_text(sm['invalid_reasons'])}"
            if states := state_baselines(list(sm["mean_kl_to_baseline"])):
                t.caption += f"\n{len(states)} state populations ({states[0]} ...): see the ranking below"
            out.print(t)
            for line in answer_warnings(sm):
                out.print(f"[yellow]warning: {escape(line)}[/]", highlight=False)
            _ranking(model, s.get("analysis"))
            if s.get("individuals") is not None:
                _individuals(model, s["individuals"])
        for pname, r in m["refusals"].items():
            t = Table(title=f"{model} · refusals {pname}: rate {fmt(r['refusal_rate'])} {ci(r['ci95'])}")
            for col in REFUSAL_COLUMNS:
                t.add_column(col, justify="left" if col == "category" else "right")
            for cat, x in r["by_category"].items():
                t.add_row(*refusal_row(cat, x))
            out.print(t)
            for line in refusal_notes(r):
                out.print(line, highlight=False)


def _individuals(model: str, ind: dict) -> None:
    from probe.report_text import SIGNAL_COLUMNS, individuals_lines

    head, rows = individuals_lines(ind)
    out.print(escape(head), highlight=False)
    if rows:
        t = Table(title=f"{model} · signal test, model / census (accuracy)")
        for col in SIGNAL_COLUMNS:
            t.add_column(col, justify="left" if col == "variable" else "right")
        for r in rows:
            t.add_row(*r)
        out.print(t)


def _ranking(model: str, a: dict | None) -> None:
    """Every population, states included, ranked by mean KL, with closer-than-uniform and entropies."""
    from probe.report_text import not_ranked, ranking_columns, ranking_rows

    if not a or not a["ranking"]:
        return
    t = Table(title=f"{model} · populations ranked by mean KL (bits, bias-corrected, lower = closer; 95% BCa CI)")
    for col in ranking_columns(a):
        t.add_column(col, justify="left" if col == "population" else "right")
    for row in ranking_rows(a):
        t.add_row(*row)
    if empty := not_ranked(a):
        t.caption = f"no figures for any answered question: {', '.join(empty)}"
    out.print(t)


def report(
    campaign_id: Annotated[str, typer.Argument(help="Campaign id (printed by `probe run`).")],
    format: Annotated[str, typer.Option("--format", "-f", help="table | json | markdown | html")] = "table",
    baseline: Annotated[list[str] | None, typer.Option("--baseline", help="Compare with these populations (default: the campaign's).")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")] = None,
    microdata: Annotated[str | None, typer.Option("--microdata", help="Census microdata for the signal and discriminator tests of --mode individuals campaigns (a table built with `probe baselines build ... --keep-microdata`; default: the first baseline that has one).")] = None,
    states: Annotated[bool, typer.Option("--states", help="Also compare with every available state baseline (NAME_ST tables from `probe baselines build --by-state`).")] = False,
    db: DbOpt = None,
) -> None:
    """Show a campaign's results."""
    from probe import report as rep
    from probe.errors import ProbeError
    from probe.store import open_store

    if format not in ("table", "json", "markdown", "html"):
        raise ProbeError(f"--format: '{format}' is not one of table, json, markdown, html")
    data = rep.build(open_store(db_url(db)), campaign_id, baseline, states=states, microdata=microdata)
    if format == "table" and out_file is None:
        _tables(data)
        return
    if format == "json":
        text = json.dumps(data, indent=2, default=str)
    elif format == "markdown":
        from probe.report_text import markdown

        text = markdown(data)
    elif format == "html":
        from probe.report_html import html

        text = html(data)
    else:
        from probe.report_text import markdown

        text = markdown(data)
    write_text_out(text, out_file)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
