"""The only module that imports litellm (lazily, on first use): model calls, retries, checks. Offline models
(`local/`, `sim/`) are routed to probe.offline before litellm is touched.

A failed call is classified as transient (429, 5xx, timeouts, connection errors: worth another try) or permanent
(auth, bad request: stored, not retried). Campaign calls retry in probe.calls (the shared limiter must see every
429); `complete_texts` retries here. `num_retries` is still passed to LiteLLM, but LiteLLM's own HTTP handler (used
for openai/, see below) does not retry by it, so no caller relies on it.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import random
import time
from dataclasses import dataclass, field

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else litellm fetches its cost map at import
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# openai/ models (and OpenAI-compatible servers) through LiteLLM's own HTTP handler instead of the OpenAI SDK's
# client: the same requests, errors, Retry-After and headers (tests/integration/test_litellm_handler.py), ~15% less
# CPU per call (bench/peers.py). Set it to "false" for the SDK's path.
os.environ.setdefault("EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER", "true")

from probe.errors import ProbeError  # noqa: E402
from probe.spec import ModelSpec  # noqa: E402

log = logging.getLogger(__name__)


class _LiteLLM:
    """litellm, imported (3-7 s of CPU) and set up on first use: offline models (probe.offline) never need it."""

    _module = None

    def __getattr__(self, name: str):
        if _LiteLLM._module is None:
            import litellm as module

            module.suppress_debug_info = True
            module.telemetry = False
            module.drop_params = True  # a provider without logprobs answers in text; answers.py parses either. What
            # it drops is never sent: `dropped_params` names it, and execute stores only what was sent.
            _LiteLLM._module = module
            # LiteLLM's import leaves ~380,000 objects that live as long as the process. Frozen, the collector's full
            # passes (~0.25 s each, every few hundred calls) skip them, and forked processes (embedded, the worker's
            # pool) keep sharing their pages instead of copying them when the collector touches them.
            gc.freeze()
        return getattr(_LiteLLM._module, name)


litellm = _LiteLLM()


def preload() -> None:
    """Import litellm now (a worker, before its pool forks, so each pool process does not pay for it again)."""
    litellm.acompletion  # noqa: B018


SIMULATOR_PREFIX = "sim/"
OFFLINE_PROVIDERS = ("local", "sim")


@dataclass
class Completion:
    text: str | None
    top_logprobs: list[tuple[str, float]] | None
    finish_reason: str | None
    usage: dict = field(default_factory=dict)
    cost: float | None = None
    latency_s: float = 0.0
    letter_probs: dict[str, float] | None = None  # exact first-token probability per letter (the local model)
    reported_model: str | None = None  # the response's `model` field: the version the provider says answered
    system_fingerprint: str | None = None  # the provider's backend configuration, where it returns one
    rate_limits: dict[str, int] | None = None  # the provider's x-ratelimit-limit-requests / -tokens, when sent


class CallError(Exception):
    def __init__(self, kind: str, message: str, rate_limited: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind  # "transient" | "permanent"
        self.rate_limited = rate_limited  # a 429: the shared limiter backs the whole fleet off
        self.retry_after = retry_after  # seconds, from the Retry-After header


def _transient() -> tuple:
    return (litellm.RateLimitError, litellm.Timeout, litellm.APIConnectionError, litellm.InternalServerError,
            litellm.ServiceUnavailableError)


def warm() -> None:
    """Import what LiteLLM imports at its first call to an API model (its tokenizer, its proxy and logging types):
    ~0.3 s during which the event loop is blocked and the calls started with it land together. Called before
    embedded mode forks and in the worker before its pool forks, so it is paid once, not in each process."""
    preload()
    for name in ("litellm.litellm_core_utils.default_encoding", "litellm.litellm_core_utils.logging_callback_manager",
                 "litellm.proxy._types"):
        try:
            importlib.import_module(name)
        except ImportError:  # another LiteLLM version: its first call imports what it needs
            log.debug("warm: no module %s", name)
    gc.freeze()


def is_offline(model_id: str) -> bool:
    """Answered in this process by probe.offline, without LiteLLM."""
    provider, sep, _ = model_id.partition("/")
    return bool(sep) and provider in OFFLINE_PROVIDERS


def is_local(model_id: str) -> bool:
    """Runs a model on this machine's CPU (it already uses every core): one process, never forked."""
    return model_id.startswith("local/")


def is_simulator(model_id: str) -> bool:
    return model_id.startswith(SIMULATOR_PREFIX)


def check(spec: ModelSpec) -> None:
    """Fail early, in one line, on an unknown provider, a bad offline model, or a missing API key (the provider's,
    or the variable named by `api_key_env`)."""
    if is_offline(spec.id):
        from probe import offline

        offline.check(spec)
        return
    try:
        _, provider, _, _ = litellm.get_llm_provider(spec.id, api_base=spec.api_base)
    except Exception:
        raise ProbeError(f"unknown model provider in '{spec.id}' (use a LiteLLM id such as openai/gpt-4o-mini, "
                         "local/smollm2-135m or sim/uniform)") from None
    if spec.api_key_env:  # the user named the key: it must be there (the name is said, never the value)
        _named_key(spec.api_key_env)
        return
    if spec.api_base:  # a custom host gets a placeholder key, so it needs none in the environment
        return
    env = _validate_env(spec)
    if not env.get("keys_in_environment"):
        raise ProbeError(f"model '{spec.id}' needs {', '.join(env.get('missing_keys') or ['an API key'])} in the environment")


def _validate_env(spec: ModelSpec) -> dict:
    # An empty variable (OPENAI_API_KEY="") is no key at all, though litellm counts it as set.
    empty = {k: v for k, v in os.environ.items() if v == "" and (k.endswith("_KEY") or k.endswith("_TOKEN"))}
    for k in empty:
        del os.environ[k]
    try:
        return litellm.validate_environment(spec.id, api_base=spec.api_base)
    finally:
        os.environ.update(empty)


PLACEHOLDER_KEY = "not-needed"


def _named_key(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ProbeError(f"the API key variable {name} (named by --api-key-env) is unset or empty")
    return value


def _api_key(spec: ModelSpec) -> str | None:
    """The key to pass explicitly, read from the environment at call time; None lets LiteLLM take the provider's.

    A provider's own key (OPENAI_API_KEY, ...) goes only to that provider. A custom api_base gets the value of the
    variable the user named (`api_key_env`), else a placeholder (self-hosted servers often need no key, but the
    client insists on one): never a provider key, which would otherwise leak to whatever host api_base names."""
    if spec.api_key_env:
        return _named_key(spec.api_key_env)
    if spec.api_base:
        return PLACEHOLDER_KEY
    return None


def call_params(spec: ModelSpec, *, seed: int, max_tokens: int, logprobs: bool) -> dict:
    """The model parameters `acall` asks LiteLLM to send, by their OpenAI names."""
    params = dict(temperature=spec.temperature, max_tokens=max_tokens, seed=seed)
    if logprobs:
        params.update(logprobs=True, top_logprobs=max(spec.top_logprobs, 1))
    return params


_sent_cache: dict[tuple, bool] = {}


def dropped_params(spec: ModelSpec, params: dict) -> list[str]:
    """The names in `params` (as `call_params` gives them) that LiteLLM, with drop_params on, does not send to this
    model's provider (perplexity/...: logprobs, top_logprobs and seed; cerebras/...: logprobs; openai/o1 and gpt-5:
    a temperature other than 1; gemini/...: top_logprobs).

    Decided as LiteLLM decides it, by its own get_optional_params, one parameter at a time: a parameter that adds
    nothing to what the provider is sent without it was dropped. One that is renamed on the way (max_tokens ->
    max_completion_tokens, mistral's seed -> random_seed) counts as sent. When the provider cannot be told, or
    LiteLLM's check fails, nothing is said to be dropped (the call itself would fail the same way). Offline models
    (probe.offline) take every parameter."""
    if is_offline(spec.id):
        return []
    try:
        model, provider, _, _ = litellm.get_llm_provider(spec.id, api_base=spec.api_base)
    except Exception:
        return []
    out = []
    for name, value in params.items():
        if value is None:
            continue
        key = (model, provider, name, None if name == "seed" else value)  # whether a seed goes does not hang on its value
        if key not in _sent_cache:
            try:
                base = litellm.utils.get_optional_params(model=model, custom_llm_provider=provider, drop_params=True)
                one = litellm.utils.get_optional_params(model=model, custom_llm_provider=provider, drop_params=True,
                                                        **{name: value})
                _sent_cache[key] = one != base
            except Exception as e:  # noqa: BLE001 - LiteLLM's own check; the call reports the real error
                log.debug("dropped_params(%s, %s): %s", spec.id, name, e)
                _sent_cache[key] = True
        if not _sent_cache[key]:
            out.append(name)
    return out


async def acall(spec: ModelSpec, messages: list[dict], *, seed: int, max_tokens: int, logprobs: bool,
                timeout: float, num_retries: int) -> Completion:
    if is_offline(spec.id):  # sim/, local/: answered in this process, litellm never imported
        from probe import offline

        return await offline.acall(spec, messages, call_params(spec, seed=seed, max_tokens=max_tokens, logprobs=logprobs))
    kwargs = dict(model=spec.id, messages=messages, timeout=timeout, num_retries=num_retries,
                  **call_params(spec, seed=seed, max_tokens=max_tokens, logprobs=logprobs))
    if spec.api_base:
        kwargs["api_base"] = spec.api_base
    try:
        key = None if is_offline(spec.id) else _api_key(spec)
    except ProbeError as e:  # the named variable is unset here (e.g. on a fleet worker): stored, not retried
        raise CallError("permanent", str(e)) from None
    if key is not None:
        kwargs["api_key"] = key
    t0 = time.perf_counter()
    try:
        r = await litellm.acompletion(**kwargs)
    except litellm.RateLimitError as e:  # the limiter needs this signal: retried by probe.execute, not LiteLLM
        raise CallError("transient", _short(e), rate_limited=True, retry_after=_retry_after(e)) from None
    except _transient() as e:
        raise CallError("transient", _short(e)) from None
    except ProbeError as e:
        raise CallError("permanent", str(e)) from None
    except Exception as e:  # auth, bad request, not found, content policy...: retrying will not help
        raise CallError("permanent", _short(e)) from None
    choice = r.choices[0]
    top = None
    lp = getattr(choice, "logprobs", None)
    content = getattr(lp, "content", None) if lp is not None else None
    if content:
        first = content[0]
        top = [(t.token, t.logprob) for t in (first.top_logprobs or [])] or [(first.token, first.logprob)]
    u = getattr(r, "usage", None)  # read as attributes: a pydantic model_dump per call costs more than the fields
    usage = {k: getattr(u, k, None) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    hidden = r._hidden_params or {}
    return Completion(
        text=choice.message.content, top_logprobs=top, finish_reason=choice.finish_reason,
        usage=usage,
        cost=_cost(spec, usage, hidden.get("response_cost")), latency_s=time.perf_counter() - t0,
        letter_probs=hidden.get("probe_letter_probs"),
        reported_model=getattr(r, "model", None) or None,
        system_fingerprint=getattr(r, "system_fingerprint", None) or None,
        rate_limits=_rate_limits(hidden.get("additional_headers")),
    )


def _cost(spec: ModelSpec, usage: dict, litellm_cost: float | None) -> float | None:
    """The spec's prices when given (they also price what LiteLLM does not know), else LiteLLM's figure."""
    if spec.price_in is None and spec.price_out is None:
        return litellm_cost
    return cost_of(spec, usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0)


def _retry_after(e: Exception) -> float | None:
    headers = getattr(getattr(e, "response", None), "headers", None) or getattr(e, "litellm_response_headers", None)
    try:
        return float(headers.get("retry-after")) if headers and headers.get("retry-after") else None
    except (TypeError, ValueError):  # an HTTP date: not worth parsing, the limiter's own backoff applies
        return None


def _rate_limits(headers: dict | None) -> dict[str, int] | None:
    out = {}
    for name in ("requests", "tokens"):
        v = (headers or {}).get(f"x-ratelimit-limit-{name}") or (headers or {}).get(f"llm_provider-x-ratelimit-limit-{name}")
        if v is not None and str(v).isdigit():
            out[name] = int(v)
    return out or None


# -- prices: LiteLLM's cost tables, or the spec's price_in / price_out (USD per million tokens) --------------------
def has_price(spec: ModelSpec) -> bool:
    if spec.price_in is not None or spec.price_out is not None or is_offline(spec.id):
        return True
    try:
        litellm.cost_per_token(model=spec.id, prompt_tokens=1, completion_tokens=1)
        return True
    except Exception:  # noqa: BLE001 - not in LiteLLM's tables
        return False


def cost_of(spec: ModelSpec, prompt_tokens: int, completion_tokens: int) -> float | None:
    """USD for a call's tokens: the spec's prices when given, else LiteLLM's tables; offline models cost nothing;
    None when neither prices it."""
    if spec.price_in is not None or spec.price_out is not None:
        return (prompt_tokens * (spec.price_in or 0.0) + completion_tokens * (spec.price_out or 0.0)) / 1e6
    if is_offline(spec.id):
        return 0.0
    try:
        return float(sum(litellm.cost_per_token(model=spec.id, prompt_tokens=prompt_tokens,
                                                completion_tokens=completion_tokens)))
    except Exception:  # noqa: BLE001
        return None


def count_tokens(spec: ModelSpec, messages: list[dict]) -> int:
    """The prompt's tokens as LiteLLM counts them for this model (its tokenizer, or tiktoken's cl100k)."""
    if is_offline(spec.id):  # never priced, and not worth importing litellm for: about four characters a token
        return sum(len(str(m.get("content") or "")) for m in messages) // 4 + 4 * len(messages)
    try:
        return int(litellm.token_counter(model=spec.id, messages=messages))
    except Exception:  # noqa: BLE001 - an unknown tokenizer: about four characters a token
        return sum(len(str(m.get("content") or "")) for m in messages) // 4 + 4 * len(messages)


def complete_texts(model_id: str, conversations: list[list[dict]], api_base: str | None = None, timeout: float = 60,
                   concurrency: int = 8, api_key_env: str | None = None) -> list[str | Exception]:
    """Synchronous chat completions (temperature 0), up to `concurrency` in flight, results in order; a call that
    still fails after LiteLLM's retries is returned as its exception. Used by the LLM-judge classifier. Keys follow
    `acall`'s rule: a custom `api_base` gets the value of `api_key_env` (a variable's name), else a placeholder."""
    spec = ModelSpec(id=model_id, api_base=api_base, api_key_env=api_key_env, temperature=0.0, max_tokens=64)
    check(spec)
    global _sync_loop
    if _sync_loop is None:  # one loop for all synchronous calls: LiteLLM's pooled clients belong to a loop
        _sync_loop = asyncio.new_event_loop()

    async def run() -> list[str | Exception]:
        gate = asyncio.Semaphore(concurrency)

        async def one(messages: list[dict]) -> str | Exception:
            async with gate:
                for attempt in range(RETRIES + 1):
                    try:
                        c = await acall(spec, messages, seed=0, max_tokens=64, logprobs=False, timeout=timeout,
                                        num_retries=0)
                        return c.text or ""
                    except CallError as e:
                        if e.kind != "transient" or attempt == RETRIES:
                            return e
                        # Retry-After when the server gives one, else jittered exponential backoff
                        await asyncio.sleep(e.retry_after if e.retry_after is not None
                                            else min(0.5 * 2 ** attempt, 8.0) * (0.5 + random.random()))
            raise AssertionError("unreachable")

        return list(await asyncio.gather(*(one(m) for m in conversations)))

    return _sync_loop.run_until_complete(run())


_sync_loop: asyncio.AbstractEventLoop | None = None
RETRIES = 4  # complete_texts: tries after the first, on transient errors


def _short(e: Exception) -> str:
    """The exception's type and the first line of its message (cut at 300 characters; some have none)."""
    return f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:300]}"
