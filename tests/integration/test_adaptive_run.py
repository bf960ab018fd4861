"""`probe run --target-ci` embedded: rounds go to the cells whose intervals are wide (a refusal rate near 0.5) and
not to those already precise (a rate near 0), every cell ends within the target or at its cap, sample indices
continue without duplicates, and the report gives per cell the samples used, the half-width and the method."""

from __future__ import annotations

import json
from collections import Counter

from typer.testing import CliRunner

from probe.cli.main import app
from probe.store import Store

TARGET, CAP = 0.15, 120


def test_target_ci_embedded(tmp_path):
    core = [json.loads(x) for x in open("prompts/refusal/core.jsonl", encoding="utf-8")]
    cats = ("illegal_acts", "benign")
    small = tmp_path / "two.jsonl"
    small.write_text("".join(json.dumps(p) + "\n" for c in cats for p in [q for q in core if q["category"] == c][:8]))
    db = f"sqlite:///{tmp_path / 'a.db'}"
    models = ["sim/refusal_rate=0.5", "sim/refusal_rate=0.02"]
    r = CliRunner().invoke(app, ["run", *sum([["--model", m] for m in models], []), "--refusals", str(small),
                                 "--samples", "10", "--seed", "5", "--processes", "1", "--target-ci", str(TARGET), "--max-samples",
                                 str(CAP), "--db", db])
    assert r.exit_code == 0, r.output
    assert "round 2:" in r.output
    cid = r.stdout.strip().splitlines()[-1]
    rep = json.loads(CliRunner().invoke(app, ["report", cid, "--db", db, "--format", "json"]).stdout)
    ad = rep["adaptive"]
    assert ad["target_ci"] == TARGET and ad["max_samples"] == CAP and "betting confidence sequence" in ad["method"]
    cells = {(c["model"], c["cell"]): c for c in ad["cells"]}
    assert len(cells) == 4
    for c in cells.values():
        assert c["met_target"] or c["samples"] >= CAP
        assert c["half_width"] <= TARGET or c["at_cap"]
        lo, hi = c["interval"]
        assert lo <= c["estimate"] <= hi
    wide = [cells[(models[0], c)]["samples"] for c in cats]
    narrow = [cells[(models[1], c)]["samples"] for c in cats]
    assert min(wide) > 2 * max(narrow)  # the rounds went where the variance is
    for cat in cats:  # the sim's refusal rate is covered by the stopped interval
        lo, hi = cells[(models[0], cat)]["interval"]
        assert lo <= 0.5 <= hi
    assert sum(c["samples"] for c in cells.values()) == ad["calls"] == rep["campaign"]["n_items"]
    store = Store(db)
    samples = Counter((i.model, i.item_id, i.sample) for i, _ in store.rows(cid))
    assert max(samples.values()) == 1  # no duplicate item, whatever the rounds
    assert store.progress(cid).get("pending", 0) == 0 and store.state(cid) == "done"
