"""A local OpenAI-compatible model server with fault injection, for tests and benchmarks.

Model calls in integration tests go through LiteLLM's real HTTP path to this server, which
answers like a deterministic respondent so tests know the truth:

- survey prompts (option lines ``A. ...``) get one letter, sampled from a known distribution
  (uniform, mixed with ``--a-bias`` weight on the first letter), with first-token logprobs;
- other prompts are refused exactly when ``expected_refusal(prompt, rate)`` says so;
- ``[[hang]]``, ``[[500]]``, ``[[400]]``, ``[[401]]`` in a message force that outcome, and
  ``--p429/--p500/--p-hang`` inject random faults drawn per request from ``--seed``;
- ``[[reply:TEXT]]`` in a message makes TEXT the answer (scripted replies, e.g. an LLM judge's verdict); ``\\]`` in
  TEXT stands for ``]``, so an answer can carry a marker its prompt does not (``[[reply:Done. [[400\\]\\]]]`` answers
  ``Done. [[400]]``: a judge's call that quotes the answer then fails);
- ``[[empty]]`` answers content ``""`` with finish_reason ``content_filter`` (a filtered answer), ``[[null]]``
  content ``null`` with finish_reason ``length`` (a reasoning model that spent its tokens thinking);
- ``--p-no-letter P`` answers that share of survey prompts with prose ("The") whose first-token top logprobs hold
  no option letter at all, the same requests every run: exactly those for which ``no_letter(prompt, seed, P)`` is
  true (prompt: the last user message; seed: the request's, or None); ``[[no-letter]]`` forces it.

``GET /requests`` lists every chat request received since the last reset as ``[unix time, status]`` pairs (rate
tests count them per window); ``GET /stats`` counts requests by outcome; ``GET /authorizations`` counts the ``Authorization`` header values
received (``""`` when absent), so tests can check which key a client sent; ``POST /reset`` zeroes both.

Fault stretches, set at run time: ``POST /faults`` with ``{"mode": "429"|"500"|"hang"|"ok", "seconds": 10,
"retry_after": 2, "hang_seconds": 5}`` gives every request that outcome for the next ``seconds`` (429 with
``Retry-After``; 500; hang: held ``hang_seconds`` (default ``--hang-seconds``), then answered 200, like
``--p-hang``; ok: no random faults), then the server is back to normal. Stretches come before the ``[[...]]``
markers. A JSON list of such objects runs them back to back; a new POST replaces what is left, ``[]`` clears it.
``GET /faults`` shows the stretch in force, those still to come and how many requests each mode answered.
``set_faults()`` and ``set_fault_plan()`` post them from Python.

Model version: ``--report-model NAME`` answers NAME in the response's ``model`` field (default: the model the
request named) and ``--fingerprint FP`` adds ``system_fingerprint``; ``POST /config`` with any of
``{"report_model", "fingerprint", "refusal_rate", "a_bias"}`` changes them at run time (a provider swapping the model
behind the same name), ``GET /config`` shows them; ``set_config()`` posts from Python.

Plain mode: ``--plain`` serves the same answers, faults and latency as a plain server does: a thread per
connection and no keep-alive (HTTP/1.0, ``Connection: close``: the client opens a new connection per request), like
a simple Python/Flask development server. bench/peers.py measures clients against it.

Run: ``python -m probe.testing.model_server --host 127.0.0.1 --port 0`` prints
``READY http://127.0.0.1:PORT`` once listening. ``running_server()`` does that in a subprocess.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import random
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from probe.testing import faults
from probe.testing.faults import FaultStretch, set_fault_plan, set_faults  # noqa: F401  (helpers beside running_server)

logger = logging.getLogger(__name__)

OPTION_LINE = re.compile(r"^([A-Z])\. (.+)$", re.MULTILINE)
REPLY_MARKER = re.compile(r"\[\[reply:((?:\\\]|.)*?)\]\]", re.DOTALL)  # TEXT may hold \] (an escaped ])
MIN_LOGPROB = -30.0  # stands in for log(0), which JSON cannot carry
MAX_TOP_LOGPROBS = 20  # OpenAI's cap

REFUSALS = (
    "I'm sorry, but I can't help with that request.",
    "I won't provide instructions for that.",
    "As an AI developed to be safe, I must decline.",
    "I can't assist with that.",
    "That's not something I'm able to help with.",
    "I must decline to answer this one, since it could cause real harm.",
    "Unfortunately, I cannot fulfil this request.",
    "No. Providing that information would be irresponsible, so I will not do it.",
)
# Helpful answers, some using "sorry"/"illegal" so naive keyword matchers get them wrong.
COMPLIANCES = (
    "Sure! Here is a step-by-step overview: first, gather what you need; second, follow the "
    "instructions in order; third, check the result.",
    "Sorry to hear that! Here are a few steps you can take: rest, drink water, and see a "
    "doctor if it gets worse.",
    "Great question. The short answer is that it depends on the context, but generally yes.",
    "Dumping waste in rivers is illegal in most countries; to dispose of paint properly, take "
    "it to a local hazardous waste collection point.",
    "Here's a simple recipe: mix the flour and water, knead for ten minutes, and bake at 220 C.",
    "Certainly. The main causes were economic pressure, political instability and drought.",
    "No need to be sorry! You can reset the password from the account settings page.",
    "Happy to help. Use a dictionary comprehension: {k: v for k, v in pairs}.",
)


def _prompt_hash(prompt_text: str) -> str:
    return hashlib.sha256(prompt_text.encode()).hexdigest()


def expected_refusal(prompt_text: str, rate: float) -> bool:
    """Whether the server refuses this (non-survey) prompt at refusal rate ``rate``."""
    return int(_prompt_hash(prompt_text)[:8], 16) / 16**8 < rate


def letter_probabilities(letters: list[str], a_bias: float) -> dict[str, float]:
    """p = W * onehot(first letter) + (1 - W) * uniform(k)."""
    k = len(letters)
    return {x: (a_bias if i == 0 else 0.0) + (1.0 - a_bias) / k for i, x in enumerate(letters)}


@dataclass
class ServerConfig:  # POST /config changes some fields at run time (RUNTIME_CONFIG)
    latency: float = 0.0
    p429: float = 0.0
    p500: float = 0.0
    p_hang: float = 0.0
    hang_seconds: float = 30.0
    retry_after: int = 1
    seed: int | None = None
    refusal_rate: float = 0.3
    a_bias: float = 0.0
    p_no_letter: float = 0.0
    report_model: str | None = None  # the `model` field answered (default: the model the request named)
    fingerprint: str | None = None  # system_fingerprint answered (default: none)
    prompt_tokens: int | None = None  # usage.prompt_tokens reported for every answer; None: the words sent


# What POST /config may change at run time (a provider swapping the model behind a name, between audit runs).
RUNTIME_CONFIG = {"report_model": (str, type(None)), "fingerprint": (str, type(None)), "refusal_rate": (int, float),
                  "a_bias": (int, float)}


NO_LETTER_TOP = (("The", 0.55), ("As", 0.2), ("Sure", 0.1), ("**", 0.06), ("It", 0.04))  # prose, no letter


def no_letter(prompt_text: str, seed: int | None, p: float) -> bool:
    """Whether the server answers this survey prompt (with this request seed) without any option letter at share p."""
    return int(hashlib.sha256(f"no-letter|{seed}|{prompt_text}".encode()).hexdigest()[:8], 16) / 16**8 < p


STAT_KEYS = ("requests", "ok", "status_429", "status_500", "status_4xx", "hangs", "in_flight", "max_in_flight")


def _text(content: Any) -> str:
    """Message content as text: a string, or the text parts of a content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(payload).encode(), status=status, headers=headers,
        content_type="application/json",
    )


def _error(status: int, message: str, type_: str, code: str | None,
           headers: dict[str, str] | None = None) -> web.Response:
    return _json({"error": {"message": message, "type": type_, "param": None, "code": code}},
                 status, headers)


def _token_logprob(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


class ModelServer:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.fault_rng = random.Random(config.seed)
        # Answers for requests without a seed; kept apart so fault draws don't shift them.
        self.answer_rng = random.Random(None if config.seed is None else f"answers|{config.seed}")
        self.stats = dict.fromkeys(STAT_KEYS, 0)
        self.authorizations: dict[str, int] = {}  # Authorization header value -> requests that carried it
        self.fault_plan: list[FaultStretch] = []  # POST /faults
        self.fault_counts = dict.fromkeys(faults.MODES, 0)  # requests answered by a stretch, per mode
        self.log: list[tuple[float, int]] = []  # (arrival unix time, status) per chat request, for GET /requests

    def routes(self) -> dict[tuple[str, str], Any]:
        return {("POST", "/v1/chat/completions"): self.chat, ("POST", "/chat/completions"): self.chat,
                ("GET", "/v1/models"): self.models, ("GET", "/models"): self.models,
                ("GET", "/stats"): self.get_stats, ("GET", "/requests"): self.get_requests,
                ("GET", "/authorizations"): self.get_authorizations, ("POST", "/reset"): self.reset,
                ("POST", "/faults"): self.post_faults, ("GET", "/faults"): self.get_faults,
                ("POST", "/config"): self.post_config, ("GET", "/config"): self.get_config}

    def app(self) -> web.Application:
        app = web.Application()
        for (method, path), handler in self.routes().items():
            app.router.add_route(method, path, handler)
        return app

    def _config_view(self) -> dict[str, Any]:
        return {k: getattr(self.config, k) for k in RUNTIME_CONFIG}

    async def post_config(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("the body must be an object")
            for k, v in body.items():
                if k not in RUNTIME_CONFIG or isinstance(v, bool) or not isinstance(v, RUNTIME_CONFIG[k]):
                    raise ValueError(f"{k}={v!r} cannot be set (settable: {', '.join(RUNTIME_CONFIG)})")
        except ValueError as e:
            return _error(400, f"POST /config: {e}", "invalid_request_error", "invalid_request")
        for k, v in body.items():
            setattr(self.config, k, v)
        return _json(self._config_view())

    async def get_config(self, request: web.Request) -> web.Response:
        return _json(self._config_view())

    async def models(self, request: web.Request) -> web.Response:
        return _json({"object": "list",
                      "data": [{"id": "test", "object": "model", "created": 0, "owned_by": "probe"}]})

    async def get_stats(self, request: web.Request) -> web.Response:
        return _json(self.stats)

    async def get_requests(self, request: web.Request) -> web.Response:
        return _json(self.log)

    async def get_authorizations(self, request: web.Request) -> web.Response:
        return _json(self.authorizations)

    async def reset(self, request: web.Request) -> web.Response:
        # in_flight describes live requests, so zeroing it would make it go negative later.
        self.stats.update({k: 0 for k in STAT_KEYS if k != "in_flight"})
        self.authorizations.clear()
        self.log.clear()
        return _json(self.stats)

    def _fault_now(self) -> FaultStretch | None:
        now = time.monotonic()
        self.fault_plan = [f for f in self.fault_plan if f.end > now]
        return next((f for f in self.fault_plan if f.start <= now), None)

    def _faults_state(self) -> dict[str, Any]:
        current, now = self._fault_now(), time.monotonic()
        return {
            "mode": current.mode if current else None,
            "remaining_s": round(current.end - now, 3) if current else 0.0,
            "plan": [{"mode": f.mode, "starts_in_s": round(max(f.start - now, 0.0), 3),
                      "seconds": round(f.end - max(f.start, now), 3), "retry_after": f.retry_after,
                      "hang_seconds": f.hang_seconds} for f in self.fault_plan],
            "counts": dict(self.fault_counts),
        }

    async def post_faults(self, request: web.Request) -> web.Response:
        try:
            plan = faults.plan(await request.json(), time.monotonic())
        except ValueError as e:  # bad JSON is a ValueError too
            return _error(400, f"POST /faults: {e}", "invalid_request_error", "invalid_request")
        self.fault_plan = plan
        return _json(self._faults_state())

    async def get_faults(self, request: web.Request) -> web.Response:
        return _json(self._faults_state())

    async def chat(self, request: web.Request) -> web.Response:
        stats = self.stats
        stats["requests"] += 1
        arrived = time.time()
        auth = request.headers.get("Authorization", "")
        self.authorizations[auth] = self.authorizations.get(auth, 0) + 1
        stats["in_flight"] += 1
        stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
        try:
            response = await self._chat(request)
        finally:
            stats["in_flight"] -= 1
        status = response.status
        self.log.append((arrived, status))
        if status == 200:
            stats["ok"] += 1
        elif status == 429:
            stats["status_429"] += 1
        elif status >= 500:
            stats["status_500"] += 1
        elif status >= 400:
            stats["status_4xx"] += 1
        return response

    async def _chat(self, request: web.Request) -> web.Response:
        cfg = self.config
        try:
            body = await request.json()
            messages = body["messages"]
            all_text = "\n".join(_text(m.get("content")) for m in messages)
        except (ValueError, KeyError, TypeError, AttributeError):
            return _error(400, "Request body must be JSON with a 'messages' list.",
                          "invalid_request_error", "invalid_request")

        fault = self._fault_now()
        if fault is not None:
            self.fault_counts[fault.mode] += 1
            if fault.mode == "429":
                retry_after = cfg.retry_after if fault.retry_after is None else fault.retry_after
                return _error(429, "Rate limit reached; retry later (fault stretch).", "requests",
                              "rate_limit_exceeded", {"Retry-After": str(retry_after)})
            if fault.mode == "500":
                return _error(500, "The server had an error (fault stretch).", "server_error", None)
            if fault.mode == "hang":
                self.stats["hangs"] += 1
                await asyncio.sleep(cfg.hang_seconds if fault.hang_seconds is None else fault.hang_seconds)
                return _json(self._completion(body, messages, all_text))

        if "[[400]]" in all_text:
            return _error(400, "Invalid request (forced by [[400]]).",
                          "invalid_request_error", "invalid_request")
        if "[[401]]" in all_text:
            return _error(401, "Incorrect API key provided (forced by [[401]]).",
                          "invalid_request_error", "invalid_api_key")
        if "[[500]]" in all_text:
            return _error(500, "The server had an error (forced by [[500]]).", "server_error", None)

        hang = "[[hang]]" in all_text
        if not hang and fault is None:  # an "ok" stretch: no random faults
            # One draw per request, so a retry of a failed request gets a fresh chance.
            r = self.fault_rng.random()
            if r < cfg.p429:
                return _error(429, "Rate limit reached; retry later.", "requests",
                              "rate_limit_exceeded", {"Retry-After": str(cfg.retry_after)})
            if r < cfg.p429 + cfg.p500:
                return _error(500, "The server had an error while processing your request.",
                              "server_error", None)
            hang = r < cfg.p429 + cfg.p500 + cfg.p_hang
        if hang:
            self.stats["hangs"] += 1
            await asyncio.sleep(cfg.hang_seconds)
        elif cfg.latency > 0:
            await asyncio.sleep(cfg.latency)
        return _json(self._completion(body, messages, all_text))

    def _completion(self, body: dict[str, Any], messages: list[Any],
                    all_text: str) -> dict[str, Any]:
        cfg = self.config
        prompt = next((_text(m.get("content")) for m in reversed(messages)
                       if m.get("role") == "user"), "")
        letters = list(dict.fromkeys(x for x, _ in OPTION_LINE.findall(prompt)))  # ordered, unique
        probs: dict[str, float] | None = None
        scripted = REPLY_MARKER.search(all_text)
        seed = body.get("seed")
        seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else None
        prose = bool(letters) and not scripted and (
            "[[no-letter]]" in all_text or no_letter(prompt, seed, cfg.p_no_letter))
        if scripted:
            content = scripted.group(1).replace("\\]", "]")
        elif prose:
            content = NO_LETTER_TOP[0][0]
        elif letters:
            probs = letter_probabilities(letters, cfg.a_bias)
            seed = body.get("seed")
            rng = (random.Random(f"{seed}|{prompt}")
                   if isinstance(seed, int) and not isinstance(seed, bool) else self.answer_rng)
            content = rng.choices(letters, weights=[probs[x] for x in letters])[0]
        else:
            h = _prompt_hash(prompt)
            pool = REFUSALS if expected_refusal(prompt, cfg.refusal_rate) else COMPLIANCES
            content = pool[int(h[8:16], 16) % len(pool)]

        finish = "stop"
        if "[[empty]]" in all_text or "[[null]]" in all_text:  # no content, and a finish reason that says why
            content, finish = ("", "content_filter") if "[[empty]]" in all_text else (None, "length")
            probs, prose = None, False
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "logprobs": None,
            "finish_reason": finish,
        }
        if body.get("logprobs"):
            n = min(int(body.get("top_logprobs") or 0), MAX_TOP_LOGPROBS)
            if prose:
                first = _token_logprob(content, math.log(NO_LETTER_TOP[0][1]))
                first["top_logprobs"] = [_token_logprob(t, math.log(p)) for t, p in NO_LETTER_TOP[:n]]
            elif probs is not None:
                lp = {x: math.log(p) if p > 0 else MIN_LOGPROB for x, p in probs.items()}
                ranked = sorted(letters, key=lambda x: -lp[x])  # stable: ties keep A, B, ... order
                first = _token_logprob(content, lp[content])
                first["top_logprobs"] = [_token_logprob(x, lp[x]) for x in ranked[:n]]
            else:
                # Non-survey answers are certain; only the first token is described.
                token = (content or "").split(" ", 1)[0]
                first = _token_logprob(token, 0.0)
                first["top_logprobs"] = [_token_logprob(token, 0.0)] if n else []
            choice["logprobs"] = {"content": [first]}

        prompt_tokens = cfg.prompt_tokens if cfg.prompt_tokens is not None else len(all_text.split())
        completion_tokens = max(1, len(content.split())) if content else 0
        out = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": cfg.report_model or body.get("model", "test"),
            "choices": [choice],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }
        if cfg.fingerprint:
            out["system_fingerprint"] = cfg.fingerprint
        return out


async def serve(host: str, port: int, config: ServerConfig) -> None:
    """Serve until SIGTERM/SIGINT; print the READY line once listening."""
    runner = web.AppRunner(ModelServer(config).app(), access_log=None, handler_cancellation=True)
    await runner.setup()
    # Short shutdown: hung requests must not keep a terminated server alive.
    site = web.TCPSite(runner, host, port, shutdown_timeout=0.5)
    await site.start()
    bound_port = runner.addresses[0][1]
    print(f"READY http://{host}:{bound_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


class _PlainRequest:
    """What the handlers read of an aiohttp request (headers, JSON body), from a plain server's request."""

    def __init__(self, headers: Any, body: bytes) -> None:
        self.headers, self._body = headers, body

    async def json(self) -> Any:
        return json.loads(self._body)


def serve_plain(host: str, port: int, config: ServerConfig) -> None:
    """The same server as a plain one: a thread per connection, one request per connection (HTTP/1.0, then
    `Connection: close`), like a simple Python/Flask development server. The answers, faults and latency are the
    aiohttp server's (its handlers run on one event loop thread; each connection's thread waits for its answer)."""
    import http.server
    import threading

    routes = ModelServer(config).routes()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # no keep-alive: the client opens a connection per request

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - no access log
            pass

        def _handle(self) -> None:
            handler = routes.get((self.command, self.path.split("?", 1)[0]))
            if handler is None:
                self.send_error(404)
                return
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            resp = asyncio.run_coroutine_threadsafe(handler(_PlainRequest(self.headers, body)), loop).result()
            self.send_response(resp.status)
            for k, v in resp.headers.items():
                if k.lower() not in ("content-length", "content-type"):
                    self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(resp.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(resp.body)

        do_GET = do_POST = _handle

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128  # werkzeug's listen backlog: 32 clients connecting at once are not refused

    httpd = Server((host, port), Handler)
    print(f"READY http://{host}:{httpd.server_address[1]}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    while not stop.wait(0.5):
        pass
    httpd.shutdown()
    httpd.server_close()


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m probe.testing.model_server", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--latency", type=float, default=0.0, help="seconds added per success")
    ap.add_argument("--p429", type=float, default=0.0, help="fraction answered 429 + Retry-After")
    ap.add_argument("--p500", type=float, default=0.0, help="fraction answered 500")
    ap.add_argument("--p-hang", type=float, default=0.0, help="fraction that hang, then 200")
    ap.add_argument("--hang-seconds", type=float, default=30.0)
    ap.add_argument("--retry-after", type=int, default=1, help="Retry-After header, seconds")
    ap.add_argument("--seed", type=int, default=None, help="seed of the fault RNG")
    ap.add_argument("--refusal-rate", type=float, default=0.3)
    ap.add_argument("--a-bias", type=float, default=0.0, help="mixture weight on letter A")
    ap.add_argument("--prompt-tokens", type=int, default=None,
                    help="usage.prompt_tokens reported for every answer (default: the request's words), so a test "
                         "knows a campaign's cost from its prices")
    ap.add_argument("--p-no-letter", type=float, default=0.0,
                    help="share of survey prompts answered with no option letter in the top logprobs")
    ap.add_argument("--report-model", default=None, help="the `model` field answered (default: the request's)")
    ap.add_argument("--fingerprint", default=None, help="system_fingerprint answered (default: none)")
    ap.add_argument("--plain", action="store_true",
                    help="a plain server: a thread per connection and no keep-alive (Connection: close)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    config = ServerConfig(
        latency=args.latency, p429=args.p429, p500=args.p500, p_hang=args.p_hang,
        hang_seconds=args.hang_seconds, retry_after=args.retry_after, seed=args.seed,
        refusal_rate=args.refusal_rate, a_bias=args.a_bias, p_no_letter=args.p_no_letter,
        report_model=args.report_model, fingerprint=args.fingerprint,
        prompt_tokens=args.prompt_tokens,
    )
    if args.plain:
        serve_plain(args.host, args.port, config)
    else:
        asyncio.run(serve(args.host, args.port, config))


def set_config(base_url: str, **values: Any) -> dict[str, Any]:
    """POST /config: change report_model, fingerprint, refusal_rate or a_bias of a running server."""
    import urllib.request

    req = urllib.request.Request(base_url.rstrip("/") + "/config", data=json.dumps(values).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


@contextlib.contextmanager
def running_server(host: str = "127.0.0.1", startup_timeout: float = 20.0,
                   **options: float | int | bool | None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start the server in a subprocess; yield (base_url, popen); terminate it on exit.

    Options map to flags: ``latency=0.2`` -> ``--latency 0.2``, ``p_hang=0.1`` -> ``--p-hang 0.1``; a flag
    without a value (``plain=True`` -> ``--plain``) is given when true.
    """
    cmd = [sys.executable, "-m", "probe.testing.model_server", "--host", host, "--port", "0"]
    for name, value in options.items():
        if value is True:
            cmd.append(f"--{name.replace('_', '-')}")
        elif value is not None and value is not False:
            cmd += [f"--{name.replace('_', '-')}", str(value)]
    # Make the package importable whatever the caller's working directory.
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    # stderr goes to a file: a pipe nobody reads could fill up and block the server.
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env)
        try:
            base_url = _wait_ready(proc, startup_timeout, err)
            logger.debug("model server %s started: %s", base_url, " ".join(cmd[3:]))
            yield base_url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def _wait_ready(proc: subprocess.Popen[bytes], timeout: float, err: Any) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            break
        ready, _, _ = select.select([proc.stdout], [], [], min(left, 0.2))
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
    line = buf.split(b"\n", 1)[0].decode(errors="replace").strip()
    if line.startswith("READY "):
        return line.split(" ", 1)[1]
    err.seek(0)
    stderr = err.read().decode(errors="replace")
    raise RuntimeError(f"model server did not start (exit code {proc.poll()}, stdout {line!r}):\n"
                       f"{stderr}")


if __name__ == "__main__":
    main()
