"""Synthetic individuals from the embedded local model (SmolLM2-135M): how long one individual takes, with and
without reusing the conversation's key-value cache between turns, and the signal and discriminator tests against
the census microdata of the 2019 PUMS excerpt in ../shared (the paper's finding, on a real model).

    python bench/individuals.py [--individuals 20] [--uncached 1] [--write-results]

Runs `probe run --model local/smollm2-135m --mode individuals` embedded into a fresh SQLite store, builds the
excerpt's microdata with `probe baselines build --keep-microdata` (9 of the 25 variables), and reads the report's
`individuals` section. --uncached N times N individuals with the cache off (PROBE_LOCAL_PREFIX_CACHE=0: every
turn recomputes the whole conversation).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = str(Path(sys.executable).with_name("probe"))
NIST = ROOT.parent / "shared" / "reference" / "acs" / "pums_sample" / "national2019.csv"
NIST_MAP = """\
HISP: {column: HISP, values: {0: 1, 1: 2, 2: 2, 3: 2, 4: 2}}
SCHL: {column: EDU, values: {1: 1, 2: 2, 3: 2, 4: 2, 5: 16, 6: 16, 7: 18, 8: 18, 9: 18, 10: 22, 11: 22, 12: 22}}
MAR: {column: MSP, values: {1: 1, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5}}
"""


def probe(*args: str, env: dict | None = None) -> str:
    r = subprocess.run([PROBE, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})
    if r.returncode:
        sys.exit(f"probe {' '.join(args)} failed: {r.stderr.strip().splitlines()[-1]}")
    return r.stdout


def campaign(db: str, n: int, seed: int, env: dict | None = None) -> tuple[str, float]:
    t = time.perf_counter()
    out = probe("run", "--model", "local/smollm2-135m", "--mode", "individuals", "--samples", str(n), "--seed",
                str(seed), "--db", db, env=env)
    return out.strip().splitlines()[-1], time.perf_counter() - t


def fmt(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--individuals", type=int, default=20)
    ap.add_argument("--uncached", type=int, default=1)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PROBE_HOME"] = tmp
        (Path(tmp) / "map.yaml").write_text(NIST_MAP)
        probe("baselines", "build", "--pums-csv", str(NIST), "--name", "nist", "--column-map",
              str(Path(tmp) / "map.yaml"), "--keep-microdata")
        db = f"sqlite:///{tmp}/b.db"
        campaign(db, 1, 99)  # converts the model on a fresh machine: not timed below
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "from probe import local_model, models; local_model.get('smollm2-135m')"],
                       check=True)
        load = time.perf_counter() - t  # each `probe run` below loads the model once: subtracted
        print(f"model load {load:.1f} s", flush=True)
        cid, secs = campaign(db, args.individuals, 1)
        secs -= load
        print(f"{args.individuals} individuals: {secs:.1f} s", flush=True)
        uncached = None
        if args.uncached:
            _, u = campaign(db, args.uncached, 2, env={"PROBE_LOCAL_PREFIX_CACHE": "0"})
            _, c = campaign(db, args.uncached, 2)
            uncached = (u - load, c - load)
            print(f"uncached {u:.1f} s, cached {c:.1f} s", flush=True)
        rep = json.loads(probe("report", cid, "--db", db, "--microdata", "nist", "--format", "json"))
    s = rep["models"]["local/smollm2-135m"]["surveys"]["acs2019"]
    ind = s["individuals"]
    turns = sum(q["n"] for q in s["questions"].values()) / max(ind["n_individuals"], 1)
    lines = [f"Machine: {platform.node()} ({os.cpu_count()} cores, {platform.machine()}, Python "
             f"{platform.python_version()}); date {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; command "
             f"`python bench/individuals.py --individuals {args.individuals} --uncached {args.uncached}`; "
             f"local/smollm2-135m, acs2019, answer mode auto (exact letter probabilities), census: the 2019 PUMS "
             f"excerpt (27,253 records, 9 of 25 variables).", "",
             f"- {args.individuals} individuals in {secs:.0f} s embedded, all in flight at once (model load, {load:.0f} s, "
             "excluded): "
             f"{secs / args.individuals:.1f} s per individual, {turns:.1f} questions asked on average."]
    if uncached:
        u, c = uncached
        lines.append(f"- Key-value cache reuse between turns, {args.uncached} individual(s) alone: {c:.1f} s with it, "
                     f"{u:.1f} s without (each turn recomputing the whole conversation): {u / c:.1f}x.")
    d = ind["discriminator"]
    lines += [f"- Discriminator (model vs census, {d['seeds']} seeds): accuracy {fmt(d['accuracy'])} "
              f"[{fmt(d['ci95'][0])}, {fmt(d['ci95'][1])}] (0.5 = indistinguishable).", "",
              "| variable | n | majority model / census | naive Bayes | logistic | boosting |", "|---|---|---|---|---|---|"]
    for v, e in ind["signal"].items():
        lines.append(f"| {v} | {e['n']} | " + " | ".join(
            f"{fmt(e['model'][m])} / {fmt(e['census'][m])}" for m in ("majority", "naive_bayes", "logistic", "boosting"))
            + " |")
    text = "\n".join(lines)
    print(text)
    if args.write_results:
        path = ROOT / "bench" / "RESULTS.md"
        body = path.read_text()
        head = "## Synthetic individuals (local model)"
        if head in body:
            body = body[: body.index(head)].rstrip() + "\n"
        path.write_text(body.rstrip() + f"\n\n{head}\n\n{text}\n")


if __name__ == "__main__":
    main()
