"""Synthetic survey campaigns of any size for bench/report.py: realistic rows written in bulk.

A template campaign (2 `sim/` models x the 25 acs2019 questions, one sample each) is run once with `probe run`; its
campaign row (spec, stored questionnaire) and per-question messages are copied into a campaign of `size` items:
2 models x 25 questions x size / 50 samples, a random answer order each, sim-like letter distributions (a fixed
preference per question and model, plus an A-bias for the first model), 10% read from text (a one-hot answer;
logprobs asked and dropped), 3% invalid (letter mass under 0.1, with its reason), 1% failed, 0.5% pending.
SQLite rows go in with sqlite3's executemany, PostgreSQL rows with COPY (psycopg), after `probe db upgrade`'s
schema is made by opening the store.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("sim/a_bias=0.2,prefer=seed:3", "sim/prefer=seed:11")
ITEM_COLS = ("key", "campaign_id", "model", "kind", "source", "item_id", "sample", "seed", "permutation", "status",
             "attempts")
RESP_COLS = ("key", "messages", "params", "raw_text", "top_logprobs", "finish_reason", "usage", "cost", "latency_s",
             "error", "error_kind", "attempts", "created_at", "reported_model", "cached")
LABEL_COLS = ("key", "labeller", "labeller_version", "label", "option_code", "option_probs", "letter_probs",
              "letter_mass", "reason", "created_at")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def template(cache: Path) -> dict:
    """The template campaign's rows (run once, kept in cache/template.db)."""
    db = cache / "template.db"
    if not db.exists():
        tmp = cache / "template.tmp.db"
        tmp.unlink(missing_ok=True)
        cmd = [sys.executable, "-c", "from probe.cli.main import main; main()", "run", *sum((["--model", m] for m in MODELS), []),
               "--survey", "acs2019", "--samples", "1", "--db", f"sqlite:///{tmp}"]
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)})
        tmp.rename(db)
    con = sqlite3.connect(db)
    camp = dict(zip([d[0] for d in con.execute("select * from campaigns").description],
                    con.execute("select * from campaigns").fetchone()))
    rows = con.execute("select i.model, i.item_id, r.messages, l.option_probs from items i join responses r "
                       "on r.key = i.key join labels l on l.key = i.key and l.labeller = 'answers'").fetchall()
    con.close()
    return {"campaign": camp, "questions": {(m, q): (msgs, sorted(int(c) for c in json.loads(p)))
                                            for m, q, msgs, p in rows}}


def rows(tpl: dict, size: int, cid: str, seed: int = 0):
    """(items, responses, labels) tuples in batches of about 50,000 items."""
    rng = random.Random(seed)
    samples = size // (len(MODELS) * 25)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    prefs = {}
    for (m, q), (_, codes) in tpl["questions"].items():
        w = [rng.expovariate(1.0) for _ in codes]
        prefs[(m, q)] = [x / sum(w) for x in w]
    items, resps, labels = [], [], []
    for s in range(samples):
        for (m, q), (msgs, codes) in tpl["questions"].items():
            k = len(codes)
            key = hashlib.md5(f"{cid}|{m}|{q}|{s}".encode()).hexdigest()
            perm = rng.sample(codes, k)
            u = rng.random()
            status = "pending" if u < 0.005 else "failed" if u < 0.015 else "done"
            item_seed = rng.getrandbits(31)
            items.append((key, cid, m, "survey", "acs2019", q, s, item_seed, json.dumps(perm), status,
                          0 if status == "pending" else 1))
            if status == "pending":
                continue
            text_mode = rng.random() < 0.10
            params = {"model": m, "api_base": None, "temperature": 1.0, "max_tokens": 1, "seed": item_seed,
                      "logprobs": True, "top_logprobs": 20, "sent": ["temperature", "max_tokens", "seed"],
                      "dropped": ["logprobs", "top_logprobs"] if text_mode else []}
            if status == "failed":
                resps.append((key, msgs, json.dumps(params), None, None, None, None, None, 0.5,
                              "RateLimitError: 429 Too Many Requests", "transient", 5, now, None, False))
                continue
            pref = prefs[(m, q)]
            a = 0.2 if m == MODELS[0] else 0.0
            pos = [(1 - a) * pref[codes.index(c)] + (a if i == 0 else 0.0) for i, c in enumerate(perm)]
            if text_mode:
                i = rng.choices(range(k), pos)[0]
                pos = [1.0 if j == i else 0.0 for j in range(k)]
                mass, version, raw, top = None, "text", LETTERS[i], None
            else:
                mass = 1.0 if rng.random() > 0.05 else rng.random() * 0.12
                version, raw = "logprobs", LETTERS[max(range(k), key=pos.__getitem__)]
                top = json.dumps([[LETTERS[i], -1.0 - i] for i in range(k)])
            resps.append((key, msgs, json.dumps(params), raw, top, "stop", '{"prompt_tokens": 40, '
                          '"completion_tokens": 1, "total_tokens": 41}', None, 0.05, None, None, 1, now, m, False))
            if mass is not None and mass < 0.1:
                labels.append((key, "answers", version, "invalid", None, None, None, mass,
                               f"letter mass {mass:.2g} < 0.1", now))
            else:
                opts = {str(c): pos[i] for i, c in enumerate(perm)}
                labels.append((key, "answers", version, "answered", perm[max(range(k), key=pos.__getitem__)],
                               json.dumps(opts), json.dumps(pos), mass, None, now))
        if len(items) >= 50_000:
            yield items, resps, labels
            items, resps, labels = [], [], []
    if items:
        yield items, resps, labels


def campaign_row(tpl: dict, size: int, cid: str) -> tuple[tuple, tuple]:
    c = dict(tpl["campaign"])
    spec = json.loads(c["spec"])
    spec["samples"] = size // (len(MODELS) * 25)
    c |= {"id": cid, "spec": json.dumps(spec), "n_items": size, "state": "done", "refusal_labeller": None}
    return tuple(c), tuple(c.values())


def generate(url: str, size: int, cache: Path) -> str:
    """Write the campaign `bench-SIZE` into the store at url (its schema made by Store); its id."""
    from sqlalchemy.engine import make_url

    from probe.store import Store

    tpl = template(cache)
    cid = f"bench-{size}"
    Store(url).engine.dispose()  # creates the schema (migrations)
    cols, vals = campaign_row(tpl, size, cid)
    tables = (("items", ITEM_COLS), ("responses", RESP_COLS), ("labels", LABEL_COLS))
    if url.startswith("sqlite"):
        con = sqlite3.connect(make_url(url).database)
        con.execute("PRAGMA journal_mode=OFF")  # one bulk transaction; the store switches to WAL
        con.execute("PRAGMA synchronous=OFF")
        con.execute(f"insert into campaigns ({','.join(cols)}) values ({','.join('?' * len(cols))})", vals)
        for batch in rows(tpl, size, cid):
            for (name, tcols), data in zip(tables, batch):
                con.executemany(f"insert into {name} ({','.join(tcols)}) values ({','.join('?' * len(tcols))})", data)
        con.commit()
        con.execute("ANALYZE")
        con.close()
        return cid
    import psycopg

    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as con:
        with con.cursor() as cur:
            cur.execute(f"insert into campaigns ({','.join(cols)}) values ({','.join(['%s'] * len(cols))})", vals)
            for batch in rows(tpl, size, cid):
                for (name, tcols), data in zip(tables, batch):
                    with cur.copy(f"COPY {name} ({','.join(tcols)}) FROM STDIN") as cp:
                        for r in data:
                            cp.write_row(r)
        con.commit()
        con.execute("ANALYZE")
    return cid
