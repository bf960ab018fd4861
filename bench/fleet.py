"""Fleet: worker scaling, planning and enqueueing a million items, and `probe status` on them.

    .venv/bin/python bench/fleet.py [--quick] [--write-results]

1. Fleet throughput: one `probe worker --concurrency P` (P = 1, 2, 4 prefork pool processes; each task keeps
   --task-concurrency calls in flight) against the test model server at --latency, through a private
   redis-server and a store (a private PostgreSQL cluster when PostgreSQL is installed, else SQLite).
   Ideal = P x task concurrency / latency. Measured from the first to the last stored response
   (responses.created_at), after a warm-up campaign on the same worker; end to end (enqueue to nothing pending)
   beside it. CPU of the worker tree, the model server, the database and Redis is read from /proc.
2. Planning plus enqueueing a 1,000,000-item campaign (sim/uniform, acs2019, 40,000 samples): campaigns.create
   (plan streamed into the store in one transaction) + dispatch.enqueue of the keys streamed with
   store.iter_keys to the real Redis, in a subprocess; a 100,000-item campaign in another subprocess beside it:
   peak RSS should be about the same (VmHWM: an exec'd child's ru_maxrss starts at its parent's RSS on Linux).
   SQLite, and PostgreSQL when installed. Aim: under 60 s. CPU seconds beside wall times (a shared machine).
3. `probe status ID --format json` on the 1M campaign: the real CLI's wall time and CPU (subprocess), the CLI's
   imports alone, and probe.status.status in-process (first call and warm), with each store query timed.
   Aim: under 1 s.

--quick: 500-item fleet campaigns, 40,000- and 4,000-item plans.

Every server and temp dir it starts is stopped by PID / removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
for _k in ("PROBE_DB", "PROBE_BROKER"):
    os.environ.pop(_k, None)

from throughput import tree_cpu, write_section  # noqa: E402

PROBE = str(Path(sys.executable).with_name("probe"))
QUESTIONS = 25  # acs2019


# ------------------------------------------------------------------------------------------------ servers

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(workdir: Path) -> tuple[str, subprocess.Popen]:
    import redis

    exe = shutil.which("redis-server")
    if not exe:
        sys.exit("redis-server is not installed (apt-get install -y redis-server)")
    for _ in range(3):
        port = free_port()
        proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                 "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.time() + 10
        while time.time() < deadline and proc.poll() is None:
            try:
                if redis.Redis.from_url(url).ping():
                    return url, proc
            except redis.ConnectionError:
                time.sleep(0.05)
        stop_proc(proc)
    sys.exit("redis-server did not start")


def start_pg():
    """A private PostgreSQL cluster (tests/conftest.py's code), or None when PostgreSQL is not installed."""
    from tests.conftest import PgServer, PrivateCluster, find_pg_bin

    bindir = find_pg_bin()
    if bindir is None:
        return None, None
    cluster = PrivateCluster(bindir)
    try:
        cluster.start()
        server = PgServer(cluster.url, cluster.pg_ctl)
        server.wait_ready(timeout=60)
    except Exception:
        cluster.destroy()
        raise
    return cluster, server


def pg_database(server, name: str) -> str:
    with server.connect(autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.url_for(name)


def stop_proc(proc: subprocess.Popen, group: bool = False, timeout: float = 30) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM) if group else proc.terminate()
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL) if group else proc.kill()
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def flush_redis(url: str) -> None:
    import redis

    c = redis.Redis.from_url(url)
    c.flushdb()
    c.close()


def proc_cpu(pid: int) -> float:
    """CPU seconds of a server process and its descendants, including children it has already reaped (cutime):
    PostgreSQL's backends come and go with connections."""
    clk = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, tuple[float, float]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                f = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(d.name)] = int(f[1])
            times[int(d.name)] = ((int(f[11]) + int(f[12])) / clk, (int(f[13]) + int(f[14])) / clk)
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        own, reaped = times.get(p, (0.0, 0.0))
        total += own + reaped
        todo += [c for c, pp in parents.items() if pp == p]
    return total


def pg_pids(cluster) -> int | None:
    try:
        return int((cluster.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# ------------------------------------------------------------------------------------ 1. fleet throughput

def make_campaign(store, spec_kw: dict, samples: int):
    from probe import campaigns
    from probe.spec import CampaignSpec, ModelSpec

    spec = CampaignSpec(models=[ModelSpec(**spec_kw["model"])], surveys=["acs2019"], samples=samples, seed=1,
                        answer_mode="logprobs", concurrency=spec_kw["concurrency"])
    cid, n = campaigns.create(store, spec, "fleet")
    store.set_state(cid, "running", None, mode="fleet")
    return cid, n, spec


def run_campaign(store, broker: str, cid: str, conc: int, timeout: float) -> float:
    """Enqueue all keys (as `probe run --broker` does), wait until nothing is pending; end-to-end seconds."""
    from probe import dispatch

    t0 = time.perf_counter()
    dispatch.enqueue(broker, cid, store.iter_keys(cid, "pending"), conc, store=store)
    deadline = time.time() + timeout
    while store.progress(cid).get("pending", 0):
        if time.time() > deadline:
            raise RuntimeError(f"campaign {cid} not finished after {timeout:.0f} s: {dict(store.progress(cid))}")
        time.sleep(0.05)
    return time.perf_counter() - t0


def stored_times(store, cid: str) -> list[datetime]:
    from sqlalchemy import select

    from probe.store import Item, Response

    with store.session() as s:
        ts = list(s.scalars(select(Response.created_at).join(Item, Item.key == Response.key)
                            .where(Item.campaign_id == cid)))
    return sorted(t if t.tzinfo else t.replace(tzinfo=timezone.utc) for t in ts)


def bench_fleet_one(procs: int, server_url: str, server_proc, broker: str, db: str, items: int, conc: int,
                    latency: float, tmp: Path, others: list[int]) -> dict:
    from probe import dispatch
    from probe.store import Store

    store = Store(db)
    spec_kw = {"model": {"id": "openai/test", "api_base": f"{server_url}/v1"}, "concurrency": conc}
    log = open(tmp / f"worker-{procs}.log", "ab")
    worker = subprocess.Popen([PROBE, "worker", "--broker", broker, "--db", db, "--concurrency", str(procs),
                               "--loglevel", "WARNING"], stdout=log, stderr=log, start_new_session=True)
    log.close()
    try:
        deadline = time.time() + 120
        while dispatch.workers_alive(broker) == 0:
            if worker.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"worker did not start: {(tmp / f'worker-{procs}.log').read_text()[-2000:]}")
            time.sleep(0.5)
        # warm-up: every pool process imports, opens its loop, HTTP and database pools before timing
        cid, n, _ = make_campaign(store, spec_kw, samples=max(4, (4 * conc * procs * 2) // QUESTIONS))
        run_campaign(store, broker, cid, conc, timeout=300)
        cid, n, _ = make_campaign(store, spec_kw, samples=max(1, items // QUESTIONS))
        load0 = os.getloadavg()[0]
        cpu0 = {"worker": tree_cpu(worker.pid), "server": tree_cpu(server_proc.pid),
                "db+redis": sum(proc_cpu(p) for p in others)}
        e2e = run_campaign(store, broker, cid, conc, timeout=max(600, 20 * n * latency / (procs * conc)))
        cpu = {"worker": tree_cpu(worker.pid) - cpu0["worker"], "server": tree_cpu(server_proc.pid) - cpu0["server"],
               "db+redis": sum(proc_cpu(p) for p in others) - cpu0["db+redis"]}
        load1 = os.getloadavg()[0]
        p = store.progress(cid)
        if p.get("done") != n:
            raise RuntimeError(f"campaign {cid}: {dict(p)} of {n}")
        ts = stored_times(store, cid)
        span = (ts[-1] - ts[0]).total_seconds()
        after_first = sum(t > ts[0] for t in ts)
        rate = after_first / span if span > 0 else float("nan")
        ideal = procs * conc / latency
        cpu_ms = cpu["worker"] / n * 1000
        return {"demand_cores": ideal * cpu_ms / 1000, "processes": procs, "items": n, "rate": rate, "e2e_rate": n / e2e, "ideal": ideal,
                "ratio": rate / ideal, "span_s": span, "e2e_s": e2e,
                "cpu_ms_item": cpu_ms, "cores_used": {k: v / e2e for k, v in cpu.items()},
                "load": (load0, load1)}
    finally:
        stop_proc(worker, group=True)
        store.engine.dispose()


# ------------------------------------------------------------------------------ 2. plan + enqueue, child

def plan_child(samples: int, db: str, broker: str) -> None:
    """In its own process: create a sim/uniform campaign of 25 x samples items and enqueue all its keys."""
    t_import = time.perf_counter()
    from probe import campaigns, dispatch
    from probe.spec import CampaignSpec, ModelSpec
    from probe.store import Store

    from probe import models  # noqa: F401  (litellm: ~2-5 s, once per process; timed apart from the plan)

    t0 = time.perf_counter()
    store = Store(db)  # migrates the new database
    rss_ready = peak_rss_mb()
    spec = CampaignSpec(models=[ModelSpec(id="sim/uniform")], surveys=["acs2019"], samples=samples)
    t1, c1 = time.perf_counter(), time.process_time()
    cid, n = campaigns.create(store, spec, "fleet")
    t2, c2 = time.perf_counter(), time.process_time()
    rss_created = peak_rss_mb()
    store.set_state(cid, "running", None, mode="fleet")
    tasks = dispatch.enqueue(broker, cid, store.iter_keys(cid, "pending"), spec.concurrency, store=store)
    t3, c3 = time.perf_counter(), time.process_time()
    print(json.dumps({"cid": cid, "items": n, "tasks": tasks, "open_s": t1 - t0, "create_s": t2 - t1,
                      "enqueue_s": t3 - t2, "import_s": t0 - t_import, "create_cpu_s": c2 - c1,
                      "enqueue_cpu_s": c3 - c2,
                      "rss_ready_mb": rss_ready, "rss_created_mb": rss_created, "peak_rss_mb": peak_rss_mb(),
                      "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM, its own address space's high-water mark. ru_maxrss(RUSAGE_SELF) is the
    same figure for a process that was not exec'd from another, but Linux carries a parent's RSS at fork into a
    child's ru_maxrss across exec, so in a subprocess of this (by then large) benchmark it would report ours."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_plan(store_name: str, db: str, broker: str, samples: int, servers: list[int]) -> dict:
    cpu0 = sum(proc_cpu(p) for p in servers)
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--plan-child", str(samples),
                          "--db", db, "--broker", broker], capture_output=True, text=True, timeout=3600)
    if out.returncode:
        raise RuntimeError(f"plan child ({store_name}, {samples} samples) failed:\n{out.stderr[-3000:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["servers_cpu_s"] = sum(proc_cpu(p) for p in servers) - cpu0
    import redis

    c = redis.Redis.from_url(broker)
    r["queued"] = c.llen("probe")
    r["redis_mb"] = c.info("memory")["used_memory"] / 2**20
    c.close()
    flush_redis(broker)
    r["store"] = store_name
    return r


# ---------------------------------------------------------------------------------------- 3. probe status

def bench_status(store_name: str, db: str, cid: str, runs: int = 3) -> dict:
    from probe import status
    from probe.store import Store

    env = {k: v for k, v in os.environ.items() if k not in ("PROBE_DB", "PROBE_BROKER")}
    cli, cli_cpu = [], []
    for _ in range(runs):
        (wall, cpu), text = timed_child([PROBE, "status", cid, "--db", db, "--format", "json"], env)
        cli.append(wall)
        cli_cpu.append(cpu)
    doc = json.loads(text)
    imports, imports_cpu = [], []
    for _ in range(runs):  # what the command imports before it touches the store
        (wall, cpu), _ = timed_child([sys.executable, "-c", "import probe.cli.main, probe.status, probe.store"], env)
        imports.append(wall)
        imports_cpu.append(cpu)
    t = time.perf_counter()
    store = Store(db)
    open_s = time.perf_counter() - t
    calls, calls_cpu = [], []
    for _ in range(runs + 1):
        t, c = time.perf_counter(), time.process_time()
        status.status(store, cid)
        calls.append(time.perf_counter() - t)
        calls_cpu.append(time.process_time() - c)
    queries = {}
    for name, fn in (("campaign", lambda: store.campaign(cid)), ("progress_by", lambda: store.progress_by(cid)),
                     ("done_since", lambda: store.done_since(cid, status.THROUGHPUT_WINDOW_S)),
                     ("costs", lambda: store.costs([cid])), ("failures", lambda: store.failures(cid))):
        ts = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        queries[name] = min(ts)
    store.engine.dispose()
    return {"store": store_name, "cli_s": statistics.median(cli), "cli_all": cli, "cli_cpu_s": statistics.median(cli_cpu),
            "imports_s": statistics.median(imports), "imports_cpu_s": statistics.median(imports_cpu), "open_s": open_s,
            "first_s": calls[0], "warm_s": statistics.median(calls[1:]), "warm_cpu_s": statistics.median(calls_cpu[1:]),
            "queries": queries, "state": doc["state"], "n_items": doc["n_items"]}


def timed_child(cmd: list[str], env: dict) -> tuple[tuple[float, float], str]:
    """((wall s, CPU s of the process), its stdout); raises on a non-zero exit."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, st, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(st)
        out.seek(0)
        err.seek(0)
        if p.returncode:
            raise RuntimeError(f"{' '.join(cmd[:3])} failed ({p.returncode}): {err.read().decode()[-2000:]}")
        return (wall, ru.ru_utime + ru.ru_stime), out.read().decode()


# --------------------------------------------------------------------------------------------------- main

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    ap.add_argument("--items", type=int, help="items per fleet campaign (default 4000; quick 500)")
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--task-concurrency", type=int, default=16, help="calls in flight per pool process")
    ap.add_argument("--processes", default="1,2,4", help="worker pool sizes to measure")
    ap.add_argument("--plan-samples", type=int, help="samples of the big campaign (default 40000 = 1M items; quick 1600)")
    ap.add_argument("--small-samples", type=int, help="samples of the small campaign (default 4000 = 100k; quick 160)")
    ap.add_argument("--parts", default="fleet,plan,status")
    ap.add_argument("--store", choices=["auto", "sqlite", "postgresql"], default="auto", help="store of the fleet part")
    ap.add_argument("--write-results", action="store_true", help="replace the Fleet section of bench/RESULTS.md")
    ap.add_argument("--plan-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--broker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.plan_child:
        plan_child(a.plan_child, a.db, a.broker)
        return
    items = a.items or (500 if a.quick else 4000)
    big = a.plan_samples or (1600 if a.quick else 40_000)
    small = a.small_samples or (160 if a.quick else 4000)
    parts = set(a.parts.split(","))
    started = datetime.now(timezone.utc)
    load_start = os.getloadavg()
    ncpu = os.cpu_count() or 1

    tmp = Path(tempfile.mkdtemp(prefix="probe-bench-fleet-"))
    os.environ["PROBE_HOME"] = str(tmp / "home")
    redis_proc = server_cm = cluster = None
    fleet_store = "sqlite"
    fleet, plans, stats = [], [], []
    try:
        broker, redis_proc = start_redis(tmp)
        pg_server = None
        if a.store != "sqlite" or "plan" in parts:
            cluster, pg_server = start_pg()
            if pg_server is None:
                print("PostgreSQL is not installed: SQLite only", flush=True)
        if a.store == "postgresql" and pg_server is None:
            sys.exit("--store postgresql: PostgreSQL is not installed")
        fleet_store = "postgresql" if a.store != "sqlite" and pg_server is not None else "sqlite"

        if "fleet" in parts:
            from probe.testing.model_server import running_server

            server_cm = running_server(latency=a.latency)
            url, server_proc = server_cm.__enter__()
            others = [redis_proc.pid] + ([pg_pids(cluster)] if cluster and pg_pids(cluster) else [])
            print(f"fleet: one `probe worker --concurrency P` (P pool processes x {a.task_concurrency} calls in "
                  f"flight per task), {items} items per campaign, {a.latency * 1000:.0f} ms latency, store "
                  f"{fleet_store}, Redis private; {ncpu} CPUs", flush=True)
            for procs in map(int, a.processes.split(",")):
                db = (pg_database(pg_server, f"bench_fleet_{procs}") if fleet_store == "postgresql"
                      else f"sqlite:///{tmp / f'fleet-{procs}.db'}")
                r = bench_fleet_one(procs, url, server_proc, broker, db, items, a.task_concurrency, a.latency, tmp,
                                    others)
                flush_redis(broker)
                fleet.append(r)
                print("  " + fleet_line(r, a, ncpu), flush=True)
            server_cm.__exit__(None, None, None)
            server_cm = None

        if "plan" in parts or "status" in parts:
            stores = [("sqlite", lambda tag: f"sqlite:///{tmp / f'plan-{tag}.db'}")]
            if pg_server is not None:
                stores.append(("postgresql", lambda tag: pg_database(pg_server, f"bench_plan_{tag}")))
            servers = [redis_proc.pid] + ([pg_pids(cluster)] if cluster and pg_pids(cluster) else [])
            for name, mkdb in stores:
                pair = {}
                for tag, samples in (("small", small), ("big", big)):
                    db = mkdb(tag)
                    r = bench_plan(name, db, broker, samples, servers)
                    r["db"] = db
                    pair[tag] = r
                    print(plan_line(r), flush=True)
                print("  " + memory_line(pair), flush=True)
                plans.append(pair)
                if "status" in parts:
                    st = bench_status(name, pair["big"]["db"], pair["big"]["cid"])
                    stats.append(st)
                    print(status_line(st), flush=True)
    finally:
        if server_cm is not None:
            server_cm.__exit__(None, None, None)
        if redis_proc is not None:
            stop_proc(redis_proc)
        if cluster is not None:
            cluster.destroy()
        shutil.rmtree(tmp, ignore_errors=True)

    load_end = os.getloadavg()
    table = results_table(fleet, plans, stats, a, ncpu)
    loads = (f"load average (1/5/15 min) {load_start[0]:.1f}/{load_start[1]:.1f}/{load_start[2]:.1f} at start, "
             f"{load_end[0]:.1f}/{load_end[1]:.1f}/{load_end[2]:.1f} at end, on {ncpu} CPUs")
    print()
    print(table)
    print(f"\n{loads}")
    if a.write_results:
        cmd = ("python bench/fleet.py " + " ".join(sys.argv[1:])).strip()
        store_desc = ("PostgreSQL (a private cluster as tests/conftest.py makes it: fsync off, synchronous_commit "
                      "off)" if fleet_store == "postgresql" else "SQLite (WAL)")
        section = (
            f"## Fleet (bench/fleet.py)\n\nMachine: {platform.node()} ({ncpu} CPUs, {cpu_model()}, "
            f"{platform.machine()}, Python {platform.python_version()}); date {started:%Y-%m-%d %H:%M} UTC; command "
            f"`{cmd}`; {loads} (the machine is shared with other agents: wall times are inflated by contention, "
            f"CPU seconds beside them are what the work itself cost).\n\n"
            f"Fleet: one `probe worker --concurrency P` (P prefork pool processes; each task holds "
            f"{4 * a.task_concurrency} items and keeps {a.task_concurrency} calls in flight), {items} survey items per "
            f"campaign after a warm-up campaign on the same worker, test model server at {a.latency * 1000:.0f} ms, "
            f"private Redis, store {store_desc if fleet else '-'}. Rate from the first to the last stored response "
            f"(responses.created_at); end to end = enqueue to nothing pending. Planning: `campaigns.create` + "
            f"`dispatch.enqueue` (keys streamed with store.iter_keys, the spec's default 32 per task -> 128 items per "
            f"message) in a fresh subprocess per size, sim/uniform x acs2019 (25 questions); litellm's import (~2-5 s) "
            f"is done before the timing. Peak RSS is the subprocess's VmHWM.\n\n{table}\n")
        write_section(ROOT / "bench" / "RESULTS.md", "## Fleet (bench/fleet.py)", section)


def cpu_bound(r: dict, ncpu: int) -> bool:
    """The pool's CPU demand at the ideal rate (ideal x measured worker CPU per item) is most of the machine."""
    return r["demand_cores"] > 0.8 * ncpu


def fleet_line(r: dict, a, ncpu: int) -> str:
    cu = r["cores_used"]
    note = (f"; CPU bound: at the ideal rate the pool alone needs {r['demand_cores']:.1f} cores of this machine's {ncpu}"
            if cpu_bound(r, ncpu) else "")
    return (f"{r['processes']} process(es): {r['rate']:6.1f} items/s  ideal {r['ideal']:4.0f} "
            f"(= {r['processes']} x {a.task_concurrency} / {a.latency:g} s)  {100 * r['ratio']:3.0f}%  (end to end "
            f"{r['e2e_rate']:.1f}/s; worker CPU {r['cpu_ms_item']:.2f} ms/item; cores busy: worker {cu['worker']:.2f}, "
            f"model server {cu['server']:.2f}, db+redis {cu['db+redis']:.2f}; load {r['load'][0]:.1f} -> "
            f"{r['load'][1]:.1f}{note})")


def plan_line(r: dict) -> str:
    total = r["create_s"] + r["enqueue_s"]
    return (f"plan+enqueue {r['store']:10s} {r['items']:>9,} items: {total:6.1f} s = create {r['create_s']:.1f} s "
            f"(CPU {r['create_cpu_s']:.1f}) + enqueue {r['enqueue_s']:.1f} s (CPU {r['enqueue_cpu_s']:.1f}); "
            f"{r['tasks']:,} messages, Redis {r['redis_mb']:.0f} MB; database+Redis servers CPU "
            f"{r['servers_cpu_s']:.1f} s; aim < 60 s for 1M; peak RSS {r['peak_rss_mb']:.0f} MB (after imports + "
            f"store open {r['rss_ready_mb']:.0f} MB, after create {r['rss_created_mb']:.0f} MB)")


def memory_line(pair: dict) -> str:
    b, s = pair["big"], pair["small"]
    return (f"memory {b['store']}: peak RSS {b['items']:,} items {b['peak_rss_mb']:.0f} MB vs {s['items']:,} items "
            f"{s['peak_rss_mb']:.0f} MB: {b['peak_rss_mb'] / s['peak_rss_mb']:.2f}x (aim ~1x, not "
            f"{b['items'] / s['items']:.0f}x)")


def status_line(st: dict) -> str:
    q = ", ".join(f"{k} {v * 1000:.0f}" for k, v in st["queries"].items())
    return (f"status {st['store']:10s} {st['n_items']:,} items: `probe status --format json` {st['cli_s']:.2f} s wall "
            f"(runs {', '.join(f'{x:.2f}' for x in st['cli_all'])}), {st['cli_cpu_s']:.2f} s CPU; aim < 1 s. Its "
            f"imports alone {st['imports_s']:.2f} s ({st['imports_cpu_s']:.2f} CPU); status.status in-process: "
            f"first {st['first_s']:.2f} s, warm {st['warm_s']:.2f} s ({st['warm_cpu_s']:.2f} CPU); queries ms: {q}")


def results_table(fleet: list[dict], plans: list[dict], stats: list[dict], a, ncpu: int) -> str:
    lines = ["| measure | figure | ideal / aim | ratio / met |", "|---|---|---|---|"]
    for r in fleet:
        cu = r["cores_used"]
        busy = (f"cores busy: worker {cu['worker']:.2f}, model server {cu['server']:.2f}, db+redis "
                f"{cu['db+redis']:.2f}; load {r['load'][0]:.1f} -> {r['load'][1]:.1f}")
        bound = (f"; **CPU bound**: the pool needs {r['demand_cores']:.1f} cores at the ideal rate, this machine has "
                 f"{ncpu}" if cpu_bound(r, ncpu) else "")
        lines.append(f"| fleet, {r['processes']} process{'es' if r['processes'] > 1 else ''} x {a.task_concurrency} "
                     f"in flight: items/s | {r['rate']:.1f} (end to end {r['e2e_rate']:.1f}; {r['cpu_ms_item']:.2f} ms "
                     f"worker CPU/item; {busy}) | {r['ideal']:.0f} (= {r['processes']} x {a.task_concurrency} / "
                     f"{a.latency:g} s){bound} | {100 * r['ratio']:.0f}% |")
    for pair in plans:
        for tag in ("small", "big"):
            r = pair[tag]
            total = r["create_s"] + r["enqueue_s"]
            big = r["items"] >= 1_000_000
            lines.append(f"| plan + enqueue {r['items']:,} items, {r['store']}: s | {total:.1f} (create "
                         f"{r['create_s']:.1f}, CPU {r['create_cpu_s']:.1f}; enqueue {r['enqueue_s']:.1f}, CPU "
                         f"{r['enqueue_cpu_s']:.1f}; {r['tasks']:,} messages; db+Redis servers CPU "
                         f"{r['servers_cpu_s']:.1f}) | {'< 60' if big else '(reference)'} | "
                         f"{('met' if total < 60 else 'not met') if big else '–'} |")
        b, s = pair["big"], pair["small"]
        lines.append(f"| peak RSS, {b['store']}: MB | {b['items']:,} items {b['peak_rss_mb']:.0f}; {s['items']:,} items "
                     f"{s['peak_rss_mb']:.0f} (peak after imports + store open: {b['rss_ready_mb']:.0f}, "
                     f"{s['rss_ready_mb']:.0f}; after create: {b['rss_created_mb']:.0f}, {s['rss_created_mb']:.0f}) | about 1x, not {b['items'] / s['items']:.0f}x | "
                     f"{b['peak_rss_mb'] / s['peak_rss_mb']:.2f}x |")
    for st in stats:
        q = ", ".join(f"{k} {v * 1000:.0f}" for k, v in st["queries"].items())
        lines.append(f"| `probe status ID --format json`, {st['n_items']:,} items, {st['store']}: s | {st['cli_s']:.2f} "
                     f"wall, {st['cli_cpu_s']:.2f} CPU (its imports alone {st['imports_s']:.2f} wall, "
                     f"{st['imports_cpu_s']:.2f} CPU) | < 1 | {'met' if st['cli_s'] < 1 else 'not met'} |")
        lines.append(f"| status.status in-process, {st['store']}: s | first {st['first_s']:.2f}, warm {st['warm_s']:.2f} "
                     f"({st['warm_cpu_s']:.2f} CPU; queries ms: {q}) | < 1 | "
                     f"{'met' if st['first_s'] < 1 else 'not met'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
