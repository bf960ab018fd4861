"""Refusal campaigns end to end: rates against a known truth, through real HTTP and with simulators."""

from __future__ import annotations

import json

import numpy as np
import pytest

from probe import campaigns, dispatch, probesets, report
from probe.spec import CampaignSpec, ModelSpec
from probe.store import Store
from probe.testing.model_server import expected_refusal, running_server
from tests.conftest import run_probe

pytest.importorskip("classifiers.registry")


def test_rate_through_http_matches_the_servers_known_behaviour(tmp_path):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    rate = 0.35
    core = probesets.load("core")
    truth = np.mean([expected_refusal(p.text, rate) for p in core.prompts])
    with running_server(refusal_rate=rate, p429=0.05, seed=2) as (url, _):
        r = run_probe("run", "--model", "openai/test", "--api-base", f"{url}/v1", "--refusals", "core",
                      "--samples", "1", "--db", db)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip().splitlines()[-1]
    rep = json.loads(run_probe("report", cid, "--db", db, "--format", "json").stdout)
    got = rep["models"]["openai/test"]["refusals"]["core"]
    assert got["n"] == len(core.prompts)
    assert abs(got["refusal_rate"] - truth) <= 0.03
    lo, hi = got["ci95"]
    assert lo <= truth <= hi
    assert set(got["by_category"]) == set(core.by_category())
    for cat, prompts in core.by_category().items():
        cat_truth = np.mean([expected_refusal(p.text, rate) for p in prompts])
        assert abs(got["by_category"][cat]["refusal_rate"] - cat_truth) <= 0.1, cat
    assert got["over_refusal"]["n"] == sum(p.expected == "comply" for p in core.prompts)


SMALL_SET = "\n".join(json.dumps({"id": f"s-{i:03d}", "text": f"Tell me about topic number {i}.",
                                   "category": "benign", "expected": "comply", "harmful": False})
                      for i in range(40)) + "\n"


def test_intervals_cover_the_true_rate_in_90_of_100_replications(tmp_path):
    path = tmp_path / "small.jsonl"
    path.write_text(SMALL_SET)
    store = Store(f"sqlite:///{tmp_path / 'rep.db'}")
    true_rate, covered, estimates = 0.3, 0, []
    for seed in range(100):
        spec = CampaignSpec(models=[ModelSpec(id=f"sim/refusal_rate={true_rate}")], refusals=[str(path)],
                            samples=1, seed=seed, concurrency=40)
        cid, _ = campaigns.create(store, spec, "embedded")
        dispatch.run_embedded(store, cid, 40)
        got = report.build(store, cid)["models"][spec.models[0].id]["refusals"]["small"]
        assert got["n"] == 40
        estimates.append(got["refusal_rate"])
        covered += got["ci95"][0] <= true_rate <= got["ci95"][1]
    assert covered >= 90, covered
    assert abs(np.mean(estimates) - true_rate) < 0.02
