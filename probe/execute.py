"""The task code, shared by the embedded pool and the Celery workers: item keys in, stored results out.

A call to `process` takes item keys, skips those already done, renders each item's messages, calls the model
through probe.models, parses the survey answer or classifies the refusal, and writes everything with upserts
in batches. Keys whose calls failed transiently are returned for the caller to retry (embedded: another round
after a pause; fleet: Celery's retry), so a 429 storm or a dead worker loses nothing and duplicates nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from probe import answers, campaigns, probesets, questionnaires, render
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
        ctx = CampaignContext(spec, {m.id: m for m in spec.models}, campaigns.surveys_of(spec),
                              campaigns.probesets_of(spec))
        _contexts[campaign_id] = ctx
    return ctx


def _messages(ctx: CampaignContext, item: Item) -> list[dict]:
    if item.kind == "survey":
        q = ctx.surveys[item.source].question(item.item_id)
        return render.survey_messages(q, item.permutation, ctx.spec.template)
    return render.probe_messages(ctx.probesets[item.source].prompt(item.item_id).text)


async def _one(ctx: CampaignContext, item: Item) -> dict:
    from probe import models  # litellm is imported on first use only

    spec = ctx.models[item.model]
    mode = ctx.spec.answer_mode
    survey = item.kind == "survey"
    want_lp = survey and mode in ("auto", "logprobs")
    if survey:  # one token is the answer; "auto" leaves API models room for a letter and a full stop
        first_token_only = mode == "logprobs" or (mode == "auto" and models.is_offline(spec.id))
        max_tokens = spec.max_tokens or (1 if first_token_only else 8)
    else:
        max_tokens = spec.refusal_max_tokens()
    msgs = _messages(ctx, item)
    params = {"model": spec.id, "api_base": spec.api_base, "temperature": spec.temperature,
              "max_tokens": max_tokens, "seed": item.seed, "logprobs": want_lp,
              "top_logprobs": spec.top_logprobs if want_lp else None}
    response = {"messages": msgs, "params": params, "raw_text": None, "top_logprobs": None, "finish_reason": None,
                "usage": None, "cost": None, "latency_s": None, "error": None, "error_kind": None,
                "attempts": item.attempts + 1}
    try:
        c = await models.acall(spec, msgs, seed=item.seed, max_tokens=max_tokens, logprobs=want_lp,
                               timeout=ctx.spec.timeout_s, num_retries=ctx.spec.num_retries)
    except models.CallError as e:
        log.warning("item %s: %s error: %s", item.key, e.kind, e)
        response.update(error=str(e), error_kind=e.kind)
        return {"key": item.key, "status": "failed" if e.kind == "permanent" else "retry", "response": response}
    response.update(raw_text=c.text, top_logprobs=[list(t) for t in c.top_logprobs] if c.top_logprobs else None,
                    finish_reason=c.finish_reason, usage=c.usage, cost=c.cost, latency_s=c.latency_s)
    result = {"key": item.key, "status": "done", "response": response, "labels": []}
    if survey:
        result["labels"].append(_survey_label(ctx, item, c, mode))
    return result


def _survey_label(ctx: CampaignContext, item: Item, c, mode: str) -> dict:
    shown = item.permutation
    if c.top_logprobs and mode in ("auto", "logprobs"):
        a = answers.from_logprobs(c.top_logprobs, shown)
    else:
        q = ctx.surveys[item.source].question(item.item_id)
        a = answers.from_text(c.text, shown, [q.text_of(code) for code in shown])
    return {"labeller": "answers", "labeller_version": a.mode, "label": "invalid" if a.invalid else "answered",
            "option_code": a.option_code, "letter_probs": a.letter_probs,
            "option_probs": {str(k): v for k, v in a.option_probs.items()} if a.option_probs else None,
            "p_refusal": None}


def _label_refusals(results: list[dict]) -> None:
    todo = [r for r in results if r["status"] == "done" and r["response"]["raw_text"] is not None
            and r.get("kind") == "refusal"]
    if not todo:
        return
    from classifiers import registry
    from probe.labelling import classifier_id, label_row

    clf = registry.get()
    preds = clf.predict([r["response"]["raw_text"] for r in todo], [r["prompt"] for r in todo])
    for r, p in zip(todo, preds):
        r["labels"].append(label_row(classifier_id(clf), p.label, p.p_refusal))


def _flush(store: Store, results: list[dict]) -> None:
    _label_refusals(results)
    store.save_results([{k: r[k] for k in ("key", "status", "response", "labels") if k in r} for r in results])


async def process(store: Store, keys: list[str], concurrency: int = 16,
                  on_result: Callable[[str, str], None] | None = None) -> dict[str, str]:
    """Run the given items; return {key: error} for those that failed transiently (left pending)."""
    items = []
    for i in range(0, len(keys), 2000):
        items += [it for it in store.items(keys[i:i + 2000]) if it.status == "pending"]
    if not items:
        return {}
    queue: asyncio.Queue = asyncio.Queue()
    for it in items:
        queue.put_nowait(it)
    buffer: list[dict] = []
    retry: dict[str, str] = {}
    last_flush = time.monotonic()
    writer: asyncio.Task | None = None

    async def flush(force: bool = False):
        nonlocal buffer, last_flush, writer
        if not buffer or (not force and len(buffer) < FLUSH_EVERY and time.monotonic() - last_flush < FLUSH_SECONDS):
            return
        if writer is not None:
            await writer  # one write transaction at a time, in order
        batch, buffer, last_flush = buffer, [], time.monotonic()
        writer = asyncio.create_task(asyncio.to_thread(_flush, store, batch))
        if force:
            await writer

    async def worker(i: int):
        # Stagger the starts by about one call's CPU time: calls started together come back together and
        # then queue for the one event loop, wave after wave; spread out, each finds the loop free.
        if len(items) > 2 * concurrency:  # only worth it when workers come round again
            await asyncio.sleep(i * RAMP_S)
        while not queue.empty():
            it = queue.get_nowait()
            ctx = context(store, it.campaign_id)
            r = await _one(ctx, it)
            if r["status"] == "retry":
                retry[it.key] = r["response"]["error"]
            else:
                if it.kind == "refusal":
                    r["kind"] = "refusal"
                    r["prompt"] = r["response"]["messages"][-1]["content"]
                buffer.append(r)
                await flush()
            if on_result:
                on_result(it.key, r["status"])

    await asyncio.gather(*(worker(i) for i in range(min(concurrency, len(items)))))
    await flush(force=True)
    return retry


def mark_failed(store: Store, errors: dict[str, str]) -> None:
    """Give up on items after their retries: stored as failed with the last error, reported, never lost."""
    items = store.items(list(errors))
    store.save_results([{"key": it.key, "status": "failed", "labels": [], "response": {
        "messages": [], "params": {}, "raw_text": None, "top_logprobs": None, "finish_reason": None, "usage": None,
        "cost": None, "latency_s": None, "error": errors[it.key], "error_kind": "transient", "attempts": it.attempts + 1}}
        for it in items if it.status == "pending"])
