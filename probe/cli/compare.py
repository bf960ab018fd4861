"""`probe compare ID1 ID2 ...`: campaigns' and models' summaries side by side (library: probe.analysis.compare);
`probe compare --labellers ID`: agreement between a campaign's refusal labellers (library: probe.labelling.agreement)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from probe.cli.common import DbOpt, db_url, out


def _tables(data: dict, what: str) -> None:
    from probe.analysis import compare_rows, matrix_baseline, matrix_cell

    labels = [c["label"] for c in data["columns"]]
    t = Table(title="Comparison of " + ", ".join(data["campaigns"]))
    t.add_column("measure")
    for lab in labels:
        t.add_column(lab, justify="right", overflow="fold")
    for name, cells in compare_rows(data):
        t.add_row(name, *cells)
    out.print(t)
    b = matrix_baseline(data)
    for sname, qs in data["questions"].items():
        t = Table(title=f"survey {sname}: " + ("modal answer (share)" if what == "modal" else f"KL to {b} (bits)"))
        t.add_column("question")
        for lab in labels:
            t.add_column(lab, justify="right", overflow="fold")
        for var, cells in qs.items():
            t.add_row(var, *[matrix_cell(c, what, b) for c in cells])
        out.print(t)
    if data["refusals"]:
        t = Table(title="refusal rates (95% Wilson CI)")
        for col in ("model", "set", "n", "rate", "95% CI"):
            t.add_column(col, justify="left" if col in ("model", "set") else "right")
        for r in data["refusals"]:
            rate = "–" if r["refusal_rate"] is None else f"{r['refusal_rate']:.3f}"
            ci = "–" if r["ci95"][0] is None else f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"
            t.add_row(r["label"], r["set"], str(r["n"]), rate, ci)
        out.print(t)


def _labeller_tables(data: dict) -> None:
    fmt = lambda x: "–" if x is None else f"{x:.3f}"  # noqa: E731
    t = Table(title=f"refusal labellers of campaign {data['campaign']} (the report uses {data['chosen']})")
    for col in ("labeller", "responses", *data["order"], "no_content", "no label", "fell back to"):
        t.add_column(col, justify="left" if col in ("labeller", "fell back to") else "right", overflow="fold")
    for x in data["labellers"]:
        t.add_row(x["labeller"] + (" *" if x["labeller"] == data["chosen"] else ""), str(x["responses"]),
                  *[str(x[o]) for o in data["order"]], str(x["no_content"]), str(x["no_label"]),
                  ", ".join(x["fallback"]) or "–")
    out.print(t)
    t = Table(title="agreement on the responses both labelled (kappa: Cohen's; binary: partial counts as refusal)")
    for col in ("a", "b", "n", "agreement", "kappa", "kappa binary"):
        t.add_column(col, justify="left" if col in ("a", "b") else "right", overflow="fold")
    for p in data["pairs"]:
        t.add_row(p["a"], p["b"], str(p["n"]), fmt(p["agreement"]), fmt(p["kappa"]), fmt(p["kappa_binary"]))
    out.print(t)
    for p in data["pairs"]:
        t = Table(title=f"rows: {p['a']} · columns: {p['b']}")
        t.add_column("")
        for o in data["order"]:
            t.add_column(o, justify="right")
        for o, row in zip(data["order"], p["confusion"]):
            t.add_row(o, *map(str, row))
        out.print(t)


def compare(
    campaign_ids: Annotated[list[str], typer.Argument(help="Campaign ids (printed by `probe run`).")],
    format: Annotated[str, typer.Option("--format", "-f", help="table | json | markdown")] = "table",
    baseline: Annotated[list[str] | None, typer.Option("--baseline", help="Compare with these populations (default: each campaign's).")] = None,
    matrix: Annotated[str, typer.Option("--matrix", help="Per-question cells: kl (to the first non-uniform baseline) | modal (modal answer).")] = "kl",
    labellers: Annotated[bool, typer.Option("--labellers", help="Compare the refusal labellers of one campaign (every classifier it was labelled with, and the gold labels): Cohen's kappa and confusion matrices.")] = False,
    db: DbOpt = None,
) -> None:
    """Show several campaigns' (and models') summaries side by side, or (--labellers) one campaign's labellers."""
    from probe import analysis, report
    from probe.errors import ProbeError
    from probe.store import open_store

    if labellers:
        from probe import labelling

        if len(campaign_ids) != 1:
            raise ProbeError("--labellers compares the labellers of one campaign: give one campaign id")
        if format not in ("table", "json"):
            raise ProbeError(f"--labellers: --format '{format}' is not one of table, json")
        store = open_store(db_url(db))
        store.campaign(campaign_ids[0])  # unknown id: one-line error
        data = labelling.agreement(store, campaign_ids[0])
        if format == "json":
            print(json.dumps(data, indent=2, default=str))
        else:
            _labeller_tables(data)
        return

    if format not in ("table", "json", "markdown"):
        raise ProbeError(f"--format: '{format}' is not one of table, json, markdown")
    if matrix not in ("kl", "modal"):
        raise ProbeError(f"--matrix: '{matrix}' is not one of kl, modal")
    store = open_store(db_url(db))
    data = analysis.compare([report.build(store, cid, baseline) for cid in campaign_ids])
    if format == "json":
        print(json.dumps(data, indent=2, default=str))
    elif format == "markdown":
        print(analysis.compare_markdown(data, matrix))
    else:
        _tables(data, matrix)


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
