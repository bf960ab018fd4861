"""Celery tasks: thin wrappers over probe. A task carries a campaign id and item keys, never secrets."""

from __future__ import annotations

import asyncio
import logging
import os

from celery.signals import worker_init

from probe import audits, execute, limits, watchdog
from probe.store import open_store
from workers.celery_app import LEASE_S, app

log = logging.getLogger(__name__)


@worker_init.connect
def _preload(**_) -> None:
    # litellm (~5 s to import) loaded once in the worker before its pool forks, not in each pool process at its first
    # task (a scheduled audit run would start that much late); beat, which imports this module too, does not need it
    from probe import models

    models.warm()  # and what LiteLLM imports at its first call


def _broker() -> str:
    return os.environ.get("PROBE_BROKER") or app.conf.broker_url


_loop: asyncio.AbstractEventLoop | None = None


def _run(coro):
    # One event loop per worker process, kept across tasks: LiteLLM's pooled HTTP clients belong to a loop.
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
    return _loop.run_until_complete(coro)


@app.task(name="probe.run_chunk", bind=True, max_retries=None, acks_late=True, reject_on_worker_lost=True)
def run_chunk(self, campaign_id: str, keys: list[str]) -> int:
    round_ = self.request.retries
    try:
        store = open_store(os.environ["PROBE_DB"])
        spec = execute.context(store, campaign_id).spec
        failed = _run(execute.process(store, keys, concurrency=spec.concurrency, lease_s=LEASE_S,
                                      owner=self.request.id,
                                      limiter=limits.shared(_broker())))
        again = execute.after_round(store, campaign_id, failed, round_)
    except Exception as e:  # database down, a classifier error...: never leave the items with no message
        reason = f"task error: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
        if round_ + 1 < execute.ROUNDS:
            log.warning("campaign %s: %s; task retried in %.0f s", campaign_id, reason, execute.backoff(round_))
            raise self.retry(args=(campaign_id, keys), countdown=execute.backoff(round_)) from None
        log.error("campaign %s: %s; %d items failed", campaign_id, reason, len(keys))
        try:  # if the store is still down, the watchdog finds them pending with no message later
            execute.mark_failed(store, {k: reason for k in keys}, kind="error")
            store.finish_if_complete(campaign_id)
        except Exception:
            log.exception("campaign %s: could not mark %d items failed", campaign_id, len(keys))
        return 0
    if again:
        raise self.retry(args=(campaign_id, again), countdown=execute.backoff(round_))
    return len(keys)


@app.task(name="probe.watchdog", ignore_result=True)
def watchdog_task() -> dict:
    return watchdog.heal(open_store(os.environ["PROBE_DB"]), _broker())


@app.task(name="probe.audits", ignore_result=True)
def audits_task() -> dict:
    return audits.tick(open_store(os.environ["PROBE_DB"]), _broker())
