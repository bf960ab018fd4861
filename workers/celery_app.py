"""The fleet's Celery app. Settings chosen so a dead worker, a 429 storm or a crash loses nothing:
late acks, requeue when a worker process dies, one message prefetched at a time, and a fast restore of
unacked messages (kombu's defaults left redelivery ~100 s late after a kill -9)."""

from __future__ import annotations

import os

from celery import Celery

from workers import kombu_fixes

kombu_fixes.install()

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
# Above the longest task (`probe run` checks waves x timeout x attempts against it). It is also how long a
# task held by a worker that died hard (kill -9, lost machine) waits before another worker gets it; tests lower it.
VISIBILITY_TIMEOUT = int(os.environ.get("PROBE_VISIBILITY_TIMEOUT", "1800"))
# A task renews the lease on its items every LEASE_S / 3 s; the watchdog leaves leased items alone.
LEASE_S = float(os.environ.get("PROBE_LEASE_S", "30"))
# How often `probe beat` sends the watchdog (it re-enqueues a running campaign's items that no task holds).
WATCHDOG_S = float(os.environ.get("PROBE_WATCHDOG_S", "30"))
# How often `probe beat` sends the audit scheduler (it starts due audits' runs and finishes ended ones).
AUDIT_TICK_S = float(os.environ.get("PROBE_AUDIT_TICK_S", "15"))


def make_app(broker: str | None = None) -> Celery:
    app = Celery("probe", broker=broker or os.environ.get("PROBE_BROKER") or DEFAULT_BROKER)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,  # the store is the source of truth, never a result backend
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": VISIBILITY_TIMEOUT,
            "unacked_restore_interval": 2,
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=True,  # Flower and `probe status` see tasks
        task_send_sent_event=True,
        task_default_queue="probe",
        beat_schedule={
            "watchdog": {"task": "probe.watchdog", "schedule": WATCHDOG_S, "options": {"expires": WATCHDOG_S}},
            "audits": {"task": "probe.audits", "schedule": AUDIT_TICK_S, "options": {"expires": AUDIT_TICK_S}},
        },
    )
    app.conf.include = ["workers.tasks"]
    return app


app = make_app()
