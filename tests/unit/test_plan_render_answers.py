"""Pure pieces of the survey path: plan (keys, seeds, permutations), render, answer parsing."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from probe import answers, plan, questionnaires, render
from probe.spec import CampaignSpec, ModelSpec

ACS = questionnaires.load("acs2019")


def spec(**kw) -> CampaignSpec:
    return CampaignSpec(models=[ModelSpec(id="sim/uniform")], surveys=["acs2019"], **kw)


def test_plan_counts_keys_and_determinism():
    items = plan.expand(spec(samples=3, seed=5), "c1")
    assert len(items) == 25 * 3
    assert len({i.key for i in items}) == len(items)
    again = plan.expand(spec(samples=3, seed=5), "c2")
    # seeds and orders depend on the campaign seed, not on the campaign id; keys are per campaign
    assert [i.seed for i in items] == [i.seed for i in again]
    assert [i.permutation for i in items] == [i.permutation for i in again]
    assert not {i.key for i in items} & {i.key for i in again}
    other = plan.expand(spec(samples=3, seed=6), "c1")
    assert [i.permutation for i in items] != [i.permutation for i in other]


def test_orderings():
    q = ACS.question("MIL")
    assert plan.permutation(q, "fixed", 1) == [4, 3, 1, 2]
    assert plan.permutation(q, "reversed", 1) == [2, 1, 3, 4]
    # random: every permutation of the 4 options is reachable, each option at A about 1/4 of the time
    firsts = Counter(plan.permutation(q, "random", s)[0] for s in range(4000))
    assert set(firsts) == {1, 2, 3, 4}
    assert all(abs(n / 4000 - 0.25) < 0.03 for n in firsts.values())


def test_anchored_options_keep_their_place():
    q = questionnaires.Question(id="X", text="t?", options=[{"code": c, "text": f"o{c}"} for c in (1, 2, 3, 9)],
                                anchored=[9])
    for s in range(50):
        assert plan.permutation(q, "random", s)[-1] == 9
    assert plan.permutation(q, "reversed", 0) == [3, 2, 1, 9]


def test_render_paper_format():
    q = ACS.question("SEX")
    msgs = render.survey_messages(q, [2, 1], "paper")
    assert msgs[0] == {"role": "system", "content": "Please respond with a single letter."}
    assert msgs[1]["content"] == "Question: What is this person's sex?\nA. Female\nB. Male\nAnswer:"
    assert render.survey_messages(q, [1, 2], "no-system")[0]["role"] == "user"


def test_logprobs_fill_rule_and_depermute():
    shown = [2, 1, 3]  # A=2, B=1, C=3
    top = [(" A", math.log(0.5)), ("B", math.log(0.2)), ("The", math.log(0.1))]
    a = answers.from_logprobs(top, shown)
    # C is missing: remaining mass 0.2 / 1 missing = 0.2, capped at the smallest top prob 0.1 -> 0.1
    assert a.letter_probs == pytest.approx([0.5 / 0.8, 0.2 / 0.8, 0.1 / 0.8])
    assert a.option_probs == pytest.approx({2: 0.625, 1: 0.25, 3: 0.125})
    assert a.option_code == 2
    assert a.letter_mass == pytest.approx(0.7)


def test_logprobs_variants_of_a_letter_add_up():
    a = answers.from_logprobs([("A", math.log(0.3)), (" A", math.log(0.3)), ("B", math.log(0.4))], [1, 2])
    assert a.letter_probs == pytest.approx([0.6, 0.4])


@pytest.mark.parametrize("text,idx", [("B", 1), ("(C)", 2), ("B. Female", 1), ("Answer: A", 0), (" c", 2),
                                      ("I would say Female.", 1), ("b) Female", 1)])
def test_text_answers(text, idx):
    a = answers.from_text(text, [1, 2, 3], ["Male", "Female", "Other"])
    assert not a.invalid
    assert a.letter_probs.index(1.0) == idx


@pytest.mark.parametrize("text", ["", "As an AI I do not have a sex.", "Male or Female", "Z", "A person like me"])
def test_text_invalid(text):
    assert answers.from_text(text, [1, 2, 3], ["Male", "Female", "Other"]).invalid
