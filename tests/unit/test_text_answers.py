"""Table-driven: real-looking generated answers -> the option code `answers.from_text` reads, or invalid.

Options come from prompts/surveys/acs2019.yaml in a fixed order shown to the model (A = first code listed below).
"""

from __future__ import annotations

import pytest

from probe import answers, questionnaires

ACS = questionnaires.load("acs2019")
SHOWN = {
    "SEX": [1, 2],  # A Male, B Female
    "HISPR": [2, 1],  # A No, B Yes
    "CIT": [1, 2, 3, 4, 5],  # A "Yes, born in the United States" ... E "No, not a U.S. citizen"
    "ENG": [1, 2, 3, 4],  # A Very well, B Well, C Not well, D Not at all
    "MIL": [4, 3, 1, 2],  # A Never served, B Only on active duty ..., C Now on active duty, D On active duty in ...
    "JWTRNS": list(range(1, 13)),  # 12 options: I Bicycle (9), J Walked (10), K Worked from home (11), L Other method
    "COWR": list(range(1, 10)),  # G Owner of non-incorporated business ... (7), H Owner of incorporated ... (8)
}

CASES = [
    # letters in the usual shapes
    ("SEX", "B", 2),
    ("SEX", "**B**", 2),
    ("SEX", "B)", 2),
    ("SEX", "(b)", 2),
    ("SEX", "B.", 2),
    ("SEX", "`B`", 2),
    ("SEX", "'B'", 2),
    ("SEX", "A", 1),
    ("SEX", "a", 1),
    ("SEX", "Answer: B", 2),
    ("SEX", "**Answer:** B", 2),
    ("SEX", "## Answer\nB", 2),
    ("SEX", "Answer: **B. Female**", 2),
    ("SEX", "The answer is B", 2),
    ("SEX", "The correct answer is: (B) Female", 2),
    ("SEX", "I choose (A)", 1),
    ("SEX", "I'd go with A.", 1),
    ("SEX", "Option B", 2),
    ("SEX", "B - Female", 2),
    ("SEX", "B. Female, because the question does not say otherwise.", 2),
    ("SEX", "b. female", 2),
    ("SEX", "B\n\nExplanation: A person's sex is recorded as reported.", 2),
    ("SEX", "The answer is A because most respondents in the survey are men.", 1),
    ("SEX", "Female (B)", 2),
    ("SEX", "Sure! Here is my answer:\n\nB", 2),
    ("SEX", "My final answer would be B.", 2),
    # option texts, in other case, punctuation or markdown
    ("SEX", "female", 2),
    ("SEX", "Female.", 2),
    ("SEX", "**Female**", 2),
    ("SEX", "FEMALE", 2),
    ("SEX", "I would say Female.", 2),
    ("SEX", "Female, because nothing suggests otherwise.", 2),
    ("HISPR", "Yes", 1),
    ("HISPR", "yes.", 1),
    ("HISPR", "No, because the name is not Hispanic.", 2),
    ("CIT", "Yes, U.S. citizen by naturalization.", 4),
    ("CIT", "yes, born in the united states", 1),
    ("CIT", "E. No, not a U.S. citizen", 5),
    ("ENG", "Very well", 1),
    ("ENG", "Well", 2),
    ("ENG", "not well", 3),
    ("ENG", "B. Well", 2),
    ("MIL", "Now on active duty", 1),
    ("MIL", "On active duty in the past, but not now", 2),
    ("MIL", "C) Now on active duty", 1),
    ("COWR", "Owner of incorporated business, professional practice, or farm", 8),
    ("COWR", "owner of non-incorporated business, professional practice, or farm.", 7),
    # "I" is an option letter when 9+ options are shown
    ("JWTRNS", "I", 9),
    ("JWTRNS", "I. Bicycle", 9),
    ("JWTRNS", "I think the answer is J", 10),
    ("JWTRNS", "I would choose K", 11),
    ("JWTRNS", "Answer: I would choose K", 11),
    ("JWTRNS", "Worked from home", 11),
    # invalid: refusals and prose
    ("SEX", "", None),
    ("SEX", "I cannot answer that.", None),
    ("SEX", "I'm sorry, but I can't determine this person's sex.", None),
    ("SEX", "As an AI language model, I don't have a sex.", None),
    ("SEX", "A person like me would not answer this.", None),
    ("SEX", "Answer: A person's sex is not something I can know.", None),
    ("SEX", "I think it depends on the person.", None),
    ("SEX", "I think B", None),  # no answer cue: "I" opens prose, and B is not in an answer position
    ("JWTRNS", "I, as an AI, do not commute.", None),
    ("JWTRNS", "I cannot answer that.", None),
    ("JWTRNS", "I'm not sure.", None),
    ("HISPR", "No, I cannot answer that.", None),
    ("HISPR", "There is no way to know.", None),
    # invalid: more than one option named
    ("SEX", "A or B", None),
    ("SEX", "A/B", None),
    ("SEX", "(A) or (B)", None),
    ("SEX", "Either A or B could be correct.", None),
    ("SEX", "Male/Female", None),
    ("SEX", "Male or Female", None),
    ("HISPR", "Yes or no", None),
    ("ENG", "Well, I think very well.", None),
    ("ENG", "A, B, or C", None),
    ("ENG", "B or C, depending on how often they speak it.", None),
    # invalid: a letter followed by a different option's text, or a letter and a different option's text
    ("SEX", "A. Female", None),
    ("SEX", "Male (B)", None),
    ("HISPR", "B. No", None),
    ("ENG", "B. Very well", None),
    ("CIT", "A. Yes, U.S. citizen by naturalization", None),
    # invalid: no single option (every CIT option starts "Yes, ..." or "No, ..."), partial text, a letter not shown
    ("CIT", "Yes", None),
    ("CIT", "No", None),
    ("MIL", "on active duty", None),
    ("SEX", "C", None),
    # known, deliberate loss: a bare letter directly followed by a comma is not read ("I, as an AI, ..."), for
    # every letter alike
    ("SEX", "B, because the question does not say otherwise.", None),
]


def parse(var: str, text: str) -> answers.Answer:
    q, shown = ACS.question(var), SHOWN[var]
    return answers.from_text(text, shown, [q.text_of(c) for c in shown])


@pytest.mark.parametrize("var,text,code", CASES, ids=[f"{v}:{t[:40]!r}" for v, t, _ in CASES])
def test_text_answer_table(var, text, code):
    a = parse(var, text)
    assert a.option_code == code, a.invalid_reason
    assert a.invalid == (code is None)
    assert (a.invalid_reason is None) == (code is not None)
    assert a.mode == "text" and a.letter_mass is None
    if code is not None:
        assert sorted(a.letter_probs) == [0.0] * (len(SHOWN[var]) - 1) + [1.0]


def test_table_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("var,text,reason", [
    ("SEX", "A or B", "names more than one option (A, B)"),
    ("SEX", "Male/Female", "names more than one option (A, B)"),
    ("SEX", "A. Female", "letter A is followed by the text of option B"),
    ("SEX", "C", "letter C is not among the options shown (A-B)"),
    ("ENG", "A, B, or C", "names more than one option (A, B, C)"),
    ("ENG", "B. Very well", "letter B is followed by the text of option A"),
    ("SEX", "I cannot answer that.", "no option letter or option text in an answer position"),
    ("SEX", "", "empty answer"),
])
def test_invalid_reasons(var, text, reason):
    assert parse(var, text).invalid_reason == reason
