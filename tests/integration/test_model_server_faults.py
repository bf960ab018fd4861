"""The test model server's run-time fault stretches (POST /faults), over real HTTP against a real subprocess."""

from __future__ import annotations

import time
import urllib.error
from collections.abc import Iterator

import httpx
import pytest

from probe.testing.model_server import running_server, set_fault_plan, set_faults

SURVEY = "What is your sex?\nA. Male\nB. Female\nC. Other\nD. Prefer not to say\nAnswer:"


def chat(client: httpx.Client, content: str = SURVEY, timeout: float = 10) -> httpx.Response:
    return client.post("/v1/chat/completions", json={"model": "test", "messages": [{"role": "user", "content": content}]},
                       timeout=timeout)


@pytest.fixture
def server() -> Iterator[tuple[str, httpx.Client]]:
    with running_server(retry_after=1, hang_seconds=30) as (base_url, _), \
            httpx.Client(base_url=base_url, timeout=10) as c:
        yield base_url, c


def test_fault_stretch_applies_to_every_request_then_ends(server) -> None:
    base_url, c = server
    assert chat(c).status_code == 200
    state = set_faults(base_url, "429", 1.5, retry_after=2)
    assert state["mode"] == "429" and 0 < state["remaining_s"] <= 1.5
    for content in (SURVEY, "Tell me a story.", "[[400]] even a forced 400"):  # a stretch comes before markers
        r = chat(c, content)
        assert r.status_code == 429 and r.headers["Retry-After"] == "2"
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
    time.sleep(1.6)
    assert chat(c).status_code == 200  # back to normal
    faults = c.get("/faults").json()
    assert faults["mode"] is None and faults["plan"] == [] and faults["counts"]["429"] == 3

    set_faults(base_url, 500, 30)  # the mode may be given as a number
    assert chat(c).status_code == 500
    set_faults(base_url, "429", 30)  # a new POST replaces the stretch in force; retry_after defaults to the flag's
    r = chat(c)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    set_fault_plan(base_url, [])  # clears
    assert chat(c).status_code == 200
    # /stats keeps its keys and counts what the stretches answered like any other outcome
    stats = c.get("/stats").json()
    assert set(stats) == {"requests", "ok", "status_429", "status_500", "status_4xx", "hangs", "in_flight",
                          "max_in_flight"}
    assert (stats["status_429"], stats["status_500"], stats["ok"], stats["status_4xx"]) == (4, 1, 3, 0)


def test_hang_stretch_holds_then_answers_200(server) -> None:
    base_url, c = server
    set_faults(base_url, "hang", 30, hang_seconds=0.6)
    t0 = time.monotonic()
    r = chat(c)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] in "ABCD"
    assert time.monotonic() - t0 >= 0.55
    set_faults(base_url, "hang", 30)  # hang_seconds defaults to --hang-seconds (30 here): the client gives up
    with pytest.raises(httpx.ReadTimeout):
        chat(c, timeout=0.5)
    stats = c.get("/stats").json()
    assert stats["hangs"] == 2
    deadline = time.monotonic() + 3  # a client that went away frees the hung handler, as with [[hang]]
    while stats["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
        stats = c.get("/stats").json()
    assert stats["in_flight"] == 0


def test_plan_runs_stretches_back_to_back(server) -> None:
    base_url, c = server
    state = set_fault_plan(base_url, [{"mode": "500", "seconds": 1.0}, {"mode": "429", "seconds": 1.0, "retry_after": 3}])
    assert [s["mode"] for s in state["plan"]] == ["500", "429"] and state["mode"] == "500"
    assert chat(c).status_code == 500
    time.sleep(1.1)
    r = chat(c)
    assert r.status_code == 429 and r.headers["Retry-After"] == "3"
    time.sleep(1.0)
    assert chat(c).status_code == 200
    assert c.get("/faults").json()["counts"] == {"429": 1, "500": 1, "hang": 0, "ok": 0}


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[str, httpx.Client]]:
    with running_server() as (base_url, _), httpx.Client(base_url=base_url, timeout=10) as c:
        yield base_url, c


def test_ok_stretch_suppresses_random_faults() -> None:
    with running_server(p500=1.0) as (base_url, _), httpx.Client(base_url=base_url, timeout=10) as c:
        assert chat(c).status_code == 500
        set_faults(base_url, "ok", 1.0)
        assert [chat(c).status_code for _ in range(5)] == [200] * 5
        assert chat(c, "[[500]] markers still apply").status_code == 500
        time.sleep(1.1)
        assert chat(c).status_code == 500


@pytest.mark.parametrize("body", [
    {"mode": "503", "seconds": 1}, {"mode": "429"}, {"mode": "429", "seconds": -1}, {"mode": "429", "seconds": "5"},
    {"mode": "429", "seconds": 1, "retry_after": 1.5}, {"mode": "hang", "seconds": 1, "hang_seconds": -2}, ["429"],
])
def test_bad_fault_bodies_are_400_and_change_nothing(shared, body) -> None:
    base_url, c = shared
    set_faults(base_url, "500", 30)
    r = c.post("/faults", json=body)
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("POST /faults: ")
    assert c.get("/faults").json()["mode"] == "500"
    assert c.post("/faults", content=b"not json").status_code == 400
    with pytest.raises(urllib.error.HTTPError):
        set_faults(base_url, "nope", 1)
