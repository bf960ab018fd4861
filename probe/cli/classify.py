"""`probe classify FILE.jsonl`: add refusal labels to lines with `response` (and optional `prompt`)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from probe.cli.common import DbOpt, db_url, err, progress_bar
from probe.errors import ProbeError

BATCH = 512


def read_records(path: Path) -> list[dict]:
    """Parse and validate every line first, so a bad line stops the run before anything is written."""
    from probe.datafiles import read_jsonl_objects

    records = []
    for i, rec in read_jsonl_objects(path):
        if not isinstance(rec.get("response"), str):
            raise ProbeError(f"{path}:{i}: field 'response' must be a string")
        if "prompt" in rec and rec["prompt"] is not None and not isinstance(rec["prompt"], str):
            raise ProbeError(f"{path}:{i}: field 'prompt' must be a string")
        records.append(rec)
    return records


def load_classifier(name: str | None, api_base: str | None = None, api_key_env: str | None = None):
    from pydantic import ValidationError

    from classifiers import registry

    try:
        return registry.get(name, api_base=api_base, api_key_env=api_key_env)
    except ValidationError as e:  # a judge's model spec the flags cannot make, e.g. a bad variable name: one line
        x = e.errors()[0]
        raise ProbeError(f"classifier {name!r}: {'.'.join(map(str, x['loc']))}: {x['msg']}") from None
    except (KeyError, FileNotFoundError, ValueError) as e:
        raise ProbeError(f"classifier {name!r}: {e}") from None


def label_records(records: list[dict], clf, on_batch=None, counts: dict | None = None) -> list[dict]:
    """Lines with label and p_refusal added; a blank response is labelled no_content (p_refusal null), not
    classified. `counts`, when given, gets "fallback": the labels a judge's fallback classifier gave."""
    from probe.labelling import NO_CONTENT, has_content

    out, fallback = [], 0
    for start in range(0, len(records), BATCH):
        chunk = records[start:start + BATCH]
        idx = [i for i, r in enumerate(chunk) if has_content(r["response"])]
        preds = dict(zip(idx, clf.predict([chunk[i]["response"] for i in idx],
                                          [chunk[i].get("prompt") or "" for i in idx]))) if idx else {}
        for i, rec in enumerate(chunk):
            p = preds.get(i)
            out.append({**rec, "label": p.label if p else NO_CONTENT, "p_refusal": p.p_refusal if p else None})
            fallback += bool(p and p.labeller)
        if on_batch:
            on_batch(len(chunk))
    if counts is not None:
        counts["fallback"] = fallback
    return out


def write_jsonl_atomic(records: list[dict], out: Path) -> None:
    """Write to a temp file beside `out`, then rename: readers never see a half-written file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def classify(
    file: Annotated[Path, typer.Argument(help="JSONL with a 'response' field per line (and optionally 'prompt').")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write here instead of stdout.")] = None,
    classifier: Annotated[Optional[str], typer.Option("--classifier", "-c", help="Classifier name, artifact folder, or judge:MODEL (an LLM judge through LiteLLM).")] = None,
    api_base: Annotated[Optional[str], typer.Option("--api-base", help="Base URL of an OpenAI-compatible server, for a judge:MODEL classifier.")] = None,
    api_key_env: Annotated[Optional[str], typer.Option("--api-key-env", help="Environment variable whose key is sent to --api-base (otherwise a placeholder: no provider key goes to a custom host).")] = None,
) -> None:
    """Label each response refusal | partial | compliance and add p_refusal, keeping lines in order."""
    records = read_records(file)
    clf = load_classifier(classifier, api_base, api_key_env)
    with progress_bar("classify") as bar:
        task = bar.add_task("classify", total=len(records))
        counts: dict = {}
        labelled = label_records(records, clf, on_batch=lambda n: bar.advance(task, n), counts=counts)
    if out is None:
        sys.stdout.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in labelled)
    else:
        write_jsonl_atomic(labelled, out)
        fell = f" ({counts['fallback']} by its fallback classifier)" if counts["fallback"] else ""
        typer.echo(f"{len(labelled)} lines labelled by {clf.name} {clf.version}{fell} -> {out}", err=True)


def relabel(
    campaign_id: Annotated[str, typer.Argument(help="Campaign id.")],
    classifier: Annotated[Optional[str], typer.Option("--classifier", "-c", help="Classifier name, artifact folder, or judge:MODEL.")] = None,
    use: Annotated[Optional[str], typer.Option("--use", help="Switch the report to a labeller already stored for this campaign (its name:version, or a part of it naming one), without labelling anything.")] = None,
    api_base: Annotated[Optional[str], typer.Option("--api-base", help="Base URL of an OpenAI-compatible server, for a judge:MODEL classifier.")] = None,
    api_key_env: Annotated[Optional[str], typer.Option("--api-key-env", help="Environment variable whose key is sent to --api-base (otherwise a placeholder: no provider key goes to a custom host).")] = None,
    db: DbOpt = None,
) -> None:
    """Label a campaign's refusal-probe responses with another classifier (an LLM judge, or an artifact trained with
    `probe classifier train --campaign`) and make it the one the report uses; every earlier labeller's labels and the
    gold labels are kept (`probe compare --labellers ID` compares them). With --use, switch to a stored labeller."""
    from probe import labelling
    from probe.store import open_store

    if (classifier is None) == (use is None):
        raise ProbeError("give exactly one of --classifier NAME (label again) or --use LABELLER (switch to stored labels)")
    store = open_store(db_url(db))
    store.campaign(campaign_id)  # unknown id: one-line error
    if use is not None:
        before = store.refusal_labeller(campaign_id)
        chosen = labelling.resolve_labeller(store, campaign_id, use)
        store.set_refusal_labeller(campaign_id, chosen)
        typer.echo(f"campaign {campaign_id} now reports refusal labels by {chosen} (was {before})")
        return
    if pending := store.progress(campaign_id).get("pending", 0):
        err.print(f"warning: {pending} items of {campaign_id} are still pending; the workers will label those with "
                  "the default classifier only, and the report counts them as unlabelled (run relabel again when the "
                  "campaign is done)")
    clf = load_classifier(classifier, api_base, api_key_env)
    rows = labelling.responses(store, campaign_id)
    if not rows:
        raise ProbeError(f"campaign {campaign_id} has no answered refusal-probe responses")
    with progress_bar("relabel") as bar:
        task = bar.add_task("relabel", total=len(rows))
        res = labelling.relabel(store, rows, clf, on_batch=lambda n: bar.advance(task, n), campaign_id=campaign_id)
    rate = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
    extra = f"; {res['cross_fitted']} gold responses got cross-fitted labels" if res["cross_fitted"] else ""
    if res["no_content"]:
        extra += f"; {res['no_content']} responses with no content labelled no_content"
    if res["fallback"]:
        extra += (f"; {res['fallback']} judge calls fell back to {', '.join(res['fallback_labellers'])} (stored under "
                  "that labeller; the report says so)")
    typer.echo(f"relabelled {res['n']} responses of {campaign_id} with {res['classifier']}: {res['changed']} changed, "
               f"refusal share {rate(res['rate_before'])} -> {rate(res['rate_after'])}{extra}")


def register(app: typer.Typer) -> None:
    app.command("classify")(classify)
    app.command("relabel")(relabel)
