"""A guard for a kombu (5.7, Redis transport) failure that killed workers when Redis went away.

When the consumer loses Redis, Celery closes the connection and ignores connection errors while doing so. Closing
the default channel restores its unacknowledged messages, which needs a Redis client; if the channel's transport was
already detached from its connection (transport.client is None), kombu's `Channel._connparams` raised
AttributeError instead, Celery logged "Unrecoverable error" and the worker process exited, so a Redis restart left
no worker running. Raising the connection error kombu's close path expects lets Celery reconnect as it does for any
other broker loss; unacked messages of a Redis that kept its data are restored by the visibility timeout, and a Redis
that lost them is healed by the watchdog (probe.watchdog)."""

from __future__ import annotations


def install() -> None:
    from kombu.transport import redis as kredis

    orig = kredis.Channel._connparams
    if getattr(orig, "probe_guard", False):
        return

    def _connparams(self, asynchronous=False):
        transport = self.connection
        if transport is None or transport.client is None:
            raise kredis.redis.exceptions.ConnectionError("the broker connection was already closed")
        return orig(self, asynchronous)

    _connparams.probe_guard = True
    kredis.Channel._connparams = _connparams
