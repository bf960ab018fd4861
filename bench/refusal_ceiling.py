"""How far can the TF-IDF family go on Reuter & Schulze's set if it may learn from that set? A diagnostic for the
0.93 aim, not a shipped model: nothing here is saved, and the shipped artifacts never see these labels.

    python bench/refusal_ceiling.py [--folds 5] [--write-results]

Stratified k-fold over the 1,706 Reuter responses (the paper's binarisation). For each fold the held-out part is
scored by
  * in-domain: the shipped TF-IDF pipeline trained on the other folds only (the paper's own setting);
  * ours + n: the pipeline trained on our training data plus n responses drawn from the other folds, as a team
    would after gold-labelling n responses of its own campaign with `probe label`.
Out-of-fold predictions are pooled into one accuracy with a bootstrap 95% interval. The XSTest column scores the
fold-0 model on XSTest (n=2,250), to show what in-domain labels cost on another model family's responses.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score
from sklearn.model_selection import StratifiedKFold

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from classifiers import tfidf  # noqa: E402
from classifiers.evaluate import binary, bootstrap_scores, load_jsonl, load_reuter, load_xstest  # noqa: E402
from classifiers.train import DEFAULT_DATA, training_items  # noqa: E402

SHARED = ROOT.parent / "shared"
RESULTS = ROOT / "bench" / "RESULTS.md"
HEADER = "## Refusal classifier ceiling (diagnostic)"
PEERS = "aim 0.93; shipped default (no Reuter labels) 0.869; Reuter & Schulze in-domain TF-IDF+LR 0.906, fine-tuned BERT 0.965"


def _binary_pred(clf, recs) -> list[str]:
    return binary([p.label for p in clf.predict([r["response"] for r in recs], [r["prompt"] for r in recs])])


def run(folds: int = 5, sizes=(0, 100, 200, 400, -1)) -> list[dict]:
    reuter = load_reuter(SHARED / "reference" / "refusals" / "all_hand_labeled.json")
    xstest = load_xstest(SHARED / "reference" / "xstest" / "model_completions")
    ours = load_jsonl(DEFAULT_DATA)
    ours_items, ours_y = training_items(ours, 0), [r["label"] for r in ours]
    y = np.asarray([r["label"] for r in reuter])
    setups = [("in-domain", None)] + [("ours + n", n) for n in sizes]
    oof = {s: np.empty(len(reuter), dtype=object) for s in setups}
    xs_acc: dict = {}
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for k, (tr, te) in enumerate(skf.split(np.zeros(len(y)), y)):
        pool = np.random.default_rng(k).permutation(tr)
        for s in setups:
            t = time.perf_counter()
            name, n = s
            gold = pool if name == "in-domain" or n == -1 else pool[:n]
            items = [] if name == "in-domain" else list(ours_items)
            labels = [] if name == "in-domain" else list(ours_y)
            items += [(reuter[i]["response"], reuter[i]["prompt"]) for i in gold]
            labels += [reuter[i]["label"] for i in gold]
            clf = tfidf.fit(items, labels)
            oof[s][te] = _binary_pred(clf, [reuter[i] for i in te])
            if k == 0:
                xs_acc[s] = accuracy_score(binary([r["label"] for r in xstest]), _binary_pred(clf, xstest))
            print(f"fold {k + 1}/{folds} {name} {'' if n is None else n}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    rows = []
    for s in setups:
        name, n = s
        acc = accuracy_score(y, oof[s])
        lo, hi = bootstrap_scores(y, list(oof[s]))["accuracy_ci95"]
        n_gold = round(len(y) * (folds - 1) / folds) if (name == "in-domain" or n == -1) else n
        rows.append({"setup": name, "reuter_labels": n_gold, "own_data": name != "in-domain", "acc": acc, "ci": (lo, hi),
                     "xstest_fold0": xs_acc[s]})
    return rows


def table(rows: list[dict]) -> str:
    out = ["| setup | Reuter labels used per fold | our 8,040 examples | Reuter accuracy, out of fold [95% CI] | XSTest accuracy (fold-0 model) |",
           "|---|---|---|---|---|"]
    for r in rows:
        lo, hi = r["ci"]
        out.append(f"| {r['setup']} | {r['reuter_labels']} | {'yes' if r['own_data'] else 'no'} | {r['acc']:.3f} [{lo:.3f}, {hi:.3f}] | {r['xstest_fold0']:.3f} |")
    return "\n".join(out)


def write_results(text: str) -> None:
    body = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else "# Benchmark results\n"
    start = body.find(HEADER)
    if start >= 0:
        nxt = body.find("\n## ", start + len(HEADER))
        body = body[:start] + text + ("\n" + body[nxt + 1:] if nxt >= 0 else "")
    else:
        body = body.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(body, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--write-results", action="store_true")
    a = ap.parse_args()
    if not (SHARED / "reference" / "refusals" / "all_hand_labeled.json").is_file():
        sys.exit("needs ../shared/reference (Reuter & Schulze and XSTest); not present")
    rows = run(a.folds)
    tab = table(rows)
    print(tab)
    print(f"\npeers: {PEERS}")
    if a.write_results:
        text = (f"{HEADER}\n\nMachine: {platform.node()} ({platform.machine()}, Python {platform.python_version()}); date {date.today()}; "
                f"command `python bench/refusal_ceiling.py --write-results`; {a.folds}-fold stratified over Reuter & Schulze "
                f"(n=1,706), the shipped TF-IDF pipeline refitted per fold; nothing is saved or shipped.\n\n{tab}\n\n"
                f"Peers: {PEERS}.\n")
        write_results(text)


if __name__ == "__main__":
    main()
