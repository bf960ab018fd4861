"""Synthetic individuals end to end: `probe baselines build --keep-microdata`, `probe run --mode individuals` through
LiteLLM (the row-drawing simulator; the test server over HTTP with 500s), `probe report` with the signal and
discriminator tests, and "no microdata" when there is none to compare with."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from probe import individual_tests, microdata, questionnaires
from probe.individuals import answers_of
from probe.store import Item, Label, Response, Store
from probe.testing.model_server import running_server
from tests.conftest import run_probe
from tests.helpers import counts
from tests.unit.test_individual_tests import synthetic_pums

QN = questionnaires.load("acs2019")


def stored(db: str, cid: str) -> list[tuple[Item, Response, Label]]:
    store = Store(db)
    with store.session() as s:
        rows = s.execute(select(Item, Response, Label).join(Response, Response.key == Item.key)
                         .join(Label, Label.key == Item.key).where(Item.campaign_id == cid)
                         .order_by(Item.sample)).all()
    store.engine.dispose()
    return rows


def test_individuals_campaign_report_and_census(tmp_path):
    synthetic_pums(tmp_path / "psam_synth.csv", n=5000)
    r = run_probe("baselines", "build", "--pums-csv", str(tmp_path / "psam_synth.csv"), "--name", "synthcli",
                  "--keep-microdata")
    assert r.returncode == 0, r.stderr
    assert "kept microdata synthcli: 5,000 census records, 13 variables" in r.stdout.replace("\n", " ")
    md = microdata.load("synthcli")

    db = f"sqlite:///{tmp_path / 'i.db'}"
    r = run_probe("run", "--model", "sim/individuals=synthcli", "--mode", "individuals", "--samples", "60",
                  "--db", db, "--baseline", "synthcli", "--seed", "4")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip().splitlines()[-1]
    assert "60 items" in r.stderr
    c = counts(db, cid)
    assert c["items"] == c["done"] == c["responses"] == c["labels"] == 60 and c["max_saves_per_item"] == 1

    census_rows = {tuple(x) for x in individual_tests.apply_skip_rules(QN, md.codes.astype(int), md.variables)}
    for item, resp, lab in stored(db, cid):
        assert item.kind == "individual" and lab.labeller == "individual"
        # the conversation: system, then one question and its kept answer per turn, in form order
        assert len(resp.messages) == 1 + 2 * len(lab.turns)
        assert [t["q"] for t in lab.turns] == [q.id for q in QN.questions if q.id in {t["q"] for t in lab.turns}]
        for t, (u, a) in zip(lab.turns, zip(resp.messages[1::2], resp.messages[2::2])):
            assert QN.question(t["q"]).text in u["content"] and a["role"] == "assistant"
        # each individual is one census person, with the form's blanks
        answers = answers_of(QN, lab.turns)
        assert tuple(answers[v] or 0 for v in md.variables) in census_rows

    rep = json.loads(run_probe("report", cid, "--db", db, "--format", "json").stdout)
    s = rep["models"]["sim/individuals=synthcli"]["surveys"]["acs2019"]
    ind = s["individuals"]
    assert ind["microdata"] == "synthcli" and ind["census"]["records"] == 5000 and ind["n_individuals"] == 60
    assert set(ind["variables"]) == set(md.variables)
    assert set(ind["signal"]) == {"SEX", "HISPR", "SCHLR", "LANX", "ENG", "MAR", "WRK", "ESR", "WKL", "WKWN",
                                  "WKHPR", "PINCPR"}
    for e in ind["signal"].values():
        assert set(e["model"]) == set(e["census"]) == {"majority", "naive_bayes", "logistic", "boosting"}
    d = ind["discriminator"]
    assert 0 <= d["accuracy"] <= 1 and d["ci95"][0] <= d["accuracy"] <= d["ci95"][1] and len(d["per_seed"]) == 5
    # per-question marginals count only the individuals asked: ENG only those speaking another language at home
    n_lanx_yes = sum(1 for _, _, lab in stored(db, cid) if answers_of(QN, lab.turns)["LANX"] == 1)
    assert s["questions"]["ENG"]["n"] == n_lanx_yes < 60 and s["questions"]["SEX"]["n"] == 60
    assert "JWTRNS" in s["questions"]  # asked (unemployed people are, as the paper codes it); absent in the census

    md_text = run_probe("report", cid, "--db", db, "--format", "markdown").stdout
    assert "#### Synthetic individuals" in md_text and "census microdata synthcli (5,000 records)" in md_text
    html = run_probe("report", cid, "--db", db, "--format", "html").stdout
    assert html.count('data-figure="individuals"') == 1

    # compared with nothing that has microdata: said, not guessed
    rep = json.loads(run_probe("report", cid, "--db", db, "--format", "json", "--baseline", "uniform").stdout)
    ind = rep["models"]["sim/individuals=synthcli"]["surveys"]["acs2019"]["individuals"]
    assert ind["microdata"] is None and ind["signal"] is None and ind["note"].startswith("no microdata")
    r = run_probe("report", cid, "--db", db, "--microdata", "nosuch")
    assert r.returncode != 0 and "no microdata 'nosuch'" in r.stderr


def test_individuals_over_http_with_faults_are_whole_and_repeatable(tmp_path):
    """500s mid-conversation (LiteLLM retries them; what still fails restarts the individual in a later round):
    every individual is stored whole, once, and equal to the same campaign run without faults."""
    runs = {}
    for name, p500 in (("faults", 0.25), ("clean", 0.0)):
        db = f"sqlite:///{tmp_path / f'{name}.db'}"
        with running_server(latency=0.0, p500=p500, seed=5) as (url, _):
            r = run_probe("run", "--model", "openai/test", "--api-base", f"{url}/v1", "--mode", "individuals",
                          "--samples", "6", "--db", db, "--answer-mode", "logprobs", "--seed", "9",
                          env={"PROBE_ROUNDS": "8"})
            stats = __import__("httpx").get(f"{url}/stats").json()
        assert r.returncode == 0, r.stderr
        cid = r.stdout.strip().splitlines()[-1]
        c = counts(db, cid)
        assert c["items"] == c["done"] == c["responses"] == c["labels"] == 6
        runs[name] = [(it.sample, lab.turns, resp.messages) for it, resp, lab in stored(db, cid)]
        if p500:
            assert stats["status_500"] > 0, stats  # faults really happened
    assert runs["faults"] == runs["clean"]
    for _, turns, messages in runs["clean"]:
        assert len(turns) >= 9 and len(messages) == 1 + 2 * len(turns)  # 9 questions are always asked
        got = answers_of(QN, turns)
        asked = {t["q"] for t in turns}
        assert all((q.id in asked) == q.asked(got) for q in QN.questions)  # asked exactly where the rules allow
        assert all(t["mode"] == "logprobs" and t["code"] is not None for t in turns)


@pytest.mark.fleet
def test_individuals_on_the_fleet(tmp_path, redis_server):
    """The same work items through Celery: a `probe worker` stores each individual whole and once, and equal to the
    embedded run of the same campaign seed."""
    from tests.fleet import start_worker, stop

    db = f"sqlite:///{tmp_path / 'fleet.db'}"
    with running_server(latency=0.0, seed=5) as (url, _):
        worker = start_worker(redis_server.url, db, tmp_path / "worker.log")
        try:
            r = run_probe("run", "--model", "openai/test", "--api-base", f"{url}/v1", "--mode", "individuals",
                          "--samples", "6", "--db", db, "--answer-mode", "logprobs", "--seed", "9", "--timeout", "10",
                          "--broker", redis_server.url, timeout=240)
        finally:
            stop(worker)
        assert r.returncode == 0, r.stderr
        fleet_cid = r.stdout.strip().splitlines()[-1]
        r = run_probe("run", "--model", "openai/test", "--api-base", f"{url}/v1", "--mode", "individuals",
                      "--samples", "6", "--db", db, "--answer-mode", "logprobs", "--seed", "9")
        embedded_cid = r.stdout.strip().splitlines()[-1]
    c = counts(db, fleet_cid)
    assert c["items"] == c["done"] == c["responses"] == c["labels"] == 6 and c["max_saves_per_item"] == 1
    fleet = [(it.sample, lab.turns) for it, _, lab in stored(db, fleet_cid)]
    assert fleet == [(it.sample, lab.turns) for it, _, lab in stored(db, embedded_cid)]


def test_fleet_individuals_must_fit_the_visibility_timeout(tmp_path, redis_server):
    r = run_probe("run", "--model", "sim/uniform", "--mode", "individuals", "--samples", "2", "--db",
                  f"sqlite:///{tmp_path / 'v.db'}", "--broker", redis_server.url, "--no-wait")
    assert r.returncode != 0
    assert "25 questions in turn per individual x --timeout 60 s x 5 attempts" in r.stderr
