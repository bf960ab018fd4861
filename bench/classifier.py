"""Benchmark the refusal classifiers: responses labelled per second on one core, peak memory, load time, and
binary accuracy (with bootstrap 95% intervals) on the external sets when ../shared is present, and accuracy and
refusal / compliance recall on the held-out half of the jailbreak-style mixed set (tests/data/golden_mixed.jsonl).

    python bench/classifier.py [--n 2000] [--no-accuracy]

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
if do_acc and os.path.isdir(shared):
    from classifiers.evaluate import load_reuter, load_xstest, evaluate_on
    sets = {{"reuter": load_reuter(os.path.join(shared, "reference", "refusals", "all_hand_labeled.json")),
            "xstest": load_xstest(os.path.join(shared, "reference", "xstest", "model_completions"))}}
    ext = sets["reuter"][:n]
    t = time.perf_counter()
    clf.predict([r["response"] for r in ext], [r["prompt"] for r in ext])
    out["per_s_reuter"] = len(ext) / (time.perf_counter() - t)
    for k, data in sets.items():
        res = evaluate_on(data, clf, n_boot=1000)
        out[k] = {{"n": res["n"], "acc": res["binary"]["accuracy"], "ci": res["binary"]["accuracy_ci95"],
                   "acc3": res["three_way"]["accuracy"]}}
mixed = [json.loads(l) for l in open(os.path.join({root!r}, "tests", "data", "golden_mixed.jsonl"), encoding="utf-8") if l.strip()]
held = [r for r in mixed if r["split"].startswith("heldout")]
preds = clf.predict([r["response"] for r in held], [r["prompt"] for r in held])
out["mixed"] = {{}}
for part in ("all", "heldout", "heldout2"):
    rp = [(r, p) for r, p in zip(held, preds) if part == "all" or r["split"] == part]
    ref = [p.refused for r, p in rp if r["label"] != "compliance"]
    com = [not p.refused for r, p in rp if r["label"] == "compliance"]
    out["mixed"][part] = {{"n": len(rp), "acc": sum(ref + com) / len(rp), "n_ref": len(ref), "ref_recall": sum(ref) / len(ref),
                          "n_com": len(com), "com_recall": sum(com) / len(com)}}
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


def fmt_acc(r: dict | None, key: str) -> str:
    if not r or key not in r:
        return "n/a"
    a = r[key]
    return f"{a['acc']:.3f} [{a['ci'][0]:.3f}, {a['ci'][1]:.3f}]"


def fmt_mixed(r: dict) -> list[str]:
    """Held-out mixed set: both batches together, then each batch (first / second) in brackets."""
    m = r.get("mixed")
    if not m:
        return ["n/a"] * 3
    a, b1, b2 = m["all"], m["heldout"], m["heldout2"]
    return [f"{a[k]:.3f} (n={a[n]}; {b1[k]:.3f} / {b2[k]:.3f})" for k, n in (("acc", "n"), ("ref_recall", "n_ref"), ("com_recall", "n_com"))]


def table(results: list[dict]) -> list[str]:
    rows = ["| classifier | version | responses/s, 1 core (train sample, mean 316 chars) | on Reuter responses (mean 640 chars) | aim | peak RSS MB | load s (incl. imports) | Reuter binary acc [95% CI] (aim 0.93) | XSTest binary acc [95% CI] (aim 0.92) | jailbreak-style mixed set, held out (batch 1 / batch 2): binary acc | refusal recall | compliance recall |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        aim = AIMS.get(r["name"], 0)
        ok = "met" if r["per_s"] >= aim else "not met"
        reu = f"{r['per_s_reuter']:.0f}" if "per_s_reuter" in r else "n/a"
        rows.append(f"| {r['name']} | {r['version']} | {r['per_s']:.0f} | {reu} | >= {aim} ({ok}) | {r['peak_rss_mb']:.0f} | {r['load_s']:.2f} | "
                    f"{fmt_acc(r, 'reuter')} | {fmt_acc(r, 'xstest')} | " + " | ".join(fmt_mixed(r)) + " |")
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
    a = ap.parse_args(argv)
    from classifiers import registry

    results = []
    for name in registry.NAMES:
        n = a.n if name == "tfidf" else max(100, a.n // 4)
        results.append(run_one(name, n, not a.no_accuracy))
    lines = table(results)
    print("\n".join(lines))
    cpu = platform.processor() or platform.machine()
    note = [
        "",
        f"Measured {date.today().isoformat()} on {os.cpu_count()}-CPU {cpu} ({platform.system()}), one core (taskset, 1 thread), "
        f"responses drawn from classifiers/data/train.jsonl. Accuracy: binary view (refusal = refusal or partial), prompts given, "
        f"external sets never trained on (Reuter & Schulze n=1,706 with the paper's binarisation; XSTest v2 completions n=2,250). "
        f"Mixed set: the held-out cases of tests/data/golden_mixed.jsonl (hand-written jailbreak-style replies: persona splits, "
        f"refusals in role-play, refusals followed by general information, multi-paragraph refusals; refusal = refusal or partial); "
        f"batch 1 (n=42) was written before any tuning, but one segmentation fix came from its errors; batch 2 (n=24) was written "
        f"before that fix and never tuned on. Rebuild with `python bench/classifier.py`.",
    ]
    write_section(lines + note)
    print(f"wrote section '{HEADER}' of {RESULTS}")


if __name__ == "__main__":
    main()
