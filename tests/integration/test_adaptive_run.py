"""`probe run --target-ci` embedded: rounds go to the cells whose intervals are wide (a refusal rate near 0.5) and
not to those already precise (a rate near 0), every cell ends within the target or at its cap, sample indices
continue without duplicates, and the report gives per cell the samples used, the half-width and the method."""

from __future__ import annotations

import json
from collections import Counter

from typer.testing import CliRunner

from probe.cli.main import app
from probe.store import Store

TARGET, CAP = 0.15, 80


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


def test_target_ci_survey_cells_cover_the_true_shares(tmp_path):
    """Survey cells (model x question, one confidence sequence per option share): a respondent whose answers do not
    vary (uniform, exact letter probabilities) stops within a few rounds; an A-biased one, whose
    option probabilities vary with the answer order, gets more rounds, and its intervals cover the true shares."""
    import yaml

    from probe import paths, sim

    data = yaml.safe_load((paths.SURVEYS / "acs2019.yaml").read_text(encoding="utf-8"))
    data["name"], data["questions"] = "mini", data["questions"][:2]
    survey = tmp_path / "mini.yaml"
    survey.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 's.db'}"
    biased = "sim/a_bias=0.5,prefer=seed:3"
    r = CliRunner().invoke(app, ["run", "--model", "sim/uniform", "--model", biased, "--survey", str(survey),
                                 "--answer-mode", "logprobs", "--samples", "10", "--processes", "1",
                                 "--target-ci", "0.1", "--max-samples", "100", "--db", db])
    assert r.exit_code == 0, r.output
    cid = r.stdout.strip().splitlines()[-1]
    ad = json.loads(CliRunner().invoke(app, ["report", cid, "--db", db, "--format", "json"]).stdout)["adaptive"]
    cells = {(c["model"], c["cell"]): c for c in ad["cells"]}
    b = sim.parse(biased.split("/", 1)[1])
    for q in data["questions"]:
        flat, wide = cells[("sim/uniform", q["id"])], cells[(biased, q["id"])]
        print(q["id"], flat["samples"], wide["samples"], round(wide["half_width"], 3))
        assert flat["met_target"] and flat["samples"] <= 50
        assert wide["samples"] > 1.5 * flat["samples"] and (wide["met_target"] or wide["at_cap"])
        texts = [o["text"] for o in q["options"]]
        k = len(texts)
        w = min(1.0, b.a_bias / (1 - 1 / k))
        truth = [w / k + (1 - w) * p for p in sim.preference(b, q["text"], texts)]  # random order: A is any option
        for t, (lo, hi) in zip(truth, wide["interval"]):
            assert lo <= t <= hi
