"""The task code, shared by the embedded pool and the Celery workers: item keys in, stored results out.

A call to `process` takes item keys, skips those already done, renders each item's messages, calls the model
through probe.models, parses the survey answer or classifies the refusal, and writes everything with upserts
in batches. Keys whose calls failed transiently are returned for the caller to retry (embedded: another round
after a pause; fleet: Celery's retry), so a 429 storm or a dead worker loses nothing and duplicates nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable

from probe import answers, cache, calls, campaigns, limits, probesets, questionnaires, render
from sqlalchemy.exc import DBAPIError

from probe.spec import CampaignSpec, ModelSpec
from probe.store import Item, Store

log = logging.getLogger(__name__)

FLUSH_EVERY = 256  # results per write transaction
FLUSH_SECONDS = 0.5
RAMP_S = 0.006  # about LiteLLM's CPU time per call


@dataclass
class CampaignContext:
    """What a worker needs to know about a campaign, loaded once per process."""

    spec: CampaignSpec
    models: dict[str, ModelSpec]
    surveys: dict[str, questionnaires.Questionnaire] = field(default_factory=dict)
    probesets: dict[str, probesets.ProbeSet] = field(default_factory=dict)


_contexts: dict[str, CampaignContext] = {}


def context(store: Store, campaign_id: str) -> CampaignContext:
    ctx = _contexts.get(campaign_id)
    if ctx is None:
        c = store.campaign(campaign_id)
        spec = CampaignSpec.model_validate(c.spec)
        # what the campaign stored (its content), not the files on this machine; older campaigns: the files
        ctx = CampaignContext(spec, {m.id: m for m in spec.models}, *campaigns.prompts_of(c))
        _contexts[campaign_id] = ctx
    return ctx


def _messages(ctx: CampaignContext, item: Item) -> list[dict]:
    if item.kind == "survey":
        q = ctx.surveys[item.source].question(item.item_id)
        return render.survey_messages(q, item.permutation, ctx.spec.template)
    return render.probe_messages(ctx.probesets[item.source].prompt(item.item_id).text)


@dataclass
class _Request:
    """What one (non-individual) item sends, and its response-cache key (None: not cached)."""

    spec: ModelSpec
    survey: bool
    want_lp: bool
    max_tokens: int
    msgs: list[dict]
    params: dict
    cache_key: str | None


def _request(ctx: CampaignContext, item: Item, store: Store | None) -> _Request:
    from probe import models  # litellm is imported on first use only

    spec = ctx.models[item.model]
    mode = ctx.spec.answer_mode
    survey = item.kind == "survey"
    want_lp = survey and mode in ("auto", "logprobs")
    max_tokens = _answer_tokens(spec, mode) if survey else spec.refusal_max_tokens()
    msgs = _messages(ctx, item)
    params = sent_params(spec, models.call_params(spec, seed=item.seed, max_tokens=max_tokens, logprobs=want_lp))
    # Offline models (local/, sim/) cost nothing and answer at once: never cached.
    cache_key = None if models.is_offline(spec.id) or store is None else cache.key(params, msgs)
    return _Request(spec, survey, want_lp, max_tokens, msgs, params, cache_key)


PREFETCH = 512  # items whose requests are built, and looked up in the response cache, together


def _prefetch(store: Store, items: list[Item]) -> dict[str, tuple[_Request, dict | None]]:
    """key -> (the item's request, its cached answer or None) for the items (individuals excepted): the cache is
    read in one query (not a query and a thread hop per item)."""
    reqs = {it.key: _request(context(store, it.campaign_id), it, store) for it in items if it.kind != "individual"}
    hits = cache.lookup_many(store, [r.cache_key for it in items if (r := reqs.get(it.key)) and r.cache_key
                                     and context(store, it.campaign_id).spec.cache])
    return {k: (r, hits.get(r.cache_key) if r.cache_key else None) for k, r in reqs.items()}


async def _one(ctx: CampaignContext, item: Item, store: Store | None = None, gate: "_StateGate | None" = None,
               limiter: limits.Limiter | None = None,
               prepared: tuple[_Request, dict | None] | None = None) -> dict:
    """One item's call (or cached answer) and labels. Without a store there is no cache; without a gate, no budget.
    prepared: the item's request and cached answer, as process() read them for a window of its items."""
    from probe import models  # litellm is imported on first use only

    if item.kind == "individual":
        return await _individual(ctx, item, store, gate, limiter)
    mode = ctx.spec.answer_mode
    req = prepared[0] if prepared else _request(ctx, item, store)
    spec, survey, want_lp, max_tokens, msgs, params = (req.spec, req.survey, req.want_lp, req.max_tokens, req.msgs,
                                                       dict(req.params))
    response = {"messages": msgs, "params": params, "raw_text": None, "top_logprobs": None, "finish_reason": None,
                "usage": None, "cost": None, "latency_s": None, "error": None, "error_kind": None,
                "attempts": item.attempts + 1, "reported_model": None, "system_fingerprint": None,
                "cached": False}
    cache_key = req.cache_key
    c = None
    if cache_key and ctx.spec.cache and (hit := prepared[1] if prepared
                                         else await asyncio.to_thread(cache.lookup, store, cache_key)):
        c = models.Completion(text=hit["raw_text"], finish_reason=hit["finish_reason"], usage=hit["usage"] or {},
                              top_logprobs=[tuple(t) for t in hit["top_logprobs"]] if hit["top_logprobs"] else None,
                              cost=0.0, letter_probs=hit.get("letter_probs"))  # paid once, when it was made
        response["cached"] = True
    if c is None:
        try:
            c = await calls.paid_call(store, ctx.spec, item, spec, msgs, max_tokens, want_lp, gate,
                                      limiter or limits.local())
        except calls.BudgetReached:
            return {"key": item.key, "status": "held", "response": response}
        except models.CallError as e:
            log.warning("item %s: %s error: %s", item.key, e.kind, e)
            response.update(error=str(e), error_kind=e.kind)
            return {"key": item.key, "status": "failed" if e.kind == "permanent" else "retry", "response": response}
    response.update(raw_text=c.text, top_logprobs=[list(t) for t in c.top_logprobs] if c.top_logprobs else None,
                    finish_reason=c.finish_reason, usage=c.usage, cost=c.cost, latency_s=c.latency_s,
                    reported_model=c.reported_model, system_fingerprint=c.system_fingerprint)
    result = {"key": item.key, "status": "done", "response": response, "labels": []}
    if cache_key and not response["cached"]:
        result["cache"] = cache.entry(cache_key, spec.id, response, c.letter_probs)
    if survey:
        label = _survey_label(ctx, item, c, mode)
        if want_lp and label["labeller_version"] == "text":  # logprobs asked, the answer read from the text
            params["text_fallback"] = ("LiteLLM dropped logprobs for this provider" if "logprobs" in params["dropped"]
                                       else "the response had no logprobs")
        result["labels"].append(label)
    return result


def _answer_tokens(spec: ModelSpec, mode: str) -> int:
    """max_tokens for a survey answer: one token is the answer; "auto" leaves API models room for a letter and a
    full stop."""
    from probe import models

    first_token_only = mode == "logprobs" or (mode == "auto" and models.is_offline(spec.id))
    return spec.max_tokens or (1 if first_token_only else 8)


async def _individual(ctx: CampaignContext, item: Item, store: Store | None = None, gate: "_StateGate | None" = None,
                      limiter: limits.Limiter | None = None) -> dict:
    """A whole questionnaire in one conversation (probe.individuals). Every call uses the item's seed, so a
    simulator drawing whole census rows keeps to one row; a failed call fails the individual, and its retry starts
    over with the same answer orders and draws: an individual is stored whole or not at all. Each turn is a paid
    call like any item's (calls.paid_call: the shared limits, the budget, 429s seen by the limiter)."""
    from probe import individuals, models

    spec = ctx.models[item.model]
    mode = ctx.spec.answer_mode
    want_lp = mode in ("auto", "logprobs")
    max_tokens = _answer_tokens(spec, mode)
    params = sent_params(spec, models.call_params(spec, seed=item.seed, max_tokens=max_tokens, logprobs=want_lp))

    async def ask(messages: list[dict]):
        return await calls.paid_call(store, ctx.spec, item, spec, messages, max_tokens, want_lp, gate,
                                     limiter or limits.local())

    response = {"messages": [], "params": params, "raw_text": None, "top_logprobs": None, "finish_reason": None,
                "usage": None, "cost": None, "latency_s": None, "error": None, "error_kind": None,
                "attempts": item.attempts + 1}
    try:
        ind = await individuals.fill(ctx.surveys[item.source], ask, seed=item.seed, ordering=ctx.spec.ordering,
                                     template=ctx.spec.template, mode=mode)
    except calls.BudgetReached:  # left pending, to start over whole on resume
        return {"key": item.key, "status": "held", "response": response}
    except models.CallError as e:
        log.warning("item %s (individual): %s error: %s", item.key, e.kind, e)
        response.update(error=str(e), error_kind=e.kind)
        return {"key": item.key, "status": "failed" if e.kind == "permanent" else "retry", "response": response}
    cs = ind.completions
    usage = {k: sum((c.usage or {}).get(k) or 0 for c in cs) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    costs = [c.cost for c in cs if c.cost is not None]
    response.update(messages=ind.messages, raw_text=cs[-1].text if cs else None,
                    finish_reason=cs[-1].finish_reason if cs else None, usage=usage,
                    cost=sum(costs) if costs else None, latency_s=sum(c.latency_s or 0 for c in cs))
    if want_lp and any(t["mode"] == "text" for t in ind.turns):
        params["text_fallback"] = ("LiteLLM dropped logprobs for this provider" if "logprobs" in params["dropped"]
                                   else "some responses had no logprobs")
    return {"key": item.key, "status": "done", "response": response, "labels": [individuals.label_row(ind)]}


def sent_params(spec: ModelSpec, asked: dict) -> dict:
    """A response's stored params: what was sent. Each of temperature, max_tokens, seed, logprobs, top_logprobs
    holds the value that reached the provider (None, for logprobs False, when LiteLLM dropped it or it was not
    asked); `sent` and `dropped` name the parameters LiteLLM passed on and those it dropped (models.dropped_params).
    A survey answer asked in logprobs (or auto) mode but read from the text also gets `text_fallback`, the reason."""
    from probe import models

    dropped = models.dropped_params(spec, asked)
    sent = {k: v for k, v in asked.items() if k not in dropped}
    return {"model": spec.id, "api_base": spec.api_base, "temperature": sent.get("temperature"),
            "max_tokens": sent.get("max_tokens"), "seed": sent.get("seed"), "logprobs": bool(sent.get("logprobs")),
            "top_logprobs": sent.get("top_logprobs"), "sent": list(sent), "dropped": dropped}


def _survey_label(ctx: CampaignContext, item: Item, c, mode: str) -> dict:
    shown = item.permutation
    q = ctx.surveys[item.source].question(item.item_id)
    a = answers.read(c.letter_probs, c.top_logprobs, c.text, shown, [q.text_of(code) for code in shown], mode)
    return {"labeller": "answers", "labeller_version": a.mode, "label": "invalid" if a.invalid else "answered",
            "option_code": a.option_code, "letter_probs": a.letter_probs,
            "option_probs": {str(k): v for k, v in a.option_probs.items()} if a.option_probs else None,
            "p_refusal": None, "letter_mass": a.letter_mass, "reason": a.invalid_reason}


def _label_refusals(results: list[dict]) -> None:
    """The default classifier's labels for answered refusal probes; a response with no content (null or blank
    text) is labelled no_content, with its finish reason, not classified (probe.labelling)."""
    todo = [r for r in results if r["status"] == "done" and r.get("kind") == "refusal"]
    if not todo:
        return
    from classifiers import registry
    from probe.labelling import label_responses

    rows = label_responses(registry.get(), [r["response"]["raw_text"] for r in todo], [r["prompt"] for r in todo],
                           [r["response"]["finish_reason"] for r in todo])
    for r, labs in zip(todo, rows):
        r["labels"] += labs


FLUSH_DB_RETRY_S = float(os.environ.get("PROBE_FLUSH_RETRY_S", "180"))  # ride out a database restart


def _flush(store: Store, results: list[dict]) -> None:
    """Label and save; while the database is unreachable (a restart), keep trying: these responses are paid for."""
    _label_refusals(results)
    rows = [{k: r[k] for k in ("key", "status", "response", "labels", "cache") if k in r} for r in results]
    deadline, pause = time.monotonic() + FLUSH_DB_RETRY_S, 0.5
    while True:
        try:
            store.save_results(rows)
            return
        except DBAPIError as e:  # OperationalError, InterfaceError: connection lost or refused
            if time.monotonic() > deadline:
                raise
            log.warning("saving %d results failed (%s); retrying in %.1f s", len(rows), str(e).splitlines()[0][:120], pause)
            time.sleep(pause)
            pause = min(pause * 2, 10)


class _StateGate:
    """Whether a campaign's items may still start: re-read from the store at most once a second, so a
    `probe cancel` (or a pause) stops new calls within about a second while in-flight calls finish and are stored."""

    def __init__(self, store: Store, campaign_id: str):
        self.store, self.campaign_id, self.checked, self.open = store, campaign_id, 0.0, True
        self.cap: float | None = None  # the campaign's max_cost as stored now (a resume may raise it)

    async def allows(self) -> bool:
        if time.monotonic() - self.checked >= 1.0:
            self.checked = time.monotonic()
            try:
                state, self.cap = await asyncio.to_thread(self.store.state_and_cap, self.campaign_id)
            except DBAPIError as e:  # the database is restarting: go on as last known; saving retries meanwhile
                log.warning("campaign %s: cannot read its state (%s); going on", self.campaign_id,
                            str(e).splitlines()[0][:120])
                return self.open
            self.open = state not in ("paused", "cancelled")
            if not self.open:
                log.info("campaign %s is %s: no new items start", self.campaign_id, state)
        return self.open

    async def budget_reached(self, cap: float) -> None:
        """Pause the campaign (once, whichever worker sees it first): no call starts; `probe resume --max-cost`."""
        if self.open:
            self.open = False
            reason = (f"budget: committed spend (done plus in flight) would pass max_cost ${cap:,.2f}; "
                      f"`probe resume {self.campaign_id} --max-cost USD` continues")
            if await asyncio.to_thread(self.store.set_state, self.campaign_id, "paused", reason, ("running",)):
                log.warning("campaign %s paused: %s", self.campaign_id, reason)


async def process(store: Store, keys: list[str], concurrency: int = 16,
                  on_result: Callable[[str, str], None] | None = None, lease_s: float | None = None,
                  owner: str | None = None, limiter: limits.Limiter | None = None) -> dict[str, str]:
    """Run the given items of one campaign; return {key: error} for those that failed transiently (left pending).
    With lease_s and owner (a fleet task), the task first claims its items (skipping any another live task
    holds) and renews the lease while it runs, so no item runs twice at once and the watchdog never re-enqueues
    work in hand. limiter: the fleet's shared one (limits.shared); by default this process's. Whatever happens (an error, Ctrl-C, a cancel), results already received are saved before this
    returns or raises."""
    items = []
    for i in range(0, len(keys), 2000):
        items += [it for it in store.items(keys[i:i + 2000]) if it.status == "pending"]
    if not items:
        return {}
    limiter = limiter or limits.local()
    gate = _StateGate(store, items[0].campaign_id)
    if not await gate.allows():
        return {}
    if lease_s and owner:
        mine = await asyncio.to_thread(store.claim, [it.key for it in items], owner, lease_s)
        if len(mine) < len(items):
            log.info("campaign %s: %d of %d items are held by another task", items[0].campaign_id,
                     len(items) - len(mine), len(items))
        items = [it for it in items if it.key in mine]
        if not items:
            return {}
    position = {it.key: i for i, it in enumerate(items)}
    ready: dict[str, tuple[_Request, dict | None]] = {}
    filling = asyncio.Lock()

    async def prepared(it: Item) -> tuple[_Request, dict | None] | None:
        """The item's request and cached answer, read with the next PREFETCH items (taken from the queue in order)
        the first time one of them is missing: a window at a time, so a million-item run holds no million requests."""
        if it.kind == "individual":
            return None
        if it.key not in ready:
            async with filling:
                if it.key not in ready:
                    i = position[it.key]
                    ready.update(await asyncio.to_thread(_prefetch, store, items[i:i + PREFETCH]))
        return ready.pop(it.key, None)

    queue: asyncio.Queue = asyncio.Queue()
    for it in items:
        queue.put_nowait(it)
    buffer: list[dict] = []
    retry: dict[str, str] = {}
    last_flush = time.monotonic()
    writer: asyncio.Task | None = None
    open_keys = {it.key for it in items}

    async def flush(force: bool = False):
        nonlocal buffer, last_flush, writer
        if not buffer or (not force and len(buffer) < FLUSH_EVERY and time.monotonic() - last_flush < FLUSH_SECONDS):
            return
        # One write transaction at a time, in order. A loop, not one await: two workers waiting on the same writer
        # would otherwise both start one, and the first, no longer tracked, could still be writing when the round
        # ends and the campaign is checked for completion (it then stayed "running" with nothing pending).
        while writer is not None and not writer.done():
            await writer
        if not buffer:  # another worker flushed it while this one waited
            return
        batch, buffer, last_flush = buffer, [], time.monotonic()
        writer = asyncio.create_task(asyncio.to_thread(_flush, store, batch))
        if force:
            await writer

    async def renew_leases():
        while open_keys:
            await asyncio.sleep(lease_s / 3)
            try:
                await asyncio.to_thread(store.lease, list(open_keys), owner, lease_s)
            except DBAPIError as e:  # the database is restarting: keep renewing, or the lease lapses mid-run
                log.warning("renewing %d leases failed (%s); trying again", len(open_keys), str(e).splitlines()[0][:120])

    async def worker(i: int):
        # Stagger the starts by about one call's CPU time: calls started together come back together and
        # then queue for the one event loop, wave after wave; spread out, each finds the loop free.
        if len(items) > 2 * concurrency:  # only worth it when workers come round again
            await asyncio.sleep(i * RAMP_S)
        while await gate.allows():
            try:  # not queue.empty() then get: the gate's await lets another worker take the last item between
                it = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            ctx = context(store, it.campaign_id)
            r = await _one(ctx, it, store, gate, limiter, await prepared(it))
            if r["status"] == "held":  # over budget: left pending (its lease is released below) for a resume
                continue
            if r["status"] == "retry":
                retry[it.key] = r["response"]["error"]
            else:
                if it.kind == "refusal":
                    r["kind"] = "refusal"
                    r["prompt"] = r["response"]["messages"][-1]["content"]
                buffer.append(r)
                await flush()
            open_keys.discard(it.key)
            if on_result:
                on_result(it.key, r["status"])

    leases = asyncio.create_task(renew_leases()) if lease_s and owner else None
    try:
        async with asyncio.TaskGroup() as tg:  # one failing worker cancels the others
            for i in range(min(concurrency, len(items))):
                tg.create_task(worker(i))
    except ExceptionGroup as eg:
        raise eg.exceptions[0] from None
    finally:
        if leases:
            leases.cancel()
        if writer is not None and not writer.done():
            await asyncio.shield(writer)
        if buffer:  # also on an error or a cancel (Ctrl-C): what was received is kept
            _flush(store, buffer)
            buffer = []
        if leases and open_keys:  # claimed, never started (a cancel, an error): free for the next task at once
            try:
                await asyncio.to_thread(store.release, list(open_keys), owner)
            except DBAPIError:  # the lease runs out by itself
                log.warning("could not release the lease on %d items", len(open_keys))
    return retry


ROUNDS = int(os.environ.get("PROBE_ROUNDS", "6"))  # rounds for items that failed transiently after LiteLLM's retries


def backoff(round_: int) -> float:
    return float(min(2 ** round_, 30))


def after_round(store: Store, campaign_id: str, failed: dict[str, str], round_: int) -> list[str]:
    """The one retry rule, embedded and fleet alike: items that failed transiently get another round (after
    `backoff(round_)`), up to ROUNDS, then are failed with their last error. Returns the keys to run again."""
    if failed and round_ + 1 < ROUNDS:
        log.warning("campaign %s: %d items failed transiently; round %d of %d in %.0f s",
                    campaign_id, len(failed), round_ + 2, ROUNDS, backoff(round_))
        return list(failed)
    if failed:
        log.error("campaign %s: %d items failed after %d rounds", campaign_id, len(failed), ROUNDS)
        mark_failed(store, failed)
    store.finish_if_complete(campaign_id)
    return []


def mark_failed(store: Store, errors: dict[str, str], kind: str = "transient") -> None:
    """Give up on items after their retries: stored as failed with the last error, reported, never lost."""
    items = store.items(list(errors))
    store.save_results([{"key": it.key, "status": "failed", "labels": [], "response": {
        "messages": [], "params": {}, "raw_text": None, "top_logprobs": None, "finish_reason": None, "usage": None,
        "cost": None, "latency_s": None, "error": errors[it.key], "error_kind": kind, "attempts": it.attempts + 1,
        "reported_model": None, "system_fingerprint": None}}
        for it in items if it.status == "pending"])
