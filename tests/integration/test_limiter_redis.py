"""The fleet's limiter in a real Redis, shared by several processes: its Lua scripts make the budget and the rpm
exact whoever asks. The processes are fresh interpreters (not forks of the test process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from probe.limits_redis import RedisLimiter

pytestmark = pytest.mark.fleet
ROOT = Path(__file__).resolve().parents[2]

RESERVER = """
import asyncio, sys
from probe.limits_redis import RedisLimiter
lim = RedisLimiter(sys.argv[1])
async def main():
    n = 0
    while await lim.reserve("shared", 0.01, 1.0, lambda: 0.0):
        n += 1
    return n
print(asyncio.run(main()))
"""

STARTER = """
import asyncio, json, sys, time
from probe.limits_redis import RedisLimiter
from probe.spec import ModelSpec
lim, spec = RedisLimiter(sys.argv[1]), ModelSpec(id="openai/unit", api_base=sys.argv[2], rpm=3000)
async def main():
    await asyncio.sleep(max(float(sys.argv[3]) - time.time(), 0))  # the three processes start together
    out = []
    async def one():
        p = await lim.acquire(spec, 10, 30)
        out.append(time.time())
        await lim.release(p, spec, 10)
    await asyncio.gather(*(one() for _ in range(10)))
    return out
print(json.dumps(asyncio.run(main())))
"""


def run_all(script: str, *args: str, n: int) -> list[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    procs = [subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(n)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        outs.append(out.strip().splitlines()[-1])
    return outs


def test_redis_budget_and_rpm_hold_across_processes(redis_server):
    """Four processes race for one budget; three share one rpm: Redis's scripts make both exact."""
    url = redis_server.url
    RedisLimiter(url).reset_budget("shared")
    got = [int(x) for x in run_all(RESERVER, url, n=4)]
    assert sum(got) == 100, got  # $1.00 in $0.01 reservations: exactly 100, whoever got them
    assert RedisLimiter(url).budget("shared")["reserved"] == pytest.approx(1.0)

    api_base = f"http://127.0.0.1:1/{time.monotonic_ns()}"
    t = sorted(x for out in run_all(STARTER, url, api_base, str(time.time() + 4), n=3) for x in json.loads(out))
    assert len(t) == 30
    # 3000 rpm (less the 3% margin): a start every 20.6 ms, whichever process made it; per process, three times
    # as many. Any ten consecutive starts span nine intervals (less a wake-up's jitter).
    spans = [t[i + 9] - t[i] for i in range(len(t) - 9)]
    assert min(spans) >= 9 * 0.0206 * 0.8, min(spans)
    assert t[-1] - t[0] >= 29 * 0.0206 * 0.95, t[-1] - t[0]
