"""Run a campaign's pending items: in-process (embedded) or by enqueueing chunks to Celery workers (fleet)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Iterable
from itertools import islice
from typing import Callable

from probe import execute
from probe.errors import ProbeError
from probe.store import Store

log = logging.getLogger(__name__)



async def _rounds(store: Store, keys: list[str], concurrency: int,
                  on_result: Callable[[str, str], None] | None = None) -> None:
    """Run items; those that failed transiently (after LiteLLM's own retries) get more rounds, then are failed."""
    if not keys:
        return
    campaign_id = store.items(keys[:1])[0].campaign_id
    for r in range(execute.ROUNDS):
        failed = await execute.process(store, keys, concurrency, on_result)
        keys = execute.after_round(store, campaign_id, failed, r)
        if not keys:
            return
        await asyncio.sleep(execute.backoff(r))


def _child(db_url: str, keys: list[str], concurrency: int) -> None:
    # a new Store: a forked process never reuses the parent's connections
    try:
        asyncio.run(_rounds(Store(db_url), keys, concurrency))
    except KeyboardInterrupt:  # Ctrl-C: process() saved what it received; the parent reports it, no traceback here
        raise SystemExit(130) from None


def run_embedded(store: Store, campaign_id: str, concurrency: int,
                 on_progress: Callable[[int, int], None] | None = None, processes: int = 1) -> None:
    """Run a campaign in this machine's processes, no servers. With processes > 1 the pending items are split
    across forked processes (each with concurrency / processes calls in flight): LiteLLM costs ~5 ms of CPU per
    call, so one event loop saturates one core. Progress is read from the store, the source of truth.
    On Ctrl-C every process saves what it has received and the campaign is left paused, to be resumed.
    A new (queued) campaign is started here; a paused or cancelled one is left as it is (tasks skip its items)."""
    store.set_state(campaign_id, "running", None, only_from=("queued",), mode="embedded")
    keys = store.keys(campaign_id, "pending")
    from probe import models  # litellm itself only on first use

    if keys and any(not models.is_offline(m.get("id", ""))
                    for m in (store.campaign(campaign_id).spec or {}).get("models", [])):
        models.warm()  # LiteLLM's first-call imports, once, before the fork
    if processes <= 1 or len(keys) < 2 * processes:
        done = failed = 0

        def on_result(key: str, status: str) -> None:
            nonlocal done, failed
            if status != "retry":
                done += status == "done"
                failed += status == "failed"
                if on_progress:
                    on_progress(done, failed)

        _report(store, campaign_id, on_progress)
        p0 = store.progress(campaign_id)
        done, failed = p0.get("done", 0), p0.get("failed", 0)
        asyncio.run(_rounds(store, keys, concurrency, on_result))
        return
    ctx = multiprocessing.get_context("fork")
    store.engine.dispose(close=False)  # children open their own connections
    procs = [ctx.Process(target=_child, args=(store.url, keys[i::processes], max(1, concurrency // processes)),
                         daemon=True) for i in range(processes)]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            _report(store, campaign_id, on_progress)
            time.sleep(0.25)
    finally:
        for p in procs:
            if p.is_alive() and sys.exc_info()[0] is not None:  # interrupted: let each child save what it has
                os.kill(p.pid, signal.SIGINT)
        for p in procs:
            p.join(timeout=60)
    left = store.keys(campaign_id, "pending")
    if left and store.state(campaign_id) == "running":  # a child died (killed, crashed): finish its items here
        log.warning("%d items left by a process that stopped early; finishing them in-process", len(left))
        asyncio.run(_rounds(store, left, concurrency))
    _report(store, campaign_id, on_progress)


def _report(store: Store, campaign_id: str, on_progress: Callable[[int, int], None] | None) -> None:
    if on_progress:
        p = _riding_out(store.progress, campaign_id)
        on_progress(p.get("done", 0), p.get("failed", 0))


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


WAVES_PER_TASK = 4  # a task holds 4 x concurrency items, kept `concurrency` in flight: no idle gap per wave


def waves(spec) -> int:
    """Waves of `concurrency` items per task: one for synthetic individuals, whose items each make a call per
    question one after another."""
    return 1 if getattr(spec, "survey_mode", "questions") == "individuals" else WAVES_PER_TASK


def calls_per_item(spec) -> int:
    """Sequential model calls an item may make: one, or the longest questionnaire's questions for individuals."""
    if getattr(spec, "survey_mode", "questions") != "individuals":
        return 1
    from probe import questionnaires

    return max(len(questionnaires.load(n).questions) for n in spec.surveys)


def check_timeouts(spec) -> None:
    """A task must finish inside the broker's visibility timeout, or Redis hands it to a second worker while the
    first still works on it. Its worst case: every wave of calls times out on every attempt."""
    from workers.celery_app import VISIBILITY_TIMEOUT

    n, calls = waves(spec), calls_per_item(spec)
    worst = n * calls * spec.timeout_s * (spec.num_retries + 1)
    if rpms := [m.rpm for m in spec.models if m.rpm]:  # a task's calls wait for their slots (the whole fleet's)
        worst += n * calls * spec.concurrency * 60 / min(rpms)
    if worst >= VISIBILITY_TIMEOUT:
        what = f"{n} waves" if calls == 1 else f"{calls} questions in turn per individual"
        raise ProbeError(f"{what} x --timeout {spec.timeout_s:g} s x {spec.num_retries + 1} attempts "
                         f"(+ waiting for --rpm slots) = "
                         f"{worst:g} s is not below the broker's visibility timeout ({VISIBILITY_TIMEOUT} s; "
                         "PROBE_VISIBILITY_TIMEOUT raises it, or lower --timeout)")


def enqueue(broker: str, campaign_id: str, keys: Iterable[str], concurrency: int, store: Store | None = None,
            n_waves: int = WAVES_PER_TASK) -> int:
    """One task per n_waves x concurrency items (keys may be streamed); returns the number of tasks sent."""
    chunk = n_waves * concurrency
    app = celery_app(broker)
    n = 0
    it = iter(keys)
    with app.producer_or_acquire() as producer:
        while batch := list(islice(it, chunk)):
            app.send_task("probe.run_chunk", args=(campaign_id, batch), producer=producer)
            n += 1
    if store is not None:
        store.mark_enqueued(campaign_id)  # the watchdog gives fresh messages a grace period
    return n


def workers_alive(broker: str) -> int:
    try:
        return len(celery_app(broker).control.ping(timeout=1.0) or [])
    except Exception:
        return 0


STALL_S = float(os.environ.get("PROBE_STALL_S", "60"))


def wait(store: Store, campaign_id: str, on_progress: Callable[[int, int, int], None], poll_s: float = 0.5,
         stall_s: float = STALL_S, on_stall: Callable[[float], None] | None = None) -> str:
    """Poll the store (the source of truth) until no item is pending or the campaign stops running; returns
    its state. When nothing moves for stall_s seconds, on_stall is told (again after each further stall_s)."""
    last, since = None, time.monotonic()
    while True:
        p = _riding_out(store.progress, campaign_id)
        on_progress(p.get("done", 0), p.get("failed", 0), sum(p.values()))
        if p.get("pending", 0) == 0:
            _riding_out(store.finish_if_complete, campaign_id)
            return _riding_out(store.state, campaign_id)
        state = _riding_out(store.state, campaign_id)
        if state != "running":
            return state
        if p != last:
            last, since = p, time.monotonic()
        elif on_stall and time.monotonic() - since >= stall_s:
            on_stall(time.monotonic() - since)
            since = time.monotonic()
        time.sleep(poll_s)


def _riding_out(read: Callable, *args):
    """read(*args), tried again while the database is unreachable (a restart: the workers ride it out too, and a
    waiting client must not fail the campaign they are running), for up to execute.FLUSH_DB_RETRY_S seconds."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    deadline, pause = time.monotonic() + execute.FLUSH_DB_RETRY_S, 0.5
    while True:
        try:
            return read(*args)
        except (OperationalError, InterfaceError) as e:
            if time.monotonic() > deadline:
                raise
            log.warning("the store is unreachable (%s); trying again in %.1f s", str(e).splitlines()[0][:120], pause)
            time.sleep(pause)
            pause = min(pause * 2, 5)


def _redact(url: str) -> str:
    from kombu.utils.url import maybe_sanitize_url

    return maybe_sanitize_url(url)
