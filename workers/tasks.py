"""Celery tasks: thin wrappers over probe.execute. A task carries a campaign id and item keys, never secrets."""

from __future__ import annotations

import asyncio
import logging
import os

from probe import execute
from probe.store import open_store
from workers.celery_app import app

log = logging.getLogger(__name__)
MAX_ROUNDS = 6
_loop: asyncio.AbstractEventLoop | None = None


def _run(coro):
    # One event loop per worker process, kept across tasks: LiteLLM's pooled HTTP clients belong to a loop.
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
    return _loop.run_until_complete(coro)


@app.task(name="probe.run_chunk", bind=True, max_retries=MAX_ROUNDS, acks_late=True, reject_on_worker_lost=True)
def run_chunk(self, campaign_id: str, keys: list[str]) -> int:
    store = open_store(os.environ.get("PROBE_DB"))
    spec = execute.context(store, campaign_id).spec
    failed = _run(execute.process(store, keys, concurrency=spec.concurrency))
    if failed:
        if self.request.retries >= MAX_ROUNDS:
            log.error("campaign %s: %d items failed after %d rounds", campaign_id, len(failed), MAX_ROUNDS)
            execute.mark_failed(store, failed)
        else:
            raise self.retry(args=(campaign_id, list(failed)), countdown=min(2 ** self.request.retries, 30))
    return len(keys) - len(failed)
