"""Offline models (sim/, local/) are answered without importing litellm (3-7 s of CPU a process)."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from tests.conftest import run_probe


def test_a_sim_campaign_never_imports_litellm(tmp_path):
    db = f"sqlite:///{tmp_path / 'sim.db'}"
    r = run_probe("run", "--model", "sim/a_bias=0.4,prefer=seed:7", "--survey", "acs2019", "--samples", "2",
                  "--seed", "3", "--db", db, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.search(r"\|\s+probe\.sim$", r.stderr, re.M)  # the import profile is there, and shows the simulator
    assert "litellm" not in r.stderr
    cid = r.stdout.strip().splitlines()[-1]
    rep = json.loads(run_probe("report", cid, "--db", db, "--format", "json").stdout)
    s = rep["models"]["sim/a_bias=0.4,prefer=seed:7"]["surveys"]["acs2019"]
    assert len(s["questions"]) == 25 and all(q["n"] == 2 and q["invalid"] == 0 for q in s["questions"].values())


def test_offline_calls_keep_their_completion_fields():
    from probe import models
    from probe.spec import ModelSpec

    msgs = [{"role": "user", "content": "Sex?\nA. Male\nB. Female\nAnswer with a letter."}]

    def call(model: str, **kw) -> models.Completion:
        kw = dict(seed=5, max_tokens=1, logprobs=True, timeout=10, num_retries=0) | kw
        return asyncio.run(models.acall(ModelSpec(id=model), msgs, **kw))

    c = call("sim/uniform")
    assert c.text in ("A", "B") and c.finish_reason == "stop" and c.reported_model == "sim/uniform"
    assert sorted(t for t, _ in c.top_logprobs) == ["A", "B"]
    assert [v for _, v in c.top_logprobs] == pytest.approx([-0.693147] * 2, abs=1e-5)
    assert c.usage == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0} and c.cost is None
    assert call("sim/uniform", logprobs=False).top_logprobs is None
    assert call("sim/uniform", seed=9).text == call("sim/uniform", seed=9).text  # the seed decides the letter
    with pytest.raises(models.CallError, match="sim/bogus") as e:
        call("sim/bogus")
    assert e.value.kind == "permanent"
    with pytest.raises(models.CallError, match="unknown local model 'local/nope'"):
        call("local/nope")
    assert models.dropped_params(ModelSpec(id="local/smollm2-135m"), {"logprobs": True, "seed": 1}) == []
    with pytest.raises(Exception, match="unknown local model 'local/nope'"):
        models.check(ModelSpec(id="local/nope"))
