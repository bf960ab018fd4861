"""Run a campaign's pending items: in-process (embedded) or by enqueueing chunks to Celery workers (fleet)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from probe import execute
from probe.errors import ProbeError
from probe.store import Store

log = logging.getLogger(__name__)

EMBEDDED_ROUNDS = 4  # rounds for items whose calls failed transiently after LiteLLM's own retries
CHUNK = 64


def run_embedded(store: Store, campaign_id: str, concurrency: int,
                 on_result: Callable[[str, str], None] | None = None) -> None:
    async def rounds():
        keys = store.keys(campaign_id, "pending")
        failed: dict[str, str] = {}
        for r in range(EMBEDDED_ROUNDS):
            failed = await execute.process(store, keys, concurrency, on_result)
            if not failed:
                return
            keys = list(failed)
            log.warning("%d items failed transiently; round %d of %d in %d s", len(keys), r + 2, EMBEDDED_ROUNDS, 2 ** r)
            await asyncio.sleep(2 ** r)
        execute.mark_failed(store, failed)

    asyncio.run(rounds())


def celery_app(broker: str):
    from workers.celery_app import make_app

    return make_app(broker)


def check_broker(broker: str) -> None:
    app = celery_app(broker)
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
    except Exception as e:
        raise ProbeError(f"cannot reach broker {_redact(broker)}: {str(e).splitlines()[0][:200]}") from None


def check_timeouts(spec) -> None:
    """A task (one chunk = one wave of `concurrency` calls) must finish inside the broker's visibility timeout,
    or Redis hands it to a second worker while the first still works on it."""
    from workers.celery_app import VISIBILITY_TIMEOUT

    worst = spec.timeout_s * (spec.num_retries + 1)
    if worst >= VISIBILITY_TIMEOUT:
        raise ProbeError(f"--timeout {spec.timeout_s:g} s x {spec.num_retries + 1} attempts = {worst:g} s is not below the "
                         f"broker's visibility timeout ({VISIBILITY_TIMEOUT} s; PROBE_VISIBILITY_TIMEOUT raises it)")


def enqueue(broker: str, campaign_id: str, keys: list[str], chunk: int = CHUNK) -> int:
    app = celery_app(broker)
    n = 0
    with app.producer_or_acquire() as producer:
        for i in range(0, len(keys), chunk):
            app.send_task("probe.run_chunk", args=(campaign_id, keys[i:i + chunk]), producer=producer)
            n += 1
    return n


def workers_alive(broker: str) -> int:
    try:
        return len(celery_app(broker).control.ping(timeout=1.0) or [])
    except Exception:
        return 0


def wait(store: Store, campaign_id: str, on_progress: Callable[[int, int, int], None], poll_s: float = 0.5) -> None:
    """Poll the store (the source of truth) until no item is pending."""
    while True:
        p = store.progress(campaign_id)
        total = sum(p.values())
        on_progress(p.get("done", 0), p.get("failed", 0), total)
        if p.get("pending", 0) == 0:
            return
        time.sleep(poll_s)


def _redact(url: str) -> str:
    from kombu.utils.url import maybe_sanitize_url

    return maybe_sanitize_url(url)
