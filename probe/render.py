"""Pure: a work item's question or prompt -> chat messages. Templates are named in an explicit registry."""

from __future__ import annotations

import string
from dataclasses import dataclass

from probe.questionnaires import Question

LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class Template:
    system: str | None
    prefix: str  # text before the question
    question: str  # "{text}" is replaced by the question text
    option: str  # "{letter}" and "{text}"
    suffix: str  # the answer cue


# The paper's format (Dominguez-Olmedo et al., questions.py / fill_openai.py) and its ablations.
TEMPLATES: dict[str, Template] = {
    "paper": Template("Please respond with a single letter.", "", "Question: {text}\n", "{letter}. {text}\n", "Answer:"),
    "acs-context": Template(
        "Please respond with a single letter.",
        "Answer the following question from the American Community Survey.\n\n",
        "Question: {text}\n", "{letter}. {text}\n", "Answer:",
    ),
    "household": Template(
        "Please respond with a single letter.",
        "Answer the following question as if you lived at a household in the United States.\n\n",
        "Question: {text}\n", "{letter}. {text}\n", "Answer:",
    ),
    "interview": Template("Please respond with a single letter.", "", "Interviewer: {text}\n", "{letter}. {text}\n", "Me:"),
    "no-system": Template(None, "", "Question: {text}\n", "{letter}. {text}\n", "Answer:"),
}


def survey_messages(question: Question, shown: list[int], template: str = "paper") -> list[dict]:
    t = TEMPLATES[template]
    body = t.prefix + t.question.format(text=question.text)
    body += "".join(t.option.format(letter=LETTERS[i], text=question.text_of(c)) for i, c in enumerate(shown))
    body += t.suffix
    msgs = [{"role": "system", "content": t.system}] if t.system else []
    return msgs + [{"role": "user", "content": body}]


def probe_messages(text: str, system: str | None = None) -> list[dict]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
