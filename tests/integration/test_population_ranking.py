"""The paper's state analysis end to end: state baselines built from a PUMS-layout file, a respondent that
answers like one state and a uniform one, run through the pipeline; the report must rank the right population
first, with intervals that separate it from the runner-up."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from probe import analysis, baselines, campaigns, dispatch, pums, questionnaires, report, sim
from probe.spec import CampaignSpec, ModelSpec
from probe.store import Store

NAME = "rankt"
STATES = (6, 17, 36, 48)
N_ROWS = 400  # person records per state
# PUMS variable -> one raw value per option of its question, in form order (no census skip rule involved)
VALUES = {
    "SEX": [1, 2],
    "AGEP": [2, 10, 22, 35, 45, 57, 75],  # AGER bins (right-closed): <=4, 5-15, 16-30, 31-40, 41-50, 51-64, 65+
    "HISP": [2, 1],  # HISPR: 2..24 -> Yes (code 1), 1 -> No (code 2)
    "RAC1P": [1, 2, 3, 6, 7, 9],  # RAC1PR bins
    "NATIVITY": [1, 2],
    "HICOV": [1, 2],
    "DEAR": [1, 2],
    "DEYE": [1, 2],
}
COVERED = ["SEX", "AGER", "HISPR", "RAC1PR", "NATIVITY", "HICOV", "DEAR", "DEYE"]


def state_shares(k: int, s: int) -> np.ndarray:
    """Clearly different populations: a steep profile over the options, rotated by the state's index."""
    if k == 2:
        return np.array([(0.1, 0.35, 0.65, 0.9)[s], 1 - (0.1, 0.35, 0.65, 0.9)[s]])
    w = np.roll(0.45 ** np.arange(k), s)
    return w / w.sum()


def counts(k: int, s: int) -> list[int]:
    c = np.maximum(1, np.round(state_shares(k, s) * N_ROWS)).astype(int)
    c[np.argmax(c)] += N_ROWS - c.sum()
    return c.tolist()


@pytest.fixture(scope="module")
def state_tables(tmp_path_factory) -> list[str]:
    """rankt_06 ... rankt_48 under the session's PROBE_HOME, from a PUMS-layout CSV written here."""
    rng = np.random.default_rng(0)
    cols = ["RT", "SERIALNO", "ST", "PWGTP", *VALUES]
    lines = [",".join(cols)]
    serial = 0
    for i, st in enumerate(STATES):
        per_var = {}
        for var, vals in VALUES.items():
            column = np.repeat(vals, counts(len(vals), i))
            per_var[var] = rng.permutation(column)
        for r in range(N_ROWS):
            serial += 1
            lines.append(",".join(["P", str(serial), f"{st:02d}", "1", *(str(per_var[v][r]) for v in VALUES)]))
    path = tmp_path_factory.mktemp("pums") / "psam_p_rank.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tables = pums.build_from_pums([path], "acs2019", NAME, by_state=True)
    names = [t.name for t in tables[1:]]
    assert names == [f"{NAME}_{st:02d}" for st in STATES]
    return names


def run(tmp_path, models: list[str], samples: int, mode: str) -> tuple[str, str]:
    db = f"sqlite:///{tmp_path / f'{mode}.db'}"
    store = Store(db)
    spec = CampaignSpec(models=[ModelSpec(id=m) for m in models], surveys=["acs2019"], samples=samples, seed=5,
                        ordering="random", answer_mode=mode, concurrency=32, baselines=["uniform"])
    cid, _ = campaigns.create(store, spec, "embedded")
    dispatch.run_embedded(store, cid, spec.concurrency)
    return db, cid


def ours(ranking: list[dict], names: list[str]) -> list[dict]:
    return [r for r in ranking if r["population"] in names]  # other tests may have built other state tables


def test_tables_differ_clearly(state_tables):
    qn = questionnaires.load("acs2019")
    vecs = {n: [baselines.load(n, qn).vector_for(qn.question(v)) for v in COVERED] for n in state_tables}
    for a in state_tables:
        for b in state_tables:
            if a < b:
                tv = np.mean([0.5 * np.abs(x - y).sum() for x, y in zip(vecs[a], vecs[b])])
                assert tv > 0.2, (a, b, tv)


def test_logprobs_campaign_ranks_the_right_population(state_tables, tmp_path):
    target = state_tables[1]
    like_state, uniform = f"sim/prefer=baseline:{target}", "sim/uniform"
    db, cid = run(tmp_path, [like_state, uniform], 10, "logprobs")
    res = CliRunner().invoke(__import__("probe.cli.main", fromlist=["app"]).app,
                             ["report", cid, "--db", db, "--baseline", "uniform", "--states", "--format", "json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    others = sorted({q.id for q in questionnaires.load("acs2019").questions} - set(COVERED))
    for model in (like_state, uniform):
        a = rep["models"][model]["surveys"]["acs2019"]["analysis"]
        for n in state_tables:
            assert a["populations"][n]["n_questions"] == len(COVERED)
            assert sorted(a["populations"][n]["no_baseline"]) == others
    # the state-like respondent: its state first among the states, clearly
    a = rep["models"][like_state]["surveys"]["acs2019"]["analysis"]
    states = ours(a["ranking"], state_tables)
    assert states[0]["population"] == target
    assert states[0]["mean_kl"] == pytest.approx(0.0, abs=1e-9)
    assert states[0]["ci95"][1] < states[1]["ci95"][0]
    assert a["populations"][target]["closer_than_uniform"]["estimate"] == 1.0
    q = rep["models"][like_state]["surveys"]["acs2019"]["questions"]
    assert q["SEX"]["vs_baseline"][target]["kl"] == pytest.approx(0.0, abs=1e-9)
    assert q["CIT"]["vs_baseline"][target] is None  # not in the PUMS file: no baseline, never guessed
    # the uniform respondent: uniform first, every state further away with a separated interval
    a = rep["models"][uniform]["surveys"]["acs2019"]["analysis"]
    assert a["ranking"][0]["population"] == "uniform"
    best_state = ours(a["ranking"], state_tables)[0]
    assert a["populations"]["uniform"]["mean_kl"]["ci95"][1] < best_state["ci95"][0]
    for n in state_tables:
        assert a["populations"][n]["closer_than_uniform"]["estimate"] == 0.0

    # Markdown and the rich table: one KL column per non-state population only; every state in the ranking
    app = __import__("probe.cli.main", fromlist=["app"]).app
    md = CliRunner().invoke(app, ["report", cid, "--db", db, "--baseline", "uniform", "--states", "--format",
                                  "markdown"])
    assert md.exit_code == 0, md.output
    assert f"KL to {target}" not in md.stdout and "state populations" in md.stdout
    assert "#### Populations ranked by mean KL" in md.stdout and "| rank | population | questions |" in md.stdout
    assert f"| 1 | {target} | {len(COVERED)} | 0.000 [0.000, 0.000] | 1.000 [1.000, 1.000] |" in md.stdout
    assert "| 1 | uniform (reference) | 25 | 0.000" in md.stdout  # the uniform respondent's ranking
    tab = CliRunner().invoke(app, ["report", cid, "--db", db, "--baseline", "uniform", "--states"],
                             env={"COLUMNS": "250"})
    assert tab.exit_code == 0, tab.output
    assert f"KL {target}" not in tab.stdout and "populations ranked by mean KL" in tab.stdout
    assert all(n in tab.stdout for n in state_tables)


def test_text_answers_rank_with_separated_intervals(state_tables, tmp_path):
    """One sampled answer per item: real sampling noise, and the bootstrap intervals still separate the states."""
    target = state_tables[2]
    model = f"sim/prefer=baseline:{target}"
    db, cid = run(tmp_path, [model], 80, "text")  # 80: enough power for the gap once KL bias is corrected
    rep = report.build(Store(db), cid, ["uniform", *state_tables])
    a = rep["models"][model]["surveys"]["acs2019"]["analysis"]
    states = ours(a["ranking"], state_tables)
    assert states[0]["population"] == target
    assert states[0]["ci95"][1] < states[1]["ci95"][0], states[:2]
    gap = states[0]["gap_to_next"]
    assert gap["ci95"][0] > 0  # the paired difference to the runner-up excludes 0
    # the respondent answers with the target's own shares, so the true values are known: KL 0 to the target, and
    # closer to it than to uniform on every question (no state's shares are uniform); the intervals hold them
    assert states[0]["ci95"][0] == 0.0
    est = a["populations"][target]["closer_than_uniform"]
    assert est["estimate"] > 0.5 and est["ci95"][1] == 1.0
    assert "uniform" in [r["population"] for r in a["ranking"]]
    assert analysis.state_baselines(baselines.available())  # --states finds them in PROBE_HOME
