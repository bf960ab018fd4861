"""Starting and stopping real fleet processes in tests: `probe worker` and `probe beat`, ended by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

from tests.conftest import PROBE

# Fast fault recovery for tests: redelivery after a hard kill, leases and the watchdog's period, in seconds.
FAST = {"PROBE_VISIBILITY_TIMEOUT": "15", "PROBE_LEASE_S": "6", "PROBE_WATCHDOG_S": "2"}


def start_worker(broker: str, db: str, log_path: Path, concurrency: int = 2, env: dict | None = None) -> subprocess.Popen:
    e = {**os.environ, **FAST, **(env or {})}  # env may override FAST's values
    log = open(log_path, "ab")
    cmd = [PROBE, "worker", "--broker", broker, "--db", db, "--concurrency", str(concurrency), "--loglevel", "WARNING"]
    return subprocess.Popen(cmd, env=e, stdout=log, stderr=log, start_new_session=True)


def start_beat(broker: str, log_path: Path, schedule: Path, env: dict | None = None) -> subprocess.Popen:
    e = {**os.environ, **FAST, **(env or {})}  # env may override FAST's values
    log = open(log_path, "ab")
    return subprocess.Popen([PROBE, "beat", "--broker", broker, "--loglevel", "WARNING", "--schedule", str(schedule)],
                            env=e, stdout=log, stderr=log, start_new_session=True)


def stop(proc: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 30) -> None:
    """Signal the process group the test started (the worker and its pool), by PID; wait for it."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def wait_until(cond: Callable[[], bool], timeout: float, poll: float = 0.3, what: str = "condition") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
