"""Exact letter probabilities from the embedded model (SmolLM2-135M-Instruct), read from its full distribution."""

from __future__ import annotations

import math

import pytest

from probe import answers, plan, questionnaires, render

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lm():
    from probe import local_model

    return local_model.get("smollm2-135m")


def test_letter_spellings_are_the_tokens_the_top_k_rule_counts(lm):
    ids = lm.letter_token_ids("ABC")
    assert {letter: len(v) for letter, v in ids.items()} == {"A": 2, "B": 2, "C": 2}  # "A" and " A"
    assert sorted(lm.tokenizer.decode([i]) for i in ids["A"]) == [" A", "A"]
    # every vocabulary token that answers.letter_of reads as A, B or C is one of these: the exact path and the
    # top-k path count the same spellings for this tokenizer
    vocab = lm.tokenizer.batch_decode([[i] for i in range(len(lm.tokenizer))])
    counted = {i for i, t in enumerate(vocab) if answers.letter_of(t, 3)}
    assert counted == {i for v in ids.values() for i in v}


def test_exact_letter_probs_agree_with_the_top_k_and_make_answers(lm):
    acs = questionnaires.load("acs2019")
    qs = [acs.question(v) for v in ("SEX", "ENG", "MIL")]
    shown = [plan.permutation(q, "fixed", 1) for q in qs]
    convs = [render.survey_messages(q, s, "paper") for q, s in zip(qs, shown)]
    both = lm.next_token(convs, 20, "ABCD")
    for (top, _), alone in zip(both, lm.next_token_logprobs(convs, 20)):  # the same forward pass as before
        assert [t for t, _ in top] == [t for t, _ in alone]
        assert [v for _, v in top] == pytest.approx([v for _, v in alone], abs=1e-5)
    for (top, exact), s in zip(both, shown):
        assert set(exact) == set("ABCD") and all(0.0 <= p <= 1.0 for p in exact.values())
        for letter in "ABCD":  # a top-k list sees a part of each letter's probability, never more
            seen = sum(math.exp(v) for t, v in top if answers.letter_of(t, 4) == letter)
            assert seen <= exact[letter] + 1e-6
        a = answers.from_letter_probs(exact, s)
        assert not a.invalid and a.mode == "exact"
        assert a.letter_mass == pytest.approx(sum(exact[x] for x in "ABCD"[:len(s)]))
        assert sum(a.letter_probs) == pytest.approx(1.0)
        # the top-k answer agrees once the fill rule has nothing left to fill
        lp = answers.from_logprobs(top, s)
        if all(any(answers.letter_of(t, len(s)) == x for t, _ in top) for x in "ABCD"[:len(s)]):
            assert lp.letter_mass <= a.letter_mass + 1e-6
    assert lm.next_token_letter_probs(convs[:1], "AB")[0] == pytest.approx({k: both[0][1][k] for k in "AB"}, abs=1e-6)
