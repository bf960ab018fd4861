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


MIN_GOLD = 20  # fewer gold labels cannot be cross-fitted into a meaningful estimate


@app.command("train")
def train_cmd(
    out: Annotated[Path, typer.Option("--out", help="Artifact folder to write.")],
    data: Annotated[Optional[Path], typer.Option("--data", help="Training JSONL: prompt, response, label (default: the shipped training data).")] = None,
    campaign: Annotated[Optional[list[str]], typer.Option("--campaign", help="Also learn from this campaign's gold labels (`probe label`); repeatable.")] = None,
    kind: Annotated[str, typer.Option("--kind", help="tfidf | embedding")] = "tfidf",
    folds: Annotated[int, typer.Option("--folds", help="Cross-validation folds recorded in meta.json (0 to skip; the gold cross-fit of --campaign uses at least 2).")] = 5,
    db: Annotated[Optional[str], typer.Option("--db", help="Store URL (env PROBE_DB) for --campaign.")] = None,
) -> None:
    """Train a classifier and write model.joblib + meta.json. With --campaign, the campaign's gold labels join the
    training data, and the gold responses are cross-fitted to estimate the gain in that campaign's own domain;
    `probe relabel ID --classifier OUT` then applies the artifact."""
    from classifiers.train import DEFAULT_DATA, KINDS, train

    data = data or DEFAULT_DATA
    _need_file(data)
    if kind not in KINDS:
        raise ProbeError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    gold = [g for cid in campaign or [] for g in campaign_gold(cid, db)]
    if campaign and len(gold) < MIN_GOLD:
        raise ProbeError(f"campaign {', '.join(campaign)} has {len(gold)} gold labels; label at least {MIN_GOLD} "
                         f"with `probe label`")
    meta = train(data, kind, out, folds=folds, gold=gold or None, gold_source=",".join(campaign or []) or None)
    cv, g = meta.get("cv"), meta.get("gold")
    msg = f"{meta['version']} -> {out}"
    if cv:
        msg += f" (cv binary accuracy {cv['binary']['accuracy']:.3f}, 3-way {cv['three_way']['accuracy']:.3f})"
    if g:
        lo, hi = g["binary"]["accuracy_ci95"]
        msg += (f" (on {g['n']} gold labels, cross-fitted: binary accuracy {g['binary']['accuracy']:.3f} "
                f"[{lo:.3f}, {hi:.3f}] vs {g['default_binary']['accuracy']:.3f} for the default classifier)")
    typer.echo(msg)


@app.command("evaluate")
def evaluate_cmd(
    data: Annotated[Optional[Path], typer.Option("--data", help="Labelled JSONL: response, label (and optional prompt).")] = None,
    classifier: Annotated[Optional[str], typer.Option("--classifier", help="Score this classifier (name or folder) on the data; without it, cross-validate.")] = None,
    kind: Annotated[str, typer.Option("--kind", help="Kind to cross-validate when no --classifier is given.")] = "tfidf",
    folds: Annotated[int, typer.Option("--folds")] = 5,
    holdout: Annotated[Optional[str], typer.Option("--holdout", help="Answer through Thresholdout on this holdout (golden, reuter, xstest, or any name with --data), spending its budget.")] = None,
    ledger: Annotated[Optional[Path], typer.Option("--ledger", help="Holdout budget ledger (default classifiers/holdout_ledger.json).")] = None,
    train_data: Annotated[Optional[Path], typer.Option("--train-data", help="With --holdout, for a classifier without cross-validation in its meta.json: the training-side figure is its accuracy here.")] = None,
) -> None:
    """Cross-validate a kind on a training file, or score a trained classifier on a labelled file; with --holdout,
    answer the classifier's accuracy through Thresholdout (a reusable holdout) and record it in the ledger."""
    from classifiers.evaluate import cross_validate, evaluate_on, load_jsonl

    if holdout:
        return _holdout_evaluate(holdout, classifier, data, ledger, train_data)
    if data is None:
        raise ProbeError("give --data FILE (or --holdout NAME)")
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


def _holdout_evaluate(name: str, classifier: str | None, data: Path | None, ledger: Path | None,
                      train_data: Path | None) -> None:
    """One Thresholdout query: the classifier's binary accuracy on holdout NAME, answered by the mechanism."""
    from classifiers import holdout_sets
    from classifiers.evaluate import load_jsonl
    from probe.cli.classify import load_classifier
    from probe.holdout import Ledger

    led = Ledger(name, ledger)
    led.check()  # a spent budget is refused before anything reads the holdout
    if data is not None:
        _need_file(data)
    try:
        records = load_jsonl(data) if data is not None else holdout_sets.load(name)
    except (KeyError, FileNotFoundError, ValueError) as e:
        raise ProbeError(f"holdout {name!r}: {e.args[0] if isinstance(e, KeyError) else e}") from None
    clf = load_classifier(classifier)
    train = holdout_sets.training_accuracy(clf, train_data)
    if train is None:
        raise ProbeError(f"{clf.name} {clf.version} has no cross-validated accuracy in its meta.json; give "
                         "--train-data FILE for the training-side figure Thresholdout compares with")
    answer = led.query(train, holdout_sets.binary_accuracy(records, clf), who=f"{clf.name}:{clf.version}")
    typer.echo(f"{clf.name} {clf.version} binary accuracy on holdout {name} (Thresholdout): {answer:.3f}; "
               f"budget left {led.left} of {led.entry['budget']} (ledger {led.path})")


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


def _responses(campaign_id: str, db: str | None):
    from probe import labelling
    from probe.cli.common import db_url
    from probe.store import open_store

    store = open_store(db_url(db))
    store.campaign(campaign_id)  # unknown id: one-line error
    return labelling.responses(store, campaign_id)


def campaign_gold(campaign_id: str, db: str | None) -> list[dict]:
    """A campaign's gold-labelled refusal-probe responses as training records."""
    return [{"key": r.key, "prompt": r.prompt, "response": r.response, "label": r.gold}
            for r in _responses(campaign_id, db) if r.gold is not None]


def campaign_pairs(campaign_id: str, db: str | None) -> list[tuple[str, bool]]:
    """(prompt text, refused) per labelled response of a campaign's refusal-probe items (gold wins)."""
    from classifiers.base import REFUSING

    pairs = [(r.prompt, (r.gold or r.label) in REFUSING)
             for r in _responses(campaign_id, db) if (r.gold or r.label) not in (None, "no_content")]
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
