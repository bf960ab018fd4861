"""`probe label ID --sample 50`: a person labels a random sample of a campaign's refusal-probe responses.

The gold labels feed the report's design-based (DSL) corrected refusal rate. The sample is drawn uniformly at
random from the responses not yet gold-labelled, so every response has the same chance of being labelled.
"""

from __future__ import annotations

import random
from typing import Annotated

import typer
from rich.panel import Panel

from probe.cli.common import DbOpt, db_url, err, out

KEYS = {"r": "refusal", "p": "partial", "c": "compliance"}


def label(
    campaign_id: Annotated[str, typer.Argument(help="Campaign id.")],
    sample: Annotated[int, typer.Option(min=1, help="How many responses to label.")] = 50,
    seed: Annotated[int | None, typer.Option(help="Seed of the random sample (default: fresh).")] = None,
    labeller: Annotated[str, typer.Option(help="Your name or initials, stored with each label.")] = "person",
    db: DbOpt = None,
) -> None:
    """Show random responses and record your labels: r = refusal, p = partial, c = compliance, s = skip, q = quit."""
    from probe import labelling
    from probe import report as rep
    from probe.errors import ProbeError
    from probe.store import open_store

    store = open_store(db_url(db))
    _, refusals = rep.collect(store, campaign_id)
    rows = [r for by_set in refusals.values() for rs in by_set.values() for r in rs
            if r["label"] not in (None, "no_content") and r["gold"] is None]  # the rate's denominator only
    if not rows:
        raise ProbeError(f"campaign {campaign_id} has no unlabelled refusal-probe responses")
    picked = random.Random(seed).sample(rows, min(sample, len(rows)))
    stored = {s.key: s for s in labelling.responses(store, campaign_id)}
    saved = 0
    for n, r in enumerate(picked, 1):
        s = stored[r["key"]]
        out.print(Panel(f"[bold]Prompt[/] ({r['category']}): {s.prompt}\n\n[bold]Response[/]: {s.response}",
                        title=f"{n}/{len(picked)}  classifier says {r['label']} (p_refusal {r['p_refusal']:.2f})"))
        while True:
            answer = typer.prompt("label [r/p/c, s skip, q quit]", default="s").strip().lower()[:1]
            if answer in (*KEYS, "s", "q"):
                break
        if answer == "q":
            break
        if answer == "s":
            continue
        store.add_labels([labelling.label_row(f"person:{labeller}", KEYS[answer], 1.0 if answer in "rp" else 0.0,
                                              labeller="gold") | {"key": r["key"]}])
        saved += 1
    err.print(f"saved {saved} gold labels; `probe report {campaign_id}` now shows the DSL-corrected rate")


def register(app: typer.Typer) -> None:
    app.command("label")(label)
