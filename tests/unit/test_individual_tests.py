"""probe.individual_tests with known answers: simulated respondents whose joint structure is known.

- sim/individuals=NAME answers as whole census rows: the discriminator cannot tell it from the census (0.5) and its
  signal-test accuracies are the census's own.
- sim/prefer=baseline:NAME answers each question independently with the census marginals: right marginals, no
  joint structure: signal-test accuracies at the majority-class rate, and a discriminator clearly above 0.5.

On the real 2019 PUMS excerpt in ../shared (9 of the 25 variables; skipped when absent) and on a larger synthetic
PUMS file the test writes, with a known joint structure over 13 variables and the form's skip rules, both built
with `build_from_pums(..., keep_microdata=True)`. Individuals are filled in by probe.individuals.fill with the
simulator's own respond() in-process (the LiteLLM path is tested in tests/integration/test_individuals_campaign.py),
asking the questions the table has (the others would be blank on both sides and are not compared).

Default: 4,000 individuals and 3 seeds per table; the per-variable, per-learner 0.03 tolerance is asserted on the
mean over variables and learners (a census draw of 4,000 rows alone moves a learner's accuracy by ~0.015), and
independent answers may score up to 0.05 under the majority rate. With PROBE_TEST_FULL=1: 10,000 individuals,
5 seeds, every learner within 0.03 on every variable answered by 3,000 or more (below that, ENG, as by default).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from probe import individual_tests as T
from probe import individuals, microdata, pums, questionnaires, sim
from probe.models import Completion

sys.path.insert(0, str(Path(__file__).parent))
from test_pums import NIST, NIST_MAP  # noqa: E402

FULL = os.environ.get("PROBE_TEST_FULL") == "1"
N, SEEDS = (10_000, 5) if FULL else (4_000, 3)
QN = questionnaires.load("acs2019")
LEARNERS = ("naive_bayes", "logistic", "boosting")

pytestmark = pytest.mark.usefixtures("isolated_home")


def fill_many(model: str, md: microdata.Microdata, n: int) -> list[dict]:
    b = sim.parse(model)
    asked = QN.model_copy(update={"questions": [q for q in QN.questions if q.id in md.variables]})

    async def run():
        out = []
        for s in range(n):
            async def ask(messages, s=s):
                text, top = sim.respond(b, messages[-1]["content"], s)
                return Completion(text, top, "stop")
            out.append((await individuals.fill(asked, ask, seed=s)).answers)
        return out

    return asyncio.run(run())


def check_known_answers(name: str) -> dict:
    md = microdata.load(name)
    real = T.run(QN, fill_many(f"individuals={name}", md, N), md, n_seeds=SEEDS)
    indep = T.run(QN, fill_many(f"prefer=baseline:{name}", md, N), md, n_seeds=SEEDS)

    # whole census rows: indistinguishable, with the census's signal
    assert abs(real["discriminator"]["accuracy"] - 0.5) <= 0.05, real["discriminator"]
    diffs = {(v, m): e["model"][m] - e["census"][m] for v, e in real["signal"].items() for m in LEARNERS}
    # a variable few are asked (ENG: ~2,000 of 10,000) has a test split of ~400, sd ~0.025 a side: the mean over
    # learners is held to 0.05 there, as every variable is at the default size
    big = {v for v, e in real["signal"].items() if FULL and e["n"] >= 3000}
    for (v, m), d in diffs.items():
        if v in big:
            assert abs(d) <= 0.03, (v, m, d)
    assert np.mean(np.abs(list(diffs.values()))) <= 0.03, diffs
    for v in set(real["signal"]) - big:
        assert abs(np.mean([diffs[v, m] for m in LEARNERS])) <= 0.05, (v, diffs)
    # the census has signal to find (else the comparison above would be empty)
    assert max(e["census"]["boosting"] - e["census"]["majority"] for e in real["signal"].values()) > 0.1

    # independent answers with the right marginals: no signal, and the discriminator sees the missing structure
    # (below the majority rate a learner only loses: on a near-balanced target such as SEX, guessing from noise
    # scores 0.5 where always predicting the majority scores 0.5 plus the sample's imbalance, ~0.02 at 4,000)
    for v, e in indep["signal"].items():
        for m in LEARNERS:
            gain = e["model"][m] - e["model"]["majority"]
            assert gain <= 0.03 and gain >= (-0.03 if FULL else -0.05), (v, m, e["model"])
    assert indep["discriminator"]["accuracy"] > 0.6, indep["discriminator"]
    assert indep["discriminator"]["ci95"][0] > 0.55
    return {"real": real, "indep": indep}


@pytest.mark.skipif(not (NIST / "national2019.csv").is_file(), reason="../shared reference data absent")
def test_known_answers_on_the_2019_pums_excerpt():
    pums.build_from_pums([NIST / "national2019.csv"], QN, "nist", column_map=NIST_MAP, keep_microdata=True)
    r = check_known_answers("nist")
    assert r["real"]["variables"] == ["SEX", "AGER", "HISPR", "RAC1PR", "SCHLR", "DEAR", "DEYE", "MAR", "PINCPR"]
    assert set(r["real"]["signal"]) == {"SEX", "HISPR", "RAC1PR", "SCHLR", "MAR", "PINCPR"}
    assert r["real"]["census"]["records"] == 27_253


# ------------------------------------------------------------------ a synthetic census with a known structure

AGEP = {1: 3, 2: 10, 3: 25, 4: 35, 5: 45, 6: 57, 7: 70}  # a PUMS age inside each AGER bin
SCHL = {1: 1, 2: 10, 3: 16, 4: 20, 5: 22}
WKWN = {1: 10, 2: 20, 3: 30, 4: 45, 5: 50}
WKHP = {1: 5, 2: 15, 3: 30, 4: 40, 5: 50, 6: 70}
PINCP = {1: 0, 2: 5000, 3: 30000, 4: 80000, 5: 200000}


def synthetic_pums(path: Path, n: int = 30_000, seed: int = 7) -> None:
    """PUMS-layout person records: a latent 'resources' score drives schooling, work, hours and income; age drives
    marriage and work; Hispanic origin drives a second language at home. Blank where the form would not ask."""
    rng = np.random.default_rng(seed)
    ager = rng.choice(np.arange(1, 8), n, p=[.06, .13, .2, .13, .13, .17, .18])
    sex = rng.integers(1, 3, n)
    hisp = np.where(rng.random(n) < .18, 1, 2)
    res = rng.normal(size=n)
    lanx = np.where(rng.random(n) < np.where(hisp == 1, .7, .1), 1, 2)
    eng = rng.choice([1, 2, 3, 4], n, p=[.6, .2, .15, .05])
    schlr = np.where(ager == 2, 2, np.digitize(res + rng.normal(scale=.5, size=n), [-2.2, -0.8, 0.1, 1.0]) + 1)
    mar = np.where(ager == 3, np.where(rng.random(n) < .75, 5, 1),
                   np.where(rng.random(n) < .65, 1, rng.choice([2, 3, 4, 5], n)))
    work = res + np.where(ager == 7, -1.6, 0.4) + rng.normal(scale=.6, size=n)
    wrk = np.where(work > 0, 1, 2)
    esr = np.where(wrk == 1, 1, np.where(rng.random(n) < .25, 3, 6))
    wkl = np.where(wrk == 1, 1, rng.choice([1, 2, 3], n, p=[.2, .3, .5]))
    wkwn = np.clip(np.digitize(work, [-1, -.5, 0, .5]) + 1, 1, 5)
    wkhpr = np.clip(np.digitize(work + rng.normal(scale=.5, size=n), [-1.5, -.8, 0, 1, 2]) + 1, 1, 6)
    pincpr = np.clip(np.digitize(res + .8 * (wrk == 1) + rng.normal(scale=.5, size=n), [-2, -.8, .6, 1.8]) + 1, 1, 5)
    adult, not_baby = ager >= 3, ager >= 2

    def col(v, mask, mapping=None):
        return ["" if not m else str(mapping[int(x)] if mapping else int(x)) for x, m in zip(v, mask)]

    cols = {
        "PWGTP": col(rng.integers(1, 200, n), np.ones(n, bool)), "SEX": col(sex, np.ones(n, bool)),
        "AGEP": col(ager, np.ones(n, bool), AGEP), "HISP": col(hisp, np.ones(n, bool)),
        "SCHL": col(schlr, not_baby, SCHL), "LANX": col(lanx, not_baby), "ENG": col(eng, not_baby & (lanx == 1)),
        "MAR": col(mar, adult), "WRK": col(wrk, adult), "ESR": col(esr, adult), "WKL": col(wkl, adult),
        "WKWN": col(wkwn, adult & (wkl == 1), WKWN), "WKHP": col(wkhpr, adult & (wkl == 1), WKHP),
        "PINCP": col(pincpr, adult, PINCP),
    }
    lines = [",".join(cols)] + [",".join(r) for r in zip(*cols.values())]
    path.write_text("\n".join(lines) + "\n")


def test_known_answers_on_a_synthetic_census(tmp_path):
    synthetic_pums(tmp_path / "psam_synth.csv")
    pums.build_from_pums([tmp_path / "psam_synth.csv"], QN, "synth", keep_microdata=True)
    r = check_known_answers("synth")
    assert set(r["real"]["variables"]) == {"SEX", "AGER", "HISPR", "SCHLR", "LANX", "ENG", "MAR", "WRK", "ESR",
                                           "WKL", "WKWN", "WKHPR", "PINCPR"}
    sig = r["real"]["signal"]
    # the planted structure is found in the census and in the row-drawing simulator alike
    assert sig["WRK"]["census"]["boosting"] > sig["WRK"]["census"]["majority"] + 0.15
    assert sig["LANX"]["census"]["logistic"] > sig["LANX"]["census"]["majority"] + 0.03
    # predictors the form's skip rules tie to the target are left out (and the split's own drop list)
    assert "ENG" not in sig["LANX"]["predictors"]
    assert {"WKWN", "WKHPR"}.isdisjoint(sig["WKL"]["predictors"])
    assert "COWR" not in sig["WRK"]["predictors"]


def test_a_handful_of_individuals_still_gets_both_tests(tmp_path):
    """A small campaign (a few real-model individuals) gets figures, or a count only, never an error."""
    synthetic_pums(tmp_path / "psam_small.csv", n=2000)
    pums.build_from_pums([tmp_path / "psam_small.csv"], QN, "small", keep_microdata=True)
    md = microdata.load("small")
    for n in (2, 16, 40):
        r = T.run(QN, fill_many("individuals=small", md, n), md, n_seeds=3)
        assert r["n_individuals"] == n and len(r["discriminator"]["per_seed"]) == 3
        for e in r["signal"].values():
            assert e["n"] <= n
            assert (e["model"]["boosting"] is None) == (e["n"] < 10)
