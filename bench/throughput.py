"""Throughput: survey items per second and CPU per item, embedded and fleet, against the test model server.

    .venv/bin/python bench/throughput.py [--items 2000] [--latency 0.2] [--concurrency 32] [--write-results]

The ideal is concurrency / latency items per second (160/s at 32 x 200 ms). A bare `litellm.acompletion` loop
with the same request runs first, in the same process, so the pipeline's CPU per item sits beside LiteLLM's own.
Embedded runs in this process and one fork of it (2 x concurrency/2 in flight); the fleet is one `probe worker` (2 prefork processes x concurrency/2 in flight)
over a real Redis, whose CPU is read from /proc for the worker's whole process tree.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from probe.testing.model_server import running_server  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


def self_cpu() -> float:
    """This process and its waited-for children (the embedded mode's forked process)."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def tree_cpu(pid: int) -> float:
    """utime+stime of a process and all its live descendants, from /proc."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(d.name)] = int(fields[1])
            times[int(d.name)] = (int(fields[11]) + int(fields[12])) / CLK
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += times.get(p, 0.0)
        todo += [c for c, pp in parents.items() if pp == p]
    return total


def messages(i: int) -> list[dict]:
    return [{"role": "system", "content": "Please respond with a single letter."},
            {"role": "user", "content": f"Question: Item {i}?\nA. One\nB. Two\nC. Three\nAnswer:"}]


def bench_bare(url: str, n: int, conc: int) -> dict:
    import litellm

    async def main():
        sem = asyncio.Semaphore(conc)

        async def one(i):
            async with sem:
                await litellm.acompletion(model="openai/test", api_base=f"{url}/v1", api_key="not-needed",
                                          messages=messages(i), max_tokens=1, logprobs=True, top_logprobs=20,
                                          seed=i, temperature=1.0, timeout=60, num_retries=4)

        await asyncio.gather(*(one(i) for i in range(64)))  # warm the client pool
        c0, t0 = self_cpu(), time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - t0, self_cpu() - c0

    wall, cpu = asyncio.run(main())
    return {"items_per_s": n / wall, "cpu_ms_per_item": cpu / n * 1000, "wall_s": wall}


def make_campaign(db: str, url: str, n: int, conc: int):
    from probe import campaigns
    from probe.spec import CampaignSpec, ModelSpec
    from probe.store import Store

    samples = max(1, n // 25)
    store = Store(db)
    spec = CampaignSpec(models=[ModelSpec(id="openai/test", api_base=f"{url}/v1")], surveys=["acs2019"],
                        samples=samples, seed=1, answer_mode="logprobs", concurrency=conc)
    cid, total = campaigns.create(store, spec, "bench")
    return store, cid, total


def bench_embedded(url: str, n: int, conc: int, tmp: Path) -> dict:
    from probe import dispatch

    store, cid, total = make_campaign(f"sqlite:///{tmp / 'embedded.db'}", url, n, conc)
    c0, t0 = self_cpu(), time.perf_counter()
    dispatch.run_embedded(store, cid, conc, processes=2)
    wall, cpu = time.perf_counter() - t0, self_cpu() - c0
    p = store.progress(cid)
    assert p.get("done") == total, p
    return {"items_per_s": total / wall, "cpu_ms_per_item": cpu / total * 1000, "wall_s": wall, "items": total}


def start_redis() -> tuple[str, subprocess.Popen | None]:
    if url := os.environ.get("PROBE_TEST_REDIS"):
        return url, None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    return f"redis://127.0.0.1:{port}/0", proc


def bench_fleet(url: str, n: int, conc: int, tmp: Path) -> dict:
    from probe import dispatch

    redis_url, redis_proc = start_redis()
    db = f"sqlite:///{tmp / 'fleet.db'}"
    probe = str(Path(sys.executable).with_name("probe"))
    worker = subprocess.Popen([probe, "worker", "--broker", redis_url, "--db", db, "--concurrency", "2",
                               "--loglevel", "WARNING"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.time() + 60
        while dispatch.workers_alive(redis_url) == 0:
            if time.time() > deadline:
                raise RuntimeError("worker did not start")
            time.sleep(0.5)
        # warm-up campaign: imports, connection pools and the store are ready before timing
        store, cid, total = make_campaign(db, url, 100, conc // 2)
        dispatch.enqueue(redis_url, cid, store.keys(cid), conc // 2)
        while store.progress(cid).get("pending", 0):
            time.sleep(0.1)
        store, cid, total = make_campaign(db, url, n, conc // 2)
        keys = store.keys(cid)
        c0, t0 = tree_cpu(worker.pid) + self_cpu(), time.perf_counter()
        dispatch.enqueue(redis_url, cid, keys, conc // 2)
        while store.progress(cid).get("pending", 0):
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        cpu = tree_cpu(worker.pid) + self_cpu() - c0
        assert store.progress(cid).get("done") == total
        return {"items_per_s": total / wall, "cpu_ms_per_item": cpu / total * 1000, "wall_s": wall, "items": total}
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        if redis_proc:
            redis_proc.terminate()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--modes", default="bare,embedded,fleet")
    ap.add_argument("--write-results", action="store_true", help="replace the Throughput section of bench/RESULTS.md")
    a = ap.parse_args()
    ideal = a.concurrency / a.latency
    results = {}
    with running_server(latency=a.latency) as (url, _), tempfile.TemporaryDirectory() as tmp:
        os.environ["PROBE_HOME"] = tmp
        for mode in a.modes.split(","):
            fn = {"bare": lambda: bench_bare(url, a.items, a.concurrency),
                  "embedded": lambda: bench_embedded(url, a.items, a.concurrency, Path(tmp)),
                  "fleet": lambda: bench_fleet(url, a.items, a.concurrency, Path(tmp))}[mode]
            results[mode] = fn()
            print(f"{mode:9s} {results[mode]['items_per_s']:7.1f} items/s  {results[mode]['cpu_ms_per_item']:6.2f} ms CPU/item",
                  flush=True)
    bare_cpu = results.get("bare", {}).get("cpu_ms_per_item")
    lines = [f"| mode | items/s | ideal | % of ideal | CPU ms/item | bare LiteLLM CPU ms/call | ratio |", "|---|---|---|---|---|---|---|"]
    for mode, r in results.items():
        ratio = f"{r['cpu_ms_per_item'] / bare_cpu:.2f}x" if bare_cpu else "–"
        bare = f"{bare_cpu:.2f}" if bare_cpu else "–"
        lines.append(f"| {mode} | {r['items_per_s']:.1f} | {ideal:.0f} | {100 * r['items_per_s'] / ideal:.0f}% | "
                     f"{r['cpu_ms_per_item']:.2f} | {bare} | {ratio} |")
    table = "\n".join(lines)
    print()
    print(table)
    print("\naims: >= 80% of ideal in both modes; pipeline CPU <= 1.3x bare LiteLLM per call")
    if a.write_results:
        cmd = "python bench/throughput.py " + " ".join(sys.argv[1:])
        section = (f"## Throughput\n\nMachine: {platform.node()} ({os.cpu_count()} cores, {platform.machine()}, "
                   f"Python {platform.python_version()}); date {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
                   f"command `{cmd.strip()}`; {a.items} survey items, test server latency {a.latency * 1000:.0f} ms, "
                   f"concurrency {a.concurrency} (fleet: one worker, 2 processes x {a.concurrency // 2}).\n\n{table}\n")
        write_section(ROOT / "bench" / "RESULTS.md", "## Throughput", section)


def write_section(path: Path, heading: str, section: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmark results\n\nLatest run of each benchmark.\n"
    if heading in text:
        start = text.index(heading)
        nxt = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[nxt + 1:] if nxt != -1 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    main()
