"""probe.individuals: the whole questionnaire in one conversation, with the form's skip rules (questionnaire data),
checked on scripted respondents; the rules' validation; agreement with the PUMS builder's census masks."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest

from probe import individual_tests, individuals, microdata, pums, questionnaires
from probe.errors import DataFileError, ProbeError
from probe.models import Completion
from probe.render import LETTERS

QN = questionnaires.load("acs2019")


def scripted(want: dict[str, int], log: list[str] | None = None):
    """A respondent that answers each question with the code in `want` (by reading the options shown), and
    records which questions it was asked."""

    async def ask(messages):
        q = next(q for q in QN.questions if f"Question: {q.text}\n" in messages[-1]["content"])
        if log is not None:
            log.append(q.id)
        shown = re.findall(r"^([A-Z])\. (.+)$", messages[-1]["content"], re.M)
        letter = next(letter for letter, text in shown if text == q.text_of(want[q.id]))
        return Completion(letter, None, "stop")

    return ask


def fill(want, seed=1, log=None, mode="text"):
    return asyncio.run(individuals.fill(QN, scripted(want, log), seed=seed, mode=mode))


# A working woman of 35 who speaks another language at home: every question asked.
EVERYTHING = {"SEX": 2, "AGER": 4, "HISPR": 2, "RAC1PR": 1, "NATIVITY": 1, "CIT": 1, "SCH": 1, "SCHLR": 4, "LANX": 1,
              "ENG": 1, "HICOV": 1, "DEAR": 2, "DEYE": 2, "MAR": 1, "FER": 2, "GCL": 2, "MIL": 4, "WRK": 1, "ESR": 1,
              "JWTRNS": 1, "WKL": 1, "WKWN": 5, "WKHPR": 4, "COWR": 1, "PINCPR": 4}


def test_everything_asked_in_form_order_and_the_conversation_grows():
    log: list[str] = []
    ind = fill(EVERYTHING, log=log)
    assert log == [q.id for q in QN.questions]  # form order, nothing skipped
    assert ind.answers == EVERYTHING
    users = [m for m in ind.messages if m["role"] == "user"]
    assert len(users) == 25 and len(ind.messages) == 1 + 2 * 25  # system, then question and answer per turn
    assert [m["role"] for m in ind.messages[1:5]] == ["user", "assistant", "user", "assistant"]
    # each turn has its own answer order, stored with the turn, and the kept answer names it
    orders = {tuple(t["shown"]) for t in ind.turns if t["q"] in ("HISPR", "LANX", "HICOV", "DEAR", "DEYE", "GCL")}
    assert len(orders) == 2  # yes/no questions do not all share one order
    for t, m in zip(ind.turns, ind.messages[2::2]):
        assert m["content"] == LETTERS[t["shown"].index(t["code"])]


# (rule under test, the answers that switch it off, the questions that must then not be asked)
SKIPS = [
    ("a man is never asked about giving birth", {"SEX": 1}, ["FER"]),
    ("a woman over 50 is not asked about giving birth", {"AGER": 6}, ["FER"]),
    ("a child under 5: no school, education or language questions", {"AGER": 1},
     ["SCH", "SCHLR", "LANX", "ENG", "MAR", "FER", "GCL", "MIL", "WRK", "ESR", "JWTRNS", "WKL", "WKWN", "WKHPR",
      "COWR", "PINCPR"]),
    ("a child of 5-15: no marital, work or income questions", {"AGER": 2},
     ["MAR", "FER", "GCL", "MIL", "WRK", "ESR", "JWTRNS", "WKL", "WKWN", "WKHPR", "COWR", "PINCPR"]),
    ("under 31: no grandchildren question", {"AGER": 3}, ["GCL"]),
    ("English only at home: not asked how well they speak English", {"LANX": 2}, ["ENG"]),
    ("not at work or unemployed: not asked how they get to work", {"ESR": 6}, ["JWTRNS"]),
    ("did not work in the last 12 months: no weeks or hours worked", {"WKL": 2}, ["WKWN", "WKHPR"]),
    ("did not work in 5 years: no weeks, hours or class of worker", {"WKL": 3}, ["WKWN", "WKHPR", "COWR"]),
]


@pytest.mark.parametrize("why,change,skipped", SKIPS, ids=[s[0] for s in SKIPS])
def test_skip_rule(why, change, skipped):
    log: list[str] = []
    ind = fill(EVERYTHING | change, log=log)
    assert not set(skipped) & set(log), why
    assert set(log) == {q.id for q in QN.questions} - set(skipped)  # everything else still asked
    for v in skipped:
        assert ind.answers[v] is None  # not applicable, as the census leaves it blank
    assert sorted(ind.not_asked) == sorted(skipped)


def test_every_rule_is_exercised():
    ruled = {q.id for q in QN.questions if q.ask_when}
    assert ruled == {v for _, _, s in SKIPS for v in s}


def test_unemployed_is_asked_how_they_get_to_work_as_the_paper_codes_it():
    log: list[str] = []
    fill(EVERYTHING | {"ESR": 3}, log=log)
    assert "JWTRNS" in log


def test_an_invalid_answer_fails_the_rules_that_hang_on_it():
    async def ask(messages):  # answers AGER with prose, everything else with "A"
        return Completion("I'd rather not say." if "age?" in messages[-1]["content"] else "A", None, "stop")

    ind = asyncio.run(individuals.fill(QN, ask, seed=3, mode="text"))
    assert ind.answers["AGER"] is None
    assert ind.turns[1]["reason"] and ind.messages[4]["content"] == "I'd rather not say."  # its own text is kept
    assert all(ind.answers[v] is None for v in ("SCH", "MAR", "WRK", "PINCPR"))  # all hang on AGER


def test_same_seed_same_individual_and_a_retry_restarts_from_scratch():
    calls = {"n": 0}

    def respondent(fail_at: int | None):
        async def ask(messages):
            calls["n"] += 1
            if fail_at is not None and calls["n"] == fail_at:
                raise RuntimeError("connection reset")
            k = len(re.findall(r"^[A-Z]\. ", messages[-1]["content"], re.M))
            top = [(LETTERS[i], float(np.log((i + 1) / (k * (k + 1) / 2)))) for i in range(k)]
            return Completion(None, top, "stop")
        return ask

    a = asyncio.run(individuals.fill(QN, respondent(None), seed=11))
    calls["n"] = 0
    with pytest.raises(RuntimeError):
        asyncio.run(individuals.fill(QN, respondent(7), seed=11))  # fails mid-way: nothing comes back
    calls["n"] = 100
    b = asyncio.run(individuals.fill(QN, respondent(None), seed=11))
    assert a.messages == b.messages and a.turns == b.turns  # same orders, same draws
    c = asyncio.run(individuals.fill(QN, respondent(None), seed=12))
    assert c.messages != a.messages
    # logprobs mode draws from the letter distribution (last letter likeliest), never just the argmax
    assert {t["mode"] for t in a.turns} == {"logprobs"}


def test_draws_follow_the_letter_distribution_whatever_the_order_shown():
    """The kept answer is drawn from the model's distribution over options: a respondent giving 'Yes' 0.2 in every
    order gets about 20% Yes (the draw must not be tied to the shuffle of the same turn)."""

    async def ask(messages):
        shown = re.findall(r"^([A-Z])\. (.+)$", messages[-1]["content"], re.M)
        return Completion(None, [(letter, np.log(0.2 if text == "Yes" else 0.8)) for letter, text in shown], "stop")

    one = QN.model_copy(update={"questions": [QN.question("HISPR")]})
    yes = sum(asyncio.run(individuals.fill(one, ask, seed=s)).answers["HISPR"] == 1 for s in range(2000))
    assert 0.17 < yes / 2000 < 0.23


# ---------------------------------------------------------------------------------- the rules as validated data


def _with(qid: str, **changes) -> str:
    data = QN.model_dump()
    for q in data["questions"]:
        if q["id"] == qid:
            q.update(changes)
    import yaml

    return yaml.safe_dump(data)


@pytest.mark.parametrize("qid,changes,message", [
    ("SCH", {"ask_when": {"WKL": [1]}}, "SCH: ask_when names 'WKL', which is not an earlier question"),
    ("SCH", {"ask_when": {"NOPE": [1]}}, "not an earlier question"),
    ("ENG", {"ask_when": {"LANX": [3]}}, "ENG: ask_when codes [3] are not options of LANX"),
    ("HICOV", {"census_mask": True}, "HICOV: census_mask needs an ask_when rule"),
    ("SEX", {"signal": {"split": 1}}, "SEX: signal.split 1 must be an option code above the lowest"),
    ("WRK", {"signal": {"split": 2, "drop": ["XYZ"]}}, "unknown questions ['XYZ']"),
])
def test_bad_rules_are_one_line_errors(qid, changes, message):
    with pytest.raises((DataFileError, ProbeError)) as e:
        questionnaires.loads(_with(qid, **changes), "my_survey.yaml")
    assert message in str(e.value) and "my_survey.yaml" in str(e.value) and "\n" not in str(e.value)


# ----------------------------------------------------------------------- the same rules in the PUMS builder


HEADER = "ST,PWGTP,SEX,AGEP,SCHL,LANX,ENG,MAR,FER,WKL,WKW,WKHP"
ROWS = [  # ST w SEX AGEP SCHL LANX ENG MAR FER WKL WKW WKHP
    "06,10,1,3,1,1,,5,1,3,,",  # a child of 3 with stray values: the SCHLR, LANX, MAR and FER masks
    "06,20,2,30,16,1,2,5,1,1,50,40",  # everything asked
    "06,30,1,45,21,2,3,1,2,1,30,20",  # LANX 2: ENG masked; a man: FER masked
    "06,40,2,15,12,1,1,5,1,2,,",  # 15: MAR and FER masked
    "06,50,2,70,24,2,,2,,3,,",  # over 50: FER blank
]


@pytest.mark.usefixtures("isolated_home")
def test_builder_masks_are_the_questionnaires_rules(tmp_path):
    """Every question marked census_mask is blanked by the builder exactly where its ask_when rule fails on the
    recoded census row, and the kept microdata already obeys those rules (applying them again changes nothing)."""
    p = tmp_path / "p.csv"
    p.write_text(HEADER + "\n" + "\n".join(ROWS) + "\n")
    pums.build_from_pums([p], QN, "masks", keep_microdata=True)
    md = microdata.load("masks")
    masked = [q for q in QN.questions if q.census_mask]
    assert [q.id for q in masked] == ["SCH", "SCHLR", "LANX", "ENG", "MAR", "FER"]
    assert {t for t, _ in pums.census_masks([q for q in QN.questions if q.id in md.variables])} == \
        {q.id for q in masked if q.id in md.variables}
    x = md.codes.astype(int)
    again = individual_tests.apply_skip_rules(
        QN.model_copy(update={"questions": masked}), x, md.variables)
    assert (again == x).all()
    col = {v: md.column(v).tolist() for v in md.variables}
    assert col["SCHLR"] == [0, 3, 4, 2, 5]  # the child's schooling is not applicable
    assert col["ENG"] == [0, 2, 0, 1, 0]  # child (LANX masked), English only at home, ... over 50 blank
    assert col["MAR"] == [0, 5, 1, 0, 2]
    assert col["FER"] == [0, 1, 0, 0, 0]  # microdata keep the blank; the marginal counts it as No (recode.missing)
    assert md.weights.tolist() == [10, 20, 30, 40, 50]
    assert md.meta["questionnaire"] == "acs2019" and "sha256" in md.meta["source"]
