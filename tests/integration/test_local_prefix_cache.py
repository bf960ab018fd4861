"""The embedded model's fast path (prefix caching, one prompt at a time) gives the figures of a plain forward pass."""

from __future__ import annotations

import pytest

from probe import plan, questionnaires, render

pytestmark = pytest.mark.slow


def test_prefix_caching_gives_the_letter_probabilities_of_a_whole_forward_pass():
    from probe import local_model

    lm = local_model.get("smollm2-135m")
    acs = questionnaires.load("acs2019")
    assert len(acs.questions) == 25
    # two answer orders a question (a random one and its reverse): different first options, a shared question text
    shown = [s for q in acs.questions for r in [plan.permutation(q, "random", 1)] for s in (r, r[::-1])]
    qs = [q for q in acs.questions for _ in range(2)]
    convs = [render.survey_messages(q, s, "paper") for q, s in zip(qs, shown)]
    lm._shared.clear(), lm._recent.clear(), lm._memo.clear()
    before = lm.tokens_run
    fast = lm.next_token_each(convs, [5] * len(convs))
    total = sum(len(lm.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in lm._prompts(convs))
    # the system prompt and each question's text ran once, not once per answer order
    assert lm.tokens_run - before < 0.75 * total  # 0.67 here; 1.0 without the caches
    for conv, (top, letters), s in zip(convs, fast, shown):
        (ref_top, ref_letters), = lm.next_token([conv], 5)  # the whole prompt in one forward pass, no cache
        assert set(letters) == set(ref_letters)
        assert max(abs(letters[x] - ref_letters[x]) for x in letters) < 1e-5, s
        assert sum(letters[x] for x in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:len(s)]) > 0.01  # not an empty comparison
        assert [t for t, _ in top[:2]] == [t for t, _ in ref_top[:2]]
        assert [v for _, v in top] == pytest.approx([v for _, v in ref_top], abs=1e-4)
    # a repeated prompt (samples of a fixed order) is answered again, identically
    again = lm.next_token_each(convs[:4], [5] * 4)
    assert again == fast[:4]
