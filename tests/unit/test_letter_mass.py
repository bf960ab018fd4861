"""First-token answers: letter mass, the MIN_LETTER_MASS threshold, and exact letter probabilities."""

from __future__ import annotations

import math

import pytest

from probe import answers
from probe.render import LETTERS


def old_fill_rule(top, shown):
    """from_logprobs as it was before letter mass was checked (the paper's fill rule, nothing else)."""
    k = len(shown)
    mass, total = [0.0] * k, 0.0
    for tok, lp in top:
        p = math.exp(lp)
        total += p
        t = tok.strip().strip("().:*")
        if len(t) == 1 and t in LETTERS[:k]:
            mass[LETTERS.index(t)] += p
    missing = [i for i in range(k) if mass[i] == 0.0]
    if missing:
        smallest = min((math.exp(lp) for _, lp in top), default=1.0 / k)
        fill = min(max(1.0 - total, 0.0) / len(missing), smallest)
        fill = smallest if fill <= 0.0 else fill
        for i in missing:
            mass[i] = fill
    return [m / sum(mass) for m in mass]


def lp(pairs):
    return [(t, math.log(p)) for t, p in pairs]


def test_no_letter_in_the_top_k_is_invalid_not_uniform():
    a = answers.from_logprobs([("The", -0.1), ("**", -3.0), ("I", -3.2)], [1, 2, 3])
    assert old_fill_rule([("The", -0.1), ("**", -3.0), ("I", -3.2)], [1, 2, 3]) == pytest.approx([1 / 3] * 3)
    assert a.invalid and a.option_code is None and a.option_probs is None
    assert a.invalid_reason == "no option letter in the top-k"
    assert a.letter_mass == 0.0 and a.mode == "logprobs"
    assert answers.from_logprobs([], [1, 2]).invalid_reason == "no option letter in the top-k"


@pytest.mark.parametrize("top,shown", [
    (lp([("A", 0.6), (" B", 0.3), ("C", 0.05), ("The", 0.03)]), [3, 1, 2]),  # letters hold 0.95
    (lp([("B", 0.5), (" A", 0.45), ("I", 0.02)]), [1, 2, 3, 4]),  # 0.95, two letters missing: the fill rule
    (lp([(" A", 0.2), ("A", 0.15), ("This", 0.3), ("B", 0.1)]), [2, 1]),
    (lp([("C", 0.1), ("The", 0.8)]), [1, 2, 3]),  # exactly the threshold is enough
])
def test_enough_letter_mass_gives_the_same_distribution_as_before(top, shown):
    a = answers.from_logprobs(top, shown)
    assert not a.invalid and a.invalid_reason is None
    assert a.letter_probs == pytest.approx(old_fill_rule(top, shown))
    assert a.letter_mass == pytest.approx(sum(math.exp(v) for t, v in top if answers.letter_of(t, len(shown))))


def test_letter_mass_under_the_threshold_is_invalid():
    a = answers.from_logprobs(lp([("The", 0.7), ("A", 0.04), (" B", 0.02), ("**", 0.1)]), [1, 2])
    assert a.invalid and a.letter_probs is None
    assert a.letter_mass == pytest.approx(0.06)
    assert a.invalid_reason == "letter mass 0.06 < 0.1"
    assert answers.MIN_LETTER_MASS == 0.1


def test_letters_beyond_the_options_shown_are_not_mass():
    a = answers.from_logprobs(lp([("C", 0.9), ("A", 0.05)]), [1, 2])  # C is not shown: only A counts
    assert a.invalid and a.letter_mass == pytest.approx(0.05)


def test_exact_letter_probabilities():
    a = answers.from_letter_probs({"A": 0.3, "B": 0.1, "C": 0.05, "D": 0.2}, [2, 1, 3])  # D is not shown
    assert a.mode == "exact" and not a.invalid
    assert a.letter_mass == pytest.approx(0.45)
    assert a.letter_probs == pytest.approx([0.3 / 0.45, 0.1 / 0.45, 0.05 / 0.45])
    assert a.option_probs == pytest.approx({2: 0.3 / 0.45, 1: 0.1 / 0.45, 3: 0.05 / 0.45})
    assert a.option_code == 2
    b = answers.from_letter_probs({"B": 0.5}, [1, 2, 3])  # a letter with no entry has probability 0, no fill
    assert b.letter_probs == pytest.approx([0.0, 1.0, 0.0])


def test_exact_letter_probabilities_below_the_threshold_are_invalid():
    a = answers.from_letter_probs({"A": 0.03, "B": 0.04}, [1, 2])
    assert a.invalid and a.letter_mass == pytest.approx(0.07) and a.invalid_reason == "letter mass 0.07 < 0.1"
    z = answers.from_letter_probs({}, [1, 2])
    assert z.invalid and z.letter_mass == 0.0 and z.invalid_reason == "no probability on any option letter"


def test_answer_keeps_its_old_constructor():
    a = answers.Answer("text", None, None)
    assert a.invalid and a.invalid_reason is None and a.letter_mass is None and a.option_code is None
