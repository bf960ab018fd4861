"""A worker's connection to a Redis that went away closes with a connection error (which Celery rides out and
reconnects after), never AttributeError (which killed the worker: workers/kombu_fixes.py)."""

from __future__ import annotations

import pytest
from kombu import Connection

import workers.celery_app  # noqa: F401  (installs the guard, as in every worker)

pytestmark = pytest.mark.fleet


def test_closing_a_detached_channel_raises_no_attribute_error(redis_server):
    conn = Connection(redis_server.url)
    queue = conn.SimpleQueue("probe-kombu-guard")
    queue.put({"n": 1})
    message = queue.get(timeout=5)  # received, not acknowledged: closing the channel restores it
    assert message.payload == {"n": 1}
    redis_server.kill()
    conn.transport.client = None  # what kombu's close path met after the connection was lost
    conn.release()  # before the guard: AttributeError: 'NoneType' object has no attribute 'hostname'
    assert conn._transport is None and conn._default_channel is not None and conn._default_channel.closed
