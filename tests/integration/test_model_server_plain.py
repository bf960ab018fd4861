"""The test model server's plain mode (--plain): the aiohttp server's answers, from a thread per connection with no
keep-alive, as bench/peers.py uses it."""

from __future__ import annotations

import concurrent.futures
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import httpx
import pytest

from probe.testing.model_server import running_server, set_fault_plan, set_faults

SURVEY = "How often?\nA. Never\nB. Sometimes\nC. Often\nD. Always\nAnswer:"


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    with running_server(a_bias=0.3, latency=0.2, plain=True) as (plain, _), \
            running_server(a_bias=0.3, latency=0.2) as (aio, _):
        yield plain, aio


def _chat(url: str, content: str, **body: object) -> httpx.Response:
    payload = {"model": "test", "messages": [{"role": "user", "content": content}], **body}
    return httpx.post(f"{url}/v1/chat/completions", json=payload, timeout=10)


def _answer(r: httpx.Response) -> dict:
    data = r.json()
    return {k: v for k, v in data.items() if k not in ("id", "created")}


def test_same_answers_as_the_aiohttp_server(servers: tuple[str, str]) -> None:
    plain, aio = servers
    asks = [(content, seed) for seed in range(6)
            for content in (f"Q{seed}: {SURVEY}", f"Tell me about topic {seed}.", "[[reply:Done.]]")]

    def both(ask: tuple[str, int]) -> tuple[httpx.Response, httpx.Response]:
        return tuple(_chat(url, ask[0], seed=ask[1], logprobs=True, top_logprobs=4) for url in (plain, aio))

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for a, b in pool.map(both, asks):
            assert a.status_code == b.status_code == 200
            assert _answer(a) == _answer(b)
    bad = httpx.post(f"{plain}/v1/chat/completions", content=b"not json", timeout=10)
    assert bad.status_code == 400 and "messages" in bad.json()["error"]["message"]
    assert httpx.get(f"{plain}/nowhere", timeout=10).status_code == 404


def test_faults_and_retry_after(servers: tuple[str, str]) -> None:
    plain, _ = servers
    set_faults(plain, "429", seconds=5, retry_after=3)
    try:
        r = _chat(plain, SURVEY)
        assert r.status_code == 429 and r.headers["retry-after"] == "3"
    finally:
        set_fault_plan(plain, [])
    assert _chat(plain, SURVEY).status_code == 200
    stats = httpx.get(f"{plain}/stats", timeout=10).json()
    assert stats["status_429"] >= 1 and stats["ok"] >= 1


def test_no_keep_alive_and_a_thread_per_connection(servers: tuple[str, str]) -> None:
    plain, _ = servers
    u = urlparse(plain)
    body = b'{"model": "test", "messages": [{"role": "user", "content": "hi"}]}'
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:  # asks for keep-alive: closed anyway
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        data = b""
        while chunk := s.recv(65536):  # the server closes the connection after one response
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.0 200") and b"connection: close" in head

    # 32 requests at once, each held 200 ms: served side by side (one after another would take 6.4 s)
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        codes = list(pool.map(lambda i: _chat(plain, f"Q{i}: {SURVEY}", seed=i).status_code, range(32)))
    wall = time.perf_counter() - t0
    assert codes == [200] * 32
    assert 0.2 <= wall < 3.0, wall
    assert httpx.get(f"{plain}/stats", timeout=10).json()["max_in_flight"] >= 16
