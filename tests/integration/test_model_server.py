"""The test model server, over real HTTP against a real subprocess."""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from probe.testing.model_server import (
    COMPLIANCES,
    REFUSALS,
    expected_refusal,
    running_server,
)

SURVEY = "What is your sex?\nA. Male\nB. Female\nC. Other\nD. Prefer not to say\nAnswer:"


def chat(client: httpx.Client, content: str, timeout: float = 10, **body: object) -> httpx.Response:
    payload = {"model": "test", "messages": [{"role": "user", "content": content}], **body}
    return client.post("/v1/chat/completions", json=payload, timeout=timeout)


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """Default server: no bias, refusal rate 0.3, no random faults."""
    with running_server() as (base_url, _), httpx.Client(base_url=base_url, timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def biased() -> Iterator[httpx.Client]:
    with running_server(a_bias=0.4, refusal_rate=0.6) as (base_url, _), \
            httpx.Client(base_url=base_url, timeout=10) as c:
        yield c


def test_completion_shape_and_survey_logprobs(biased: httpx.Client) -> None:
    r = chat(biased, SURVEY, model="my-model", logprobs=True, top_logprobs=20, seed=7)
    assert r.status_code == 200
    data = r.json()
    assert data["object"] == "chat.completion" and data["model"] == "my-model"
    choice = data["choices"][0]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    letter = choice["message"]["content"]
    assert letter in "ABCD" and len(letter) == 1
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0

    first = choice["logprobs"]["content"][0]
    assert first["token"] == letter and first["bytes"] == [ord(letter)]
    top = {e["token"]: e["logprob"] for e in first["top_logprobs"]}
    assert list(top) == ["A", "B", "C", "D"]  # sorted by logprob, A carries the bias
    assert math.isclose(sum(math.exp(lp) for lp in top.values()), 1.0)
    # p = 0.4 * [1, 0, 0, 0] + 0.6 * uniform(4)
    assert math.isclose(math.exp(top["A"]), 0.55)
    assert all(math.isclose(math.exp(top[x]), 0.15) for x in "BCD")
    assert math.isclose(first["logprob"], top[letter])


def test_top_logprobs_truncation_and_absence(client: httpx.Client) -> None:
    first = chat(client, SURVEY, logprobs=True, top_logprobs=2).json()["choices"][0]
    first = first["logprobs"]["content"][0]
    assert len(first["top_logprobs"]) == 2
    assert all(math.isclose(math.exp(e["logprob"]), 0.25) for e in first["top_logprobs"])
    first = chat(client, SURVEY, logprobs=True).json()["choices"][0]["logprobs"]["content"][0]
    assert first["top_logprobs"] == []
    assert chat(client, SURVEY).json()["choices"][0]["logprobs"] is None


def test_a_bias_of_one_has_zero_probability_letters() -> None:
    with running_server(a_bias=1.0) as (base_url, _), httpx.Client(base_url=base_url) as c:
        answers = {chat(c, SURVEY, seed=s).json()["choices"][0]["message"]["content"]
                   for s in range(30)}
        assert answers == {"A"}
        first = chat(c, SURVEY, logprobs=True, top_logprobs=4).json()
        top = first["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        assert [(e["token"], e["logprob"]) for e in top] == [
            ("A", 0.0), ("B", -30.0), ("C", -30.0), ("D", -30.0)]


def test_seeded_answers_are_deterministic_and_follow_the_bias(biased: httpx.Client) -> None:
    def answer(seed: int) -> str:
        return chat(biased, SURVEY, seed=seed).json()["choices"][0]["message"]["content"]

    answers = [answer(s) for s in range(200)]
    assert answers[:20] == [answer(s) for s in range(20)]
    counts = Counter(answers)
    assert set(counts) == set("ABCD")
    assert abs(counts["A"] / 200 - 0.55) < 0.12  # sd is ~0.035
    assert all(abs(counts[x] / 200 - 0.15) < 0.08 for x in "BCD")


def test_refusals_match_expected_refusal(biased: httpx.Client) -> None:
    prompts = [f"Tell me about topic number {i}." for i in range(40)]
    truth = [expected_refusal(p, 0.6) for p in prompts]
    assert 0 < sum(truth) < len(truth)  # both kinds present, or the test proves little
    assert truth != [expected_refusal(p, 0.3) for p in prompts]  # the rate flag matters
    for prompt, refuse in zip(prompts, truth):
        text = chat(biased, prompt).json()["choices"][0]["message"]["content"]
        assert text in (REFUSALS if refuse else COMPLIANCES), prompt
        assert chat(biased, prompt).json()["choices"][0]["message"]["content"] == text


def test_stats_and_reset(client: httpx.Client) -> None:
    client.post("/reset")
    for _ in range(5):
        chat(client, SURVEY)
    chat(client, "[[400]]")
    stats = client.get("/stats").json()
    assert stats == {"requests": 6, "ok": 5, "status_429": 0, "status_500": 0,
                     "status_4xx": 1, "hangs": 0, "in_flight": 0, "max_in_flight": 1}
    client.post("/reset")
    assert client.get("/stats").json()["requests"] == 0


@pytest.mark.parametrize(("marker", "status", "type_"), [
    ("[[400]]", 400, "invalid_request_error"),
    ("[[401]]", 401, "invalid_request_error"),
    ("[[500]]", 500, "server_error"),
])
def test_error_markers(client: httpx.Client, marker: str, status: int, type_: str) -> None:
    r = chat(client, f"Please answer {marker} now.")
    assert r.status_code == status
    error = r.json()["error"]
    assert error["type"] == type_ and error["message"] and "code" in error


def test_hang_marker_hangs_and_frees_on_disconnect(client: httpx.Client) -> None:
    client.post("/reset")
    with pytest.raises(httpx.ReadTimeout):
        chat(client, "[[hang]] hello", timeout=0.5)
    stats = client.get("/stats").json()
    assert stats["hangs"] == 1
    # The client went away, so the hung handler is cancelled rather than held for 30 s.
    deadline = time.monotonic() + 3
    while stats["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
        stats = client.get("/stats").json()
    assert stats["in_flight"] == 0


def test_p429_sets_retry_after() -> None:
    with running_server(p429=1, retry_after=7) as (base_url, _), \
            httpx.Client(base_url=base_url) as c:
        r = chat(c, SURVEY)
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "7"
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
        assert c.get("/stats").json()["status_429"] == 1


def test_random_faults_are_drawn_per_request_and_hang_then_answer() -> None:
    with running_server(p500=0.5, p_hang=0.2, hang_seconds=0.1, seed=3) as (base_url, _), \
            httpx.Client(base_url=base_url, timeout=5) as c:
        statuses = [chat(c, "hi").status_code for _ in range(40)]
        stats = c.get("/stats").json()
    # With a per-request draw a retried request can succeed.
    assert set(statuses) == {200, 500}
    assert stats["status_500"] == statuses.count(500) and stats["ok"] == statuses.count(200)
    assert 0 < stats["hangs"] < stats["ok"]


def test_models_and_unprefixed_path(client: httpx.Client) -> None:
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["test"]
    r = client.post("/chat/completions", json={"model": "m", "messages": [
        {"role": "user", "content": [{"type": "text", "text": SURVEY}]}]})
    assert r.json()["choices"][0]["message"]["content"] in "ABCD"


def test_bad_option_reports_stderr() -> None:
    with pytest.raises(RuntimeError, match="--latency"), running_server(latency="soon"):
        pass


def test_through_litellm(client: httpx.Client) -> None:
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm

    response = litellm.completion(
        model="openai/test", api_base=str(client.base_url).rstrip("/") + "/v1", api_key="sk-test",
        messages=[{"role": "user", "content": SURVEY}], logprobs=True, top_logprobs=5,
        max_tokens=1, seed=11,
    )
    choice = response.choices[0]
    first = choice.logprobs.content[0]
    assert first.token == choice.message.content
    assert [t.token for t in first.top_logprobs] == ["A", "B", "C", "D"]
    assert all(math.isclose(math.exp(t.logprob), 0.25) for t in first.top_logprobs)
