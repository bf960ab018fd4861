"""Nothing stuck: find a running fleet campaign's pending items that no task will run, and enqueue them again.

An item is in hand when a message naming it waits in the broker's queue, or is held unacknowledged by a worker
(late acks: every task being worked on, and every retry waiting for its countdown), or when a task holds its
lease in the store. A pending item that is in none of these (its message was lost with a Redis that restarted
without persistence, or its task failed while the database was down) is an orphan. The watchdog (a Celery beat
entry, `probe beat`) enqueues an orphan only when two scans in a row found it so, which rules out the instant
a worker takes a message off the queue; `probe resume` uses one scan.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta

from probe import dispatch
from probe.spec import CampaignSpec
from probe.store import Store
from probe.store.schema import aware, utcnow

log = logging.getLogger(__name__)

QUEUE = "probe"
UNACKED = "unacked"  # kombu's Redis transport default
GRACE_S = 10.0  # after an enqueue, messages get this long to reach the queue before anything is judged
_SUSPECTS = "probe:watchdog:suspects:{}"


def _task_args(raw: bytes | str) -> tuple[str, list[str]] | None:
    """(campaign id, keys) of a run_chunk message as kombu's Redis transport stores it, else None."""
    try:
        msg = json.loads(raw)
        if isinstance(msg, list):  # the unacked hash holds [message, exchange, routing key]
            msg = msg[0]
        if msg.get("headers", {}).get("task") != "probe.run_chunk":
            return None
        body = msg["body"]
        if msg.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return args[0], list(args[1])
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None


def live_keys(broker: str) -> dict[str, set[str]]:
    """Item keys named by any message in the queue or unacknowledged, per campaign."""
    client = _redis(broker)
    out: dict[str, set[str]] = {}
    queues = [q for q in client.scan_iter(match=f"{QUEUE}*", count=1000) if _is_queue(q)]
    raws = [m for q in queues for m in client.lrange(q, 0, -1)] + list(client.hvals(UNACKED))
    for raw in raws:
        if parsed := _task_args(raw):
            out.setdefault(parsed[0], set()).update(parsed[1])
    return out


def _is_queue(name: bytes) -> bool:
    # the queue and its priority sub-lists ("probe\x06\x163"), not other keys that start with the same word
    return name == QUEUE.encode() or name.startswith(QUEUE.encode() + b"\x06\x16")


def _redis(broker: str):
    import redis

    return redis.Redis.from_url(broker)


def orphans(store: Store, broker: str, campaign_id: str, live: dict[str, set[str]] | None = None) -> list[str]:
    """Pending, unleased items of the campaign that no message names."""
    pending = store.unleased_pending(campaign_id)
    if not pending:
        return []
    held = (live if live is not None else live_keys(broker)).get(campaign_id, set())
    return sorted(set(pending) - held)


def reenqueue(store: Store, broker: str, campaign_id: str, keys: list[str]) -> int:
    spec = CampaignSpec.model_validate(store.campaign(campaign_id).spec)
    return dispatch.enqueue(broker, campaign_id, keys, spec.concurrency, store=store, n_waves=dispatch.waves(spec))


def heal(store: Store, broker: str, grace_s: float = GRACE_S) -> dict[str, int]:
    """One watchdog pass over every running fleet campaign; returns {campaign id: items enqueued again}."""
    healed: dict[str, int] = {}
    campaigns = store.campaign_ids("running", mode="fleet")
    if not campaigns:
        return healed
    live = live_keys(broker)
    client = _redis(broker)
    for cid in campaigns:
        if store.finish_if_complete(cid):
            continue
        c = store.campaign(cid)
        if c.enqueued_at and utcnow() - aware(c.enqueued_at) < timedelta(seconds=grace_s):
            continue
        found = set(orphans(store, broker, cid, live))
        key = _SUSPECTS.format(cid)
        confirmed = found & {k.decode() for k in client.smembers(key)}
        client.delete(key)
        if found - confirmed:
            client.sadd(key, *(found - confirmed))
            client.expire(key, 3600)
        if confirmed:
            log.warning("campaign %s: %d pending items had no task; enqueued again", cid, len(confirmed))
            reenqueue(store, broker, cid, sorted(confirmed))
            healed[cid] = len(confirmed)
    return healed

