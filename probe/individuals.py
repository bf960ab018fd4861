"""Synthetic individuals: a model fills in a whole questionnaire in one conversation (the paper's Section 5,
script_fill_sequential.py).

Questions are asked in form order. Each turn shows the question with its answer order freshly permuted (from the
item's seed and the question id, so a retry asks exactly the same), the model's answer is read as for single
questions (probe.answers), and the chosen option stays in the conversation as the assistant's reply: the letter
drawn from the model's letter distribution (logprobs or exact letter probabilities), or the model's own text when
the answer was read from text. A question the form would skip given the answers so far (the questionnaire's
`ask_when` rules) is not asked and is recorded as not applicable, as the census leaves it blank. An invalid answer is
recorded as None (blank), and a rule conditioned on it fails.

`fill` is pure apart from the `ask` coroutine it is given, so the same code runs under execute (LiteLLM, embedded or
on the fleet) and in tests with an in-process respondent. An individual is one work item: it is stored only when
every turn is done; a call that fails transiently fails the whole individual, and its retry starts over from the
first question and, with the same seed, asks the same questions in the same orders.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from probe import answers, plan, render
from probe.questionnaires import Questionnaire

LABELLER = "individual"
LABELLER_VERSION = "sequential"

Ask = Callable[[list[dict]], Awaitable]  # messages -> a models.Completion (or anything with its fields)


@dataclass
class Individual:
    answers: dict[str, int | None]  # every question: the option code, None = not asked, invalid or unanswered
    turns: list[dict]  # the asked questions in order: q, shown, code, mode, letter_probs, letter_mass, reason, text
    messages: list[dict]  # the whole conversation
    completions: list = field(default_factory=list)

    @property
    def not_asked(self) -> list[str]:
        asked = {t["q"] for t in self.turns}
        return [q for q in self.answers if q not in asked]


def turn_seed(seed: int, qid: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\x1f{qid}".encode()).digest()[:4], "big") & 0x7FFFFFFF


def _choose(a: answers.Answer, shown: list[int], seed: int) -> int | None:
    """The option kept: the parsed one for a text answer; else one drawn from the letter distribution."""
    if a.invalid:
        return None
    if a.mode == "text":
        return a.option_code
    # its own stream: Random(seed) also shuffled the options, and reusing it would tie the draw to the order shown
    return random.Random(f"choose\x1f{seed}").choices(shown, weights=a.letter_probs)[0]


async def fill(questionnaire: Questionnaire, ask: Ask, *, seed: int, ordering: str = "random",
               template: str = "paper", mode: str = "auto") -> Individual:
    t = render.TEMPLATES[template]
    messages: list[dict] = [{"role": "system", "content": t.system}] if t.system else []
    got: dict[str, int | None] = {}
    turns: list[dict] = []
    completions = []
    for q in questionnaire.questions:
        if not q.asked(got):
            got[q.id] = None
            continue
        ts = turn_seed(seed, q.id)
        shown = plan.permutation(q, ordering, ts)
        messages.append(render.survey_messages(q, shown, template)[-1])
        c = await ask(list(messages))
        completions.append(c)
        a = answers.read(c.letter_probs, c.top_logprobs, c.text, shown, [q.text_of(x) for x in shown], mode)
        code = _choose(a, shown, ts)
        got[q.id] = code
        reply = render.LETTERS[shown.index(code)] if code is not None and a.mode != "text" else (c.text or "")
        messages.append({"role": "assistant", "content": reply})
        turns.append({"q": q.id, "shown": shown, "code": code, "mode": a.mode, "letter_probs": a.letter_probs,
                      "letter_mass": a.letter_mass, "reason": a.invalid_reason, "text": c.text})
    return Individual(got, turns, messages, completions)


def label_row(ind: Individual) -> dict:
    """The individual's label row: its turns (labels.turns), whose codes are its answers (`answers_of`)."""
    invalid = sum(t["code"] is None for t in ind.turns)
    return {"labeller": LABELLER, "labeller_version": LABELLER_VERSION, "label": "answered",
            "option_code": None, "option_probs": None, "letter_probs": None, "p_refusal": None,
            "letter_mass": None, "reason": f"{invalid} invalid answer(s)" if invalid else None, "turns": ind.turns}


def answers_of(questionnaire: Questionnaire, turns: list[dict]) -> dict[str, int | None]:
    """{VAR: code} for every question from stored turns; None where not asked or not validly answered."""
    got = {t["q"]: t["code"] for t in turns}
    return {q.id: got.get(q.id) for q in questionnaire.questions}
