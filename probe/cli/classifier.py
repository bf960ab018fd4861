"""`probe classifier train|evaluate|train-prompt` and `probe predict-refusal TEXT`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from probe.errors import ProbeError

app = typer.Typer(help="Train and evaluate refusal classifiers.", no_args_is_help=True)


def _need_file(path: Path) -> None:
    if not path.is_file():
        raise ProbeError(f"{path}: no such file")


def _ci(v: tuple[float, float]) -> str:
    return f"[{v[0]:.3f}, {v[1]:.3f}]"


def _print_report(res: dict, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = Table(title=title)
    for col in ("view", "n", "accuracy", "95% CI", "macro F1", "95% CI"):
        t.add_column(col)
    for view in ("binary", "three_way"):
        m = res[view]
        t.add_row(view, str(res["n"]), f"{m['accuracy']:.3f}", _ci(m["accuracy_ci95"]), f"{m['macro_f1']:.3f}", _ci(m["macro_f1_ci95"]))
    console.print(t)
    m = res["three_way"]
    cm = Table(title="confusion (rows: true, columns: predicted)")
    cm.add_column("")
    for lab in m["labels"]:
        cm.add_column(lab)
    for lab, row in zip(m["labels"], m["confusion"]):
        cm.add_row(lab, *[str(x) for x in row])
    console.print(cm)


@app.command("train")
def train_cmd(
    data: Annotated[Path, typer.Option("--data", help="Training JSONL: prompt, response, label.")],
    out: Annotated[Path, typer.Option("--out", help="Artifact folder to write.")],
    kind: Annotated[str, typer.Option("--kind", help="tfidf | embedding")] = "tfidf",
    folds: Annotated[int, typer.Option("--folds", help="Cross-validation folds recorded in meta.json (0 to skip).")] = 5,
) -> None:
    """Train a classifier and write model.joblib + meta.json."""
    from classifiers.train import KINDS, train

    _need_file(data)
    if kind not in KINDS:
        raise ProbeError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    meta = train(data, kind, out, folds=folds)
    cv = meta.get("cv")
    msg = f"{meta['version']} -> {out}"
    if cv:
        msg += f" (cv binary accuracy {cv['binary']['accuracy']:.3f}, 3-way {cv['three_way']['accuracy']:.3f})"
    typer.echo(msg)


@app.command("evaluate")
def evaluate_cmd(
    data: Annotated[Path, typer.Option("--data", help="Labelled JSONL: response, label (and optional prompt).")],
    classifier: Annotated[Optional[str], typer.Option("--classifier", help="Score this classifier (name or folder) on the data; without it, cross-validate.")] = None,
    kind: Annotated[str, typer.Option("--kind", help="Kind to cross-validate when no --classifier is given.")] = "tfidf",
    folds: Annotated[int, typer.Option("--folds")] = 5,
) -> None:
    """Cross-validate a kind on a training file, or score a trained classifier on a labelled file."""
    from classifiers.evaluate import cross_validate, evaluate_on, load_jsonl

    _need_file(data)
    try:
        if classifier:
            from probe.cli.classify import load_classifier

            clf = load_classifier(classifier)
            res = evaluate_on(load_jsonl(data), clf)
            title = f"{clf.name} {clf.version} on {data.name}"
        else:
            res = cross_validate(data, kind, folds=folds)
            title = f"{folds}-fold CV of {kind} on {data.name}"
    except ValueError as e:
        raise ProbeError(str(e)) from None
    _print_report(res, title)


@app.command("train-prompt")
def train_prompt_cmd(
    out: Annotated[Path, typer.Option("--out", help="Artifact folder to write.")],
    data: Annotated[Optional[Path], typer.Option("--data", help="JSONL with prompt and refused (bool) or label.")] = None,
    campaign: Annotated[Optional[str], typer.Option("--campaign", help="Learn from a refusal campaign's prompts and labels.")] = None,
    db: Annotated[Optional[str], typer.Option("--db", help="Store URL (env PROBE_DB) for --campaign.")] = None,
) -> None:
    """Train the prompt-only refusal predictor (the paper's second model): from a file, or from a campaign whose
    responses the refusal classifier labelled (a person's gold label wins where there is one)."""
    from classifiers.prompt_model import pairs_from_jsonl, train_prompt_model

    if (data is None) == (campaign is None):
        raise ProbeError("give exactly one of --data FILE or --campaign ID")
    if data is not None:
        _need_file(data)
        pairs, source = pairs_from_jsonl(data), data.name
    else:
        pairs, source = campaign_pairs(campaign, db), f"campaign {campaign}"
    try:
        model = train_prompt_model(pairs, source=source)
    except ValueError as e:
        raise ProbeError(str(e)) from None
    model.save(out)
    typer.echo(f"{model.version}: {model.meta['n_train']} prompts -> {out}")


def campaign_pairs(campaign_id: str, db: str | None) -> list[tuple[str, bool]]:
    """(prompt text, refused) per labelled response of a campaign's refusal-probe items."""
    import os

    from probe.store import open_store

    store = open_store(db or os.environ.get("PROBE_DB"))
    labels = store.labels(campaign_id)
    pairs = []
    for item, resp in store.rows(campaign_id, "refusal"):
        labs = labels.get(item.key, {})
        lab = labs.get("gold") or labs.get("refusal")
        if resp is not None and lab is not None and resp.messages:
            pairs.append((resp.messages[-1]["content"], lab.label in ("refusal", "partial")))
    if not pairs:
        raise ProbeError(f"campaign {campaign_id} has no labelled refusal-probe responses")
    return pairs


def predict_refusal(
    text: Annotated[str, typer.Argument(help="The prompt to score.")],
    model: Annotated[Optional[Path], typer.Option("--model", help="Prompt-model artifact folder (default: shipped).")] = None,
) -> None:
    """Predict from the prompt alone how likely a model is to refuse it."""
    from classifiers import prompt_model

    try:
        m = prompt_model.load(model) if model else prompt_model.load()
    except FileNotFoundError as e:
        raise ProbeError(str(e)) from None
    p = m.predict_proba([text])[0]
    typer.echo(f"p_refusal={p:.3f} ({'likely refused' if p >= 0.5 else 'likely answered'}; {m.version})")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="classifier")
    root.command("predict-refusal")(predict_refusal)
