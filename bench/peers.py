"""Peers: probe against lm-evaluation-harness and a bare LiteLLM loop, end to end, as whole processes.

    .venv/bin/python bench/peers.py --install          # once: lm-eval[api] in a scratch venv outside the repo
    .venv/bin/python bench/peers.py [--questions 2000] [--reps 2] [--quick] [--before DIR] [--write-results]

--before DIR adds `probe run` from another checkout (`git archive COMMIT | tar -x -C DIR`) as probe-before, so the
figures before and after a change come from the same run. About 6 minutes with --reps 2 on an idle 2-core machine.

Against the test model server in its plain mode (`--plain`: a thread per connection, no keep-alive, like a simple
Flask server) with 200 ms latency, each client sends the same 2,000 four-option questions (the prompts probe renders
for a generated 100-question survey, 20 samples each), 32 in flight, and is timed as a whole process, imports and
start-up included:

- lm-eval: `lm_eval --model local-chat-completions` (num_concurrent=32, tokenized_requests off) on a generate_until
  task over a local JSONL dataset written to the scratch dir: one request per question, as probe makes;
- bare: a small script, its own process, running `litellm.acompletion` with probe's parameters, 32 in flight;
- probe embedded: `probe run --answer-mode auto` (its default: this process and a fork, 16 in flight each);
- probe fleet: `probe run --broker` with one `probe worker --concurrency 2` already up over a real Redis (16 in
  flight per task, two pool processes: 32). Its CPU is the `probe run` process plus the worker's whole process tree
  over the run (the worker imported LiteLLM once, before the run: paid once per machine, not per campaign).

Requests/s = 2,000 / the process's wall time; CPU ms per request = the process tree's user+sys CPU / 2,000 (from
wait4, which counts the children it reaped: embedded's fork). The order of the clients rotates between repetitions.
Aims: probe >= 1.3x lm-eval's requests/s in both modes; probe's CPU per request <= 1.1x the bare loop's.
The model server's own CPU is not counted for anyone. lm-eval is never a project dependency.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
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
for _k in ("PROBE_DB", "PROBE_BROKER"):
    os.environ.pop(_k, None)

from fleet import start_redis, stop_proc  # noqa: E402
from throughput import tree_cpu, write_section  # noqa: E402

from probe.testing.model_server import running_server  # noqa: E402

PROBE = str(Path(sys.executable).with_name("probe"))
LM_EVAL_VERSION = "0.4.13"
VENV = Path(os.environ.get("PROBE_BENCH_CACHE", Path.home() / ".cache" / "probe-bench")) / "lm-eval-venv"
SAMPLES = 20  # per question of the generated survey: questions / SAMPLES questions


def install() -> None:
    """lm-eval with its api extra, pinned, in a venv outside the repo (never a project dependency)."""
    if not (VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", f"lm-eval[api]=={LM_EVAL_VERSION}"], check=True)
    print(f"lm-eval {LM_EVAL_VERSION} installed in {VENV}")


# ---------------------------------------------------------------------------------------- the questions

def write_inputs(tmp: Path, n: int) -> dict:
    """A 4-option survey of n / SAMPLES questions (probe runs it with SAMPLES samples), and the same n prompts, as
    probe renders them, for lm-eval (a JSONL dataset and a task YAML) and the bare loop."""
    import yaml

    from probe import questionnaires, render

    nq = max(1, n // SAMPLES)
    survey = {"name": "peers", "title": "bench/peers.py", "questions": [
        {"id": f"Q{i:04d}", "text": f"Which of these best describes item {i} of this survey?",
         "options": [{"code": c, "text": t} for c, t in enumerate(("Never", "Sometimes", "Often", "Always"), 1)]}
        for i in range(nq)]}
    (tmp / "peers.yaml").write_text(yaml.safe_dump(survey, sort_keys=False))
    q = questionnaires.load_file(tmp / "peers.yaml")
    rng = random.Random(0)
    docs = []
    for s in range(SAMPLES):
        for question in q.questions:
            shown = [o.code for o in question.options]
            rng.shuffle(shown)
            msgs = render.survey_messages(question, shown)
            docs.append({"system": msgs[0]["content"], "prompt": msgs[-1]["content"], "seed": len(docs)})
    docs = docs[:n]
    (tmp / "data").mkdir(exist_ok=True)
    with open(tmp / "data" / "test.jsonl", "w") as f:
        f.writelines(json.dumps(d) + "\n" for d in docs)
    (tmp / "tasks").mkdir(exist_ok=True)
    (tmp / "tasks" / "probe_peers.yaml").write_text(f"""task: probe_peers
dataset_path: json
dataset_kwargs:
  data_files:
    test: {tmp / 'data' / 'test.jsonl'}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "A"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 8
  do_sample: false
metric_list:
  - metric: exact_match
""")
    (tmp / "bare.py").write_text(BARE)
    return {"system": docs[0]["system"], "n": len(docs)}


# The bare loop: LiteLLM alone, probe's request (auto mode: 8 tokens, top-20 logprobs, a seed), 32 in flight.
BARE = '''import asyncio, json, os, sys
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm
url, path, conc = sys.argv[1], sys.argv[2], int(sys.argv[3])
docs = [json.loads(line) for line in open(path)]
async def main():
    gate = asyncio.Semaphore(conc)
    async def one(d):
        async with gate:
            r = await litellm.acompletion(model="openai/test", api_base=url, api_key="not-needed", timeout=60,
                                          messages=[{"role": "system", "content": d["system"]},
                                                    {"role": "user", "content": d["prompt"]}],
                                          max_tokens=8, logprobs=True, top_logprobs=20, seed=d["seed"],
                                          temperature=1.0, num_retries=3)
            return r.choices[0].message.content
    out = await asyncio.gather(*(one(d) for d in docs))
    assert all(out), "an empty answer"
asyncio.run(main())
'''


# ---------------------------------------------------------------------------------------- the clients

def timed(cmd: list[str], env: dict, extra_cpu=None) -> dict:
    """Wall and CPU (the process and the children it reaped) of one whole process; extra_cpu() adds a tree's."""
    e0 = extra_cpu() if extra_cpu else 0.0
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = p.communicate()
    wall = time.perf_counter() - t0
    if p.returncode:
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}): {err.decode(errors='replace')[-2000:]}")
    return {"wall_s": wall, "extra_cpu_s": (extra_cpu() - e0) if extra_cpu else 0.0}


def served(url: str) -> int:
    import urllib.request

    with urllib.request.urlopen(f"{url}/stats", timeout=10) as r:
        return json.loads(r.read())["ok"]


def run_one(name: str, cmd: list[str], env: dict, n: int, url: str, extra_cpu=None) -> dict:
    import resource

    s0, c0 = served(url), resource.getrusage(resource.RUSAGE_CHILDREN)
    r = timed(cmd, env, extra_cpu)
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if served(url) - s0 < n:  # every question reached the server (none answered from probe's response cache)
        raise RuntimeError(f"{name}: the server answered {served(url) - s0} requests, not {n}")
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime) + r["extra_cpu_s"]
    out = {"client": name, "rps": n / r["wall_s"], "cpu_ms": cpu / n * 1000, "wall_s": r["wall_s"], "cpu_s": cpu,
           "cores": cpu / r["wall_s"]}
    print(f"  {name:15s} {out['rps']:6.1f} req/s  {out['cpu_ms']:6.2f} ms CPU/req  wall {r['wall_s']:5.1f} s  "
          f"{out['cores']:.2f} cores", flush=True)
    return out


def probe_cmd(tmp: Path, url: str, db: str, conc: int, mode: str, broker: str | None = None,
              samples: int = SAMPLES, seed: int = 0) -> list[str]:
    """A campaign seed per run: the fleet's runs share a store, whose response cache would answer a repeat."""
    cmd = [PROBE, "run", "--model", "openai/test", "--api-base", url, "--survey", str(tmp / "peers.yaml"),
           "--samples", str(samples), "--seed", str(seed), "--answer-mode", mode, "--concurrency", str(conc),
           "--db", db]
    return cmd + (["--broker", broker] if broker else [])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--install", action="store_true", help=f"install lm-eval[api]=={LM_EVAL_VERSION} in {VENV}")
    ap.add_argument("--questions", type=int, default=2000)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--reps", type=int, default=2, help="repetitions, the clients' order rotated each time")
    ap.add_argument("--clients", default="lm-eval,bare,probe,probe-fleet")
    ap.add_argument("--answer-mode", default="auto")
    ap.add_argument("--before", metavar="DIR", help="also run `probe run` embedded from another checkout of probe "
                    "(e.g. `git archive COMMIT | tar -x -C DIR`), as client probe-before: before/after in one run")
    ap.add_argument("--quick", action="store_true", help="400 questions, one repetition")
    ap.add_argument("--write-results", action="store_true", help="replace the Peers section of bench/RESULTS.md")
    a = ap.parse_args()
    if a.install:
        install()
        return
    if a.quick:
        a.questions, a.reps = 400, 1
    clients = a.clients.split(",") + (["probe-before"] if a.before else [])
    lm_eval = VENV / "bin" / "lm_eval"
    if "lm-eval" in clients and not lm_eval.exists():
        sys.exit(f"lm-eval is not installed: run `python bench/peers.py --install` first (or --clients without it)")
    load0, date = os.getloadavg(), datetime.now(timezone.utc)
    results: dict[str, list[dict]] = {c: [] for c in clients}
    with tempfile.TemporaryDirectory() as tmp_, running_server(latency=a.latency, plain=True) as (url, _):
        tmp = Path(tmp_)
        info = write_inputs(tmp, a.questions)
        n = info["n"]
        env = dict(os.environ, PROBE_HOME=str(tmp / "home"), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1",
                   TOKENIZERS_PARALLELISM="false", OPENAI_API_KEY="not-needed")
        redis_url = redis_proc = worker = None
        if "probe-fleet" in clients:
            redis_url, redis_proc = start_redis(tmp)
            worker = subprocess.Popen([PROBE, "worker", "--broker", redis_url, "--db", f"sqlite:///{tmp / 'fleet.db'}",
                                       "--concurrency", "2", "--loglevel", "WARNING"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            if worker:  # up and warm (imports, pools) before the first timed run: a fleet's workers are long-lived
                subprocess.run(probe_cmd(tmp, url + "/v1", f"sqlite:///{tmp / 'fleet.db'}", a.concurrency // 2,
                                         a.answer_mode, redis_url, samples=1, seed=10_000), env=env, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
            cmds = {
                "lm-eval": [str(lm_eval), "--model", "local-chat-completions", "--model_args",
                            f"model=test,base_url={url}/v1/chat/completions,num_concurrent={a.concurrency},"
                            "max_retries=3,tokenized_requests=False,timeout=60",
                            "--tasks", "probe_peers", "--include_path", str(tmp / "tasks"), "--apply_chat_template",
                            "--system_instruction", info["system"], "--batch_size", "1"],
                "bare": [sys.executable, str(tmp / "bare.py"), f"{url}/v1", str(tmp / "data" / "test.jsonl"),
                         str(a.concurrency)],
            }
            for rep in range(a.reps):
                order = clients[rep % len(clients):] + clients[:rep % len(clients)]
                print(f"repetition {rep + 1} of {a.reps}: {', '.join(order)}", flush=True)
                for c in order:
                    if c in ("probe", "probe-before"):
                        cmd = probe_cmd(tmp, url + "/v1", f"sqlite:///{tmp / f'{c}{rep}.db'}", a.concurrency,
                                        a.answer_mode, seed=rep)
                        env_c = dict(env, PYTHONPATH=str(Path(a.before).resolve())) if c == "probe-before" else env
                        results[c].append(run_one(c, cmd, env_c, n, url))
                    elif c == "probe-fleet":
                        cmd = probe_cmd(tmp, url + "/v1", f"sqlite:///{tmp / 'fleet.db'}", a.concurrency // 2,
                                        a.answer_mode, redis_url, seed=rep)
                        results[c].append(run_one(c, cmd, env, n, url, extra_cpu=lambda: tree_cpu(worker.pid)))
                    else:
                        results[c].append(run_one(c, cmds[c], env, n, url))
        finally:
            if worker:
                stop_proc(worker, group=True)
            if redis_proc:
                stop_proc(redis_proc)
    load1 = os.getloadavg()
    table = results_table(results)
    print()
    print(table)
    cmd = "python bench/peers.py " + " ".join(sys.argv[1:])
    print(f"\n{platform.node()} ({os.cpu_count()} cores), {date:%Y-%m-%d %H:%M} UTC, load average "
          f"{load0[0]:.2f} at start, {load1[0]:.2f} at end; command `{cmd.strip()}`")
    if a.write_results:
        section = (f"## Peers (bench/peers.py)\n\nMachine: {platform.node()} ({os.cpu_count()} cores, "
                   f"{platform.machine()}, Python {platform.python_version()}); date {date:%Y-%m-%d %H:%M} UTC; "
                   f"load average {load0[0]:.2f} at start, {load1[0]:.2f} at end; command `{cmd.strip()}`. "
                   f"{n} four-option questions, test server `--plain` (thread per connection, no keep-alive), "
                   f"{a.latency * 1000:.0f} ms latency, {a.concurrency} in flight, answer mode {a.answer_mode}; "
                   f"each client a whole process (imports included), {a.reps} repetition(s) in rotating order "
                   f"(figures: median, then each run). lm-eval {LM_EVAL_VERSION} local-chat-completions. Fleet: "
                   f"one warm `probe worker --concurrency 2` (16 in flight per task), CPU = `probe run` + the "
                   f"worker's process tree.\n\n{table}\n\nAims: probe >= 1.3x lm-eval requests/s in both modes; "
                   f"probe CPU/request <= 1.1x the bare LiteLLM loop's.\n")
        write_section(ROOT / "bench" / "RESULTS.md", "## Peers (bench/peers.py)", section)


def results_table(results: dict[str, list[dict]]) -> str:
    med = {c: {k: statistics.median(r[k] for r in rs) for k in ("rps", "cpu_ms", "cores")}
           for c, rs in results.items() if rs}
    lm, bare = med.get("lm-eval"), med.get("bare")
    lines = ["| client | requests/s | / lm-eval | CPU ms/request | / bare LiteLLM | cores used | runs (req/s) |",
             "|---|---|---|---|---|---|---|"]
    for c, m in med.items():
        vs_lm = f"{m['rps'] / lm['rps']:.2f}x" if lm else "–"
        vs_bare = f"{m['cpu_ms'] / bare['cpu_ms']:.2f}x" if bare else "–"
        runs = ", ".join(f"{r['rps']:.1f}" for r in results[c])
        lines.append(f"| {c} | {m['rps']:.1f} | {vs_lm} | {m['cpu_ms']:.2f} | {vs_bare} | {m['cores']:.2f} | {runs} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
