"""probe.models sends openai/ calls through LiteLLM's own HTTP handler (EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER,
set in probe.models for its lower CPU per call): what acall returns and raises is the same as on the OpenAI SDK's
path, over real HTTP to the test server."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from probe import models
from probe.spec import ModelSpec
from probe.testing.model_server import running_server, set_fault_plan, set_faults

SURVEY = "How often?\nA. Never\nB. Sometimes\nC. Often\nD. Always\nAnswer:"


def _outcomes(url: str) -> list[tuple]:
    async def run() -> list[tuple]:
        spec = ModelSpec(id="openai/test", api_base=url + "/v1")
        priced = ModelSpec(id="openai/gpt-4o-mini", api_base=url + "/v1")
        out = []
        for s, logprobs in ((spec, True), (spec, False), (priced, True)):
            c = await models.acall(s, [{"role": "user", "content": SURVEY}], seed=3, max_tokens=1, logprobs=logprobs,
                                   timeout=10, num_retries=0)
            out.append((c.text, c.top_logprobs, c.usage, c.cost, c.reported_model, c.system_fingerprint,
                        c.finish_reason))
        for marker in ("[[401]]", "[[400]]", "[[500]]", "[[null]]"):
            try:
                c = await models.acall(spec, [{"role": "user", "content": marker}], seed=1, max_tokens=5,
                                       logprobs=False, timeout=10, num_retries=0)
                out.append((marker, c.text, c.finish_reason))
            except models.CallError as e:
                out.append((marker, e.kind, e.rate_limited, e.retry_after, type(e).__name__, str(e).split(":")[0]))
        set_faults(url, "429", seconds=30, retry_after=3)
        try:
            with pytest.raises(models.CallError) as e:
                await models.acall(spec, [{"role": "user", "content": "hi"}], seed=1, max_tokens=5, logprobs=False,
                                   timeout=10, num_retries=0)
            out.append(("429", e.value.kind, e.value.rate_limited, e.value.retry_after))
        finally:
            set_fault_plan(url, [])
        return out

    return asyncio.run(run())


def test_same_results_and_errors_as_the_sdk_path(monkeypatch):
    with running_server(report_model="gpt-x-2025-01", fingerprint="fp_7", a_bias=0.4) as (url, _):
        monkeypatch.setenv("EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER", "false")
        sdk = _outcomes(url)
        monkeypatch.setenv("EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER", "true")
        handler = _outcomes(url)
    assert handler == sdk
    assert sdk[0][0] in "ABCD" and [t for t, _ in sdk[0][1]] == ["A", "B", "C", "D"]  # logprobs parsed
    assert sdk[0][4:6] == ("gpt-x-2025-01", "fp_7") and sdk[0][3] is None  # reported model; unpriced: no cost
    assert sdk[2][3] and sdk[2][3] > 0  # a model LiteLLM prices has its cost
    assert [o[1] for o in sdk[3:6]] == ["permanent", "permanent", "transient"]
    assert sdk[-1] == ("429", "transient", True, 3.0)  # Retry-After reaches the limiter


def test_rate_limit_headers_read_on_both_paths(monkeypatch):
    async def chat(request: web.Request) -> web.Response:
        body = {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "A"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
        return web.json_response(body, headers={"x-ratelimit-limit-requests": "500",
                                                "x-ratelimit-limit-tokens": "30000"})

    async def run() -> list:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        spec = ModelSpec(id="openai/test", api_base=f"http://127.0.0.1:{runner.addresses[0][1]}/v1")
        out = []
        try:
            for flag in ("false", "true"):
                monkeypatch.setenv("EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER", flag)
                c = await models.acall(spec, [{"role": "user", "content": "hi"}], seed=1, max_tokens=1,
                                       logprobs=False, timeout=10, num_retries=0)
                out.append(c.rate_limits)
        finally:
            await runner.cleanup()
        return out

    assert asyncio.run(run()) == [{"requests": 500, "tokens": 30000}] * 2
