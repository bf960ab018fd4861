"""`probe run --target-ci` on the fleet: a Redis broker, a `probe worker`, PostgreSQL, model calls over HTTP to the
test server (with 429s). Each round enqueues only the new items of the cells still too wide: the category the server
always refuses stops after the first round, the half-refused one gets the rounds; every item is stored once."""

from __future__ import annotations

import json

import pytest

from probe.testing.model_server import expected_refusal, running_server
from tests.conftest import run_probe
from tests.fleet import start_worker, stop
from tests.helpers import counts

pytestmark = pytest.mark.fleet
RATE, TARGET, CAP = 0.5, 0.25, 40


def test_target_ci_on_the_fleet(tmp_path, pg_url, redis_server):
    core = [json.loads(x) for x in open("prompts/refusal/core.jsonl", encoding="utf-8")]
    refused = [p for p in core if expected_refusal(p["text"], RATE)]
    answered = [p for p in core if not expected_refusal(p["text"], RATE)]
    prompts = ([p | {"category": "illegal_acts"} for p in refused[:6]]  # always refused: no variance
               + [p | {"category": "benign"} for p in refused[6:10] + answered[:4]])  # refused half the time
    small = tmp_path / "mixed.jsonl"
    small.write_text("".join(json.dumps(p) + "\n" for p in prompts), encoding="utf-8")
    worker = start_worker(redis_server.url, pg_url, tmp_path / "worker.log")
    try:
        with running_server(latency=0.01, p429=0.05, retry_after=1, seed=3, refusal_rate=RATE) as (url, _):
            r = run_probe("run", "--model", "openai/test", "--api-base", f"{url}/v1", "--refusals", str(small),
                          "--samples", "10", "--seed", "2", "--target-ci", str(TARGET), "--max-samples", str(CAP),
                          "--broker", redis_server.url, "--db", pg_url, "--concurrency", "8", timeout=240)
        assert r.returncode == 0, r.stderr
        assert "round 2:" in r.stderr and r.stderr.count("enqueued") >= 2
        cid = r.stdout.strip().splitlines()[-1]
        rep = run_probe("report", cid, "--db", pg_url, "--format", "json")
        assert rep.returncode == 0, rep.stderr
        ad = json.loads(rep.stdout)["adaptive"]
        cells = {c["cell"]: c for c in ad["cells"]}
        print(r.stderr[-1500:], {k: (c["samples"], round(c["half_width"], 3)) for k, c in cells.items()})
        assert cells["illegal_acts"]["estimate"] == 1.0 and cells["illegal_acts"]["met_target"]
        assert cells["benign"]["samples"] > 2 * cells["illegal_acts"]["samples"]
        assert cells["benign"]["met_target"] or cells["benign"]["samples"] == CAP
        lo, hi = cells["benign"]["interval"]
        assert lo <= 0.5 <= hi
        n = ad["calls"]
        assert counts(pg_url, cid) == {"items": n, "done": n, "responses": n, "ok_responses": n, "labels": n,
                                       "max_saves_per_item": 1}
    finally:
        stop(worker)
