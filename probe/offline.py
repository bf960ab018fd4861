"""Offline models, answered in this process without LiteLLM: `sim/...` (probe.sim) and `local/...` (probe.local_model).

models.acall routes their ids here before it touches litellm, whose import alone costs 3-7 s of CPU per process: a
`probe run` on an offline model never imports it. Completions carry what LiteLLM's custom-provider path gave them
(the `sim/`/`local/` model name, first-token top logprobs, zero usage, no cost unless the spec prices it)."""

from __future__ import annotations

import asyncio
import time

from probe import sim
from probe.errors import ProbeError
from probe.models import CallError, Completion, _short
from probe.spec import ModelSpec

ZERO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def check(spec: ModelSpec) -> None:
    """A bad offline id fails here, in one line (an unknown local model, a bad sim setting)."""
    provider, _, name = spec.id.partition("/")
    if provider == "sim":
        sim.parse(name)
        return
    _require_local(name)


def _require_local(name: str) -> None:
    from probe import local_model

    if name not in local_model.MODELS:
        raise ProbeError(f"unknown local model 'local/{name}' (available: "
                         f"{', '.join('local/' + n for n in local_model.MODELS)})")


async def acall(spec: ModelSpec, messages: list[dict], params: dict) -> Completion:
    """params: models.call_params's (temperature, max_tokens, seed, logprobs, top_logprobs)."""
    t0 = time.perf_counter()
    provider, _, name = spec.id.partition("/")
    try:
        if provider == "sim":
            text, top, letters, finish = _sim(name, messages, params)
        else:
            text, top, letters, finish = await _local(name, messages, params)
    except ProbeError as e:
        raise CallError("permanent", str(e)) from None
    except Exception as e:  # noqa: BLE001 - a model that fails here fails the same way on retry
        raise CallError("permanent", _short(e)) from None
    cost = None
    if spec.price_in is not None or spec.price_out is not None:
        from probe.models import cost_of

        cost = cost_of(spec, 0, 0)
    return Completion(text=text, top_logprobs=top, finish_reason=finish, usage=dict(ZERO_USAGE), cost=cost,
                      latency_s=time.perf_counter() - t0, letter_probs=letters, reported_model=spec.id)


def _sim(name: str, messages: list[dict], params: dict):
    text, top = sim.respond(sim.parse(name), messages[-1]["content"], params.get("seed"))
    return text, (top if params.get("logprobs") and top else None), None, "stop"


class _Batcher:
    """Gathers concurrent requests for the local model into one call of `run` (in a thread): a padded batch for
    decoding, a sorted run of one-at-a-time forward passes sharing cached prefixes for next-token answers."""

    def __init__(self, run, max_batch: int = 32):
        self.run, self.max_batch = run, max_batch  # run(list of payloads) -> list of results
        self.queue: asyncio.Queue | None = None
        self.loop = None

    async def submit(self, payload):
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # one queue and drain task per event loop
            self.loop, self.queue = loop, asyncio.Queue()
            loop.create_task(self._drain())
        fut = loop.create_future()
        await self.queue.put((payload, fut))
        return await fut

    async def _drain(self):
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + 0.02  # a forward pass costs far more than this: worth waiting for the others
            while len(batch) < self.max_batch:
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), max(deadline - loop.time(), 0)))
                except (asyncio.TimeoutError, TimeoutError):
                    break
            try:
                res = await asyncio.to_thread(self.run, [p for p, _ in batch])
                for (_, fut), r in zip(batch, res):
                    fut.set_result(r) if not fut.done() else None
            except Exception as e:  # hand the failure to every waiter instead of killing the drain loop
                for _, fut in batch:
                    fut.set_exception(e) if not fut.done() else None


_batchers: dict[tuple, _Batcher] = {}


def _batcher(key: tuple, fn) -> _Batcher:
    """One batcher per kind of request (next token; next token continuing; decode with one length and temperature)."""
    if key not in _batchers:
        from probe import local_model

        name = key[1]
        _batchers[key] = _Batcher(lambda payloads: fn(local_model.get(name), payloads))
    return _batchers[key]


async def _local(name: str, messages: list[dict], params: dict):
    _require_local(name)
    max_tokens = params.get("max_tokens") or 256
    want_lp = bool(params.get("logprobs"))
    k = max(params.get("top_logprobs") or 1, 1)
    top = letters = None
    if want_lp and any(m.get("role") == "assistant" for m in messages):
        # a conversation one turn on (an individual): reuse its key-value cache
        top, letters = await _batcher(("lpc", name), lambda lm, ps: [
            lm.next_token_continuing(m, kk) for m, kk in ps]).submit((messages, k))
    elif want_lp:  # exact next-token probabilities (top-k, and every letter's from the full distribution)
        top, letters = await _batcher(("lp", name), lambda lm, ps: lm.next_token_each(
            [m for m, _ in ps], [kk for _, kk in ps])).submit((messages, k))
    if want_lp and max_tokens == 1:  # survey items need nothing else
        return top[0][0], top, letters, "stop"
    temperature = params.get("temperature", 0.0) or 0.0
    text, finish = await _batcher(("gen", name, max_tokens, temperature), lambda lm, ps: lm.generate(
        [m for m, _ in ps], max_tokens, temperature, [s for _, s in ps])).submit((messages, params.get("seed")))
    return text, top if want_lp else None, letters, finish
