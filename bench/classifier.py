"""Benchmark the refusal classifiers: responses labelled per second on one core, peak memory, load time, and
binary accuracy on the holdouts (the golden sets in tests/data; the external sets when ../shared is present), each
answered through Thresholdout (probe.holdout), so every run spends one unit of a holdout's budget per figure that
differs from the cross-validated one, recorded in classifiers/holdout_ledger.json (commit it).

    python bench/classifier.py [--n 2000] [--no-accuracy] [--ledger FILE]

Each classifier runs in its own subprocess (OMP/MKL threads 1, torch threads 1) so that peak RSS
(resource.getrusage maxrss) is its own. Prints a table with the aim beside each figure and rewrites the
`## Refusal classifiers` section of bench/RESULTS.md (other sections are left alone).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
RESULTS = ROOT / "bench" / "RESULTS.md"
AIMS = {"tfidf": 2000, "embedding": 150}
ACC_AIMS = {"reuter": 0.93, "xstest": 0.92}
HEADER = "## Refusal classifiers"

CHILD = r"""
import json, os, random, resource, sys, time
sys.path.insert(0, {root!r})
name, n, do_acc, shared = {name!r}, {n}, {do_acc}, {shared!r}
try:
    import torch
    torch.set_num_threads(1)
except ImportError:
    pass
t0 = time.perf_counter()
from classifiers import registry
clf = registry.get(name)
load_s = time.perf_counter() - t0
from classifiers.evaluate import load_jsonl
recs = load_jsonl(os.path.join({root!r}, "classifiers", "data", "train.jsonl"))
random.Random(0).shuffle(recs)
texts = [r["response"] for r in recs][:n]
prompts = [r["prompt"] for r in recs][:n]
clf.predict(texts[:16], prompts[:16])  # warm-up (lazy encoder load for the embedding classifier)
t = time.perf_counter()
clf.predict(texts, prompts)
rate = len(texts) / (time.perf_counter() - t)
out = {{"name": name, "version": clf.version, "load_s": load_s, "per_s": rate, "n": len(texts)}}
if do_acc:
    # holdout figures go through Thresholdout in the parent (probe.holdout): here only their raw values, never printed
    from classifiers import holdout_sets
    out["cv_acc"] = holdout_sets.training_accuracy(clf, os.path.join({root!r}, "classifiers", "data", "train.jsonl"))
    out["holdout_acc"] = {{}}
    for k in ("golden", "reuter", "xstest"):
        try:
            data = holdout_sets.load(k)
        except FileNotFoundError:
            continue
        if k == "reuter":
            ext = data[:n]
            t = time.perf_counter()
            clf.predict([r["response"] for r in ext], [r["prompt"] for r in ext])
            out["per_s_reuter"] = len(ext) / (time.perf_counter() - t)
        out["holdout_acc"][k] = {{"n": len(data), "acc": holdout_sets.binary_accuracy(data, clf)}}
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(out))
"""


def run_one(name: str, n: int, do_acc: bool) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    code = CHILD.format(root=str(ROOT), name=name, n=n, do_acc=do_acc, shared=str(SHARED))
    cmd = [sys.executable, "-c", code]
    if sys.platform.startswith("linux"):
        cmd = ["taskset", "-c", "0", *cmd]  # one core
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if p.returncode != 0 or line is None:
        raise RuntimeError(f"{name}: benchmark failed\n{p.stderr[-2000:]}")
    return json.loads(line[len("RESULT "):])


def through_holdout(results: list[dict], ledger: str | None) -> None:
    """Replace each raw holdout accuracy by Thresholdout's answer, spending the ledger's budget (probe.holdout)."""
    from probe.holdout import BudgetSpent, Ledger

    for r in results:
        for name, h in r.get("holdout_acc", {}).items():
            led = Ledger(name, ledger)
            try:
                h["answer"] = led.query(r["cv_acc"], h.pop("acc"), who=f"{r['name']}:{r['version']} (bench)")
                h["left"] = led.left
            except BudgetSpent as e:  # a spent budget: the figure is refused, the rest of the bench goes on
                h["answer"], h["left"] = None, str(e)


def fmt_acc(r: dict, key: str) -> str:
    h = r.get("holdout_acc", {}).get(key)
    if not h:
        return "n/a"
    if h["answer"] is None:
        return "budget spent"
    return f"{h['answer']:.3f} (n={h['n']}; budget left {h['left']})"


def table(results: list[dict]) -> list[str]:
    rows = ["| classifier | version | responses/s, 1 core (train sample, mean 316 chars) | on Reuter responses (mean 640 chars) | aim | peak RSS MB | load s (incl. imports) | CV binary acc (training side) | golden sets binary acc, Thresholdout | Reuter binary acc, Thresholdout (aim 0.93) | XSTest binary acc, Thresholdout (aim 0.92) |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        aim = AIMS.get(r["name"], 0)
        ok = "met" if r["per_s"] >= aim else "not met"
        reu = f"{r['per_s_reuter']:.0f}" if "per_s_reuter" in r else "n/a"
        cv = f"{r['cv_acc']:.3f}" if r.get("cv_acc") is not None else "n/a"
        rows.append(f"| {r['name']} | {r['version']} | {r['per_s']:.0f} | {reu} | >= {aim} ({ok}) | {r['peak_rss_mb']:.0f} | {r['load_s']:.2f} | "
                    f"{cv} | {fmt_acc(r, 'golden')} | {fmt_acc(r, 'reuter')} | {fmt_acc(r, 'xstest')} |")
    return rows


def write_section(lines: list[str]) -> None:
    body = "\n".join([HEADER, "", *lines, ""]) + "\n"
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n\n"
    pat = re.compile(rf"^{re.escape(HEADER)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pat.sub(lambda _: body, text) if pat.search(text) else text.rstrip("\n") + "\n\n" + body
    RESULTS.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="responses per throughput run (the embedding run uses n/4)")
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--ledger", help="holdout budget ledger (default classifiers/holdout_ledger.json)")
    a = ap.parse_args(argv)
    from classifiers import registry

    results = []
    for name in registry.NAMES:
        n = a.n if name == "tfidf" else max(100, a.n // 4)
        results.append(run_one(name, n, not a.no_accuracy))
    if not a.no_accuracy:
        through_holdout(results, a.ledger)
    lines = table(results)
    print("\n".join(lines))
    cpu = platform.processor() or platform.machine()
    note = [
        "",
        f"Measured {date.today().isoformat()} on {os.cpu_count()}-CPU {cpu} ({platform.system()}), one core (taskset, 1 thread), "
        f"responses drawn from classifiers/data/train.jsonl. Accuracy: binary view (refusal = refusal or partial), prompts given, "
        f"holdouts never trained on (golden: tests/data/golden_refusals.jsonl and golden_mixed.jsonl less its tuning split; Reuter & "
        f"Schulze n=1,706 with the paper's binarisation; XSTest v2 completions n=2,250), each figure answered through Thresholdout "
        f"(probe.holdout; the ledger classifiers/holdout_ledger.json keeps the budget). Rebuild with `python bench/classifier.py`.",
    ]
    write_section(lines + note)
    print(f"wrote section '{HEADER}' of {RESULTS}")


if __name__ == "__main__":
    main()
