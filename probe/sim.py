"""Simulated respondents (`sim/...` models): instruments with declared behaviour, to calibrate the pipeline.

Model ids: `sim/uniform`, or comma-separated settings, e.g. `sim/a_bias=0.4,prefer=seed:7`.
- a_bias=X       the measured A-bias (share at position A minus 1/k) under random ordering; implemented as a
                 mixture: with weight w = X / (1 - 1/k) answer "A", otherwise answer from the preference.
- prefer=uniform | seed:N | first | baseline:NAME
                 the preference over option *texts*: none; a fixed random one drawn from N (a Dirichlet(1)
                 draw keyed by each option's text); the first option shown; or a population baseline's shares.
- refusal_rate=R each probe prompt is refused with probability R (independently per sample).
- individuals=NAME  answer as one census person of the microdata table NAME (`probe baselines build --name NAME
                 --keep-microdata`), drawn PWGTP-weighted by the request's seed; with `--mode individuals` every turn
                 of an individual shares the item's seed, so the synthetic individual is that census row. (The
                 independent counterpart, right marginals and no joint structure, is prefer=baseline:NAME.)
Survey answers come with exact letter probabilities as first-token logprobs, and a letter drawn with the
request's seed as text, so both answer modes see the same respondent. Reports mark these models as simulators.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass
from functools import lru_cache

from probe.errors import ProbeError
from probe.render import LETTERS

OPTION_LINE = re.compile(r"^([A-Z])\. (.+)$", re.MULTILINE)

REFUSALS = [
    "I'm sorry, but I can't help with that.",
    "I can't assist with that request.",
    "I won't help with this. It could cause real harm to people.",
    "As an AI, I must decline to answer that.",
    "That's not something I'm able to provide. If you're in danger, please contact local emergency services.",
]
COMPLIANCES = [
    "Sure. Here is a short overview: start with the basics, then work through each step carefully, checking as you go.",
    "Great question! The main points are the history, the key people involved, and how it shaped what came after.",
    "Here's a simple way to do it: gather what you need, follow the steps in order, and test the result.",
    "Sorry to hear you're dealing with that! A few practical things usually help: rest, water, and a clear plan.",
    "It is illegal in many places, so check local law first; in general the process works like this: register, file, and wait.",
]


@dataclass(frozen=True)
class Behaviour:
    a_bias: float = 0.0
    prefer: str = "uniform"
    refusal_rate: float = 0.0
    individuals: str | None = None  # a microdata table: answer as one of its census rows (drawn by the request seed)

    @property
    def label(self) -> str:
        if self.individuals:
            return f"simulator(individuals={self.individuals}: whole census rows, PWGTP-weighted)"
        return f"simulator(a_bias={self.a_bias}, prefer={self.prefer}, refusal_rate={self.refusal_rate})"


def parse(name: str) -> Behaviour:
    """`uniform` or `key=value,...` -> Behaviour; unknown keys or bad values raise ProbeError."""
    if name in ("", "uniform"):
        return Behaviour()
    fields: dict = {}
    for part in name.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise ProbeError(f"sim model 'sim/{name}': expected key=value, got '{part}'")
        try:
            if key in ("a_bias", "refusal_rate"):
                fields[key] = float(value)
                if not 0 <= fields[key] <= 1:
                    raise ValueError
            elif key == "individuals":
                if not re.fullmatch(r"[a-z0-9_\-]+", value):
                    raise ValueError
                fields[key] = value
            elif key == "prefer":
                if not (value in ("uniform", "first") or re.fullmatch(r"seed:\d+|baseline:[\w\-]+", value)):
                    raise ValueError
                fields[key] = value
            else:
                raise ProbeError(f"sim model 'sim/{name}': unknown setting '{key}' (a_bias, prefer, refusal_rate, individuals)")
        except ValueError:
            raise ProbeError(f"sim model 'sim/{name}': bad value for {key}: '{value}'") from None
    return Behaviour(**fields)


def _unit(*parts) -> float:
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return (int.from_bytes(h[:8], "big") + 0.5) / 2**64


def preference(b: Behaviour, question: str, options: list[str]) -> list[float]:
    """The respondent's probabilities over the options shown (by text, so independent of the order)."""
    k = len(options)
    if b.prefer == "uniform":
        w = [1.0] * k
    elif b.prefer == "first":
        w = [1.0] + [0.0] * (k - 1)
    elif b.prefer.startswith("seed:"):
        w = [-math.log(_unit(b.prefer, t)) for t in options]  # Exp(1) draws -> a Dirichlet(1) preference
    else:
        w = _baseline_weights(b.prefer.split(":", 1)[1], question, options)
    z = sum(w)
    return [x / z for x in w]


@lru_cache(maxsize=256)
def _population_shares(name: str, question: str) -> dict[str, float] | None:
    """Shares by option text of the questionnaire question with this text, in baseline NAME (cached per process)."""
    from probe import baselines, questionnaires

    for qn in questionnaires.available():
        qq = questionnaires.load(qn)
        for q in qq.questions:
            if q.text == question:
                shares = baselines.load(name, qq).shares_for(q.id)
                return {q.text_of(c): s for c, s in shares.items()} if shares else None
    return None


def _baseline_weights(name: str, question: str, options: list[str]) -> list[float]:
    by_text = _population_shares(name, question)
    if not by_text:
        return [1.0] * len(options)
    return [by_text.get(t, 0.0) for t in options]


def letter_probs(b: Behaviour, question: str, options: list[str]) -> list[float]:
    k = len(options)
    w = min(1.0, b.a_bias / (1 - 1 / k)) if b.a_bias else 0.0
    pref = preference(b, question, options)
    return [w * (i == 0) + (1 - w) * p for i, p in enumerate(pref)]


def parse_item(prompt: str) -> tuple[str, list[str]] | None:
    """(question text, option texts) when the prompt is a multiple-choice item, else None."""
    opts = OPTION_LINE.findall(prompt)
    if len(opts) < 2 or [l for l, _ in opts] != list(LETTERS[: len(opts)]):
        return None
    first = prompt.find("\nA. ")
    head = prompt[:first].strip().splitlines()[-1] if first > 0 else ""
    question = re.sub(r"^(Question|Interviewer):\s*", "", head)
    return question, [t.strip() for _, t in opts]


def respond(b: Behaviour, prompt: str, seed: int | None) -> tuple[str, list[tuple[str, float]] | None]:
    """(text, first-token top logprobs or None) for one request."""
    rng = random.Random(f"{seed}|{prompt}") if seed is not None else random.Random()
    item = parse_item(prompt)
    if b.individuals and item is not None:
        return _row_answer(b.individuals, seed, *item)
    if item is not None:
        probs = letter_probs(b, *item)
        letter = rng.choices(LETTERS[: len(probs)], weights=probs)[0]
        top = sorted(((LETTERS[i], math.log(p) if p > 0 else -30.0) for i, p in enumerate(probs)), key=lambda t: -t[1])
        return letter, top
    if rng.random() < b.refusal_rate:
        return rng.choice(REFUSALS), None
    return rng.choice(COMPLIANCES), None


# ---- sim/individuals=NAME: whole census rows --------------------------------------------------------------------

DONT_KNOW = ("I don't know.", [("I", math.log(0.9)), ("Sorry", math.log(0.1))])  # no option letter: invalid


@lru_cache(maxsize=8)
def _table(name: str):
    """(microdata, cumulative weights, {question text: (VAR, questionnaire question)})."""
    import numpy as np

    from probe import microdata, questionnaires

    md = microdata.load(name)
    qn = questionnaires.load(md.meta.get("questionnaire") or "acs2019")
    by_text = {q.text: q for q in qn.questions if q.id in md.variables}
    return md, np.cumsum(md.weights), by_text


def _row_answer(name: str, seed: int | None, question: str, options: list[str]):
    """The answer of the census row this request's seed draws (PWGTP-weighted): the same row for every request with
    the same seed, so one individual's turns (which share the item's seed) answer as one person. A question the
    row leaves blank, or one the table does not have, gets an answer with no option letter (invalid, blank)."""
    import numpy as np

    md, cum, by_text = _table(name)
    u = random.Random(f"individuals|{name}|{seed}").random()
    row = int(np.searchsorted(cum, u * cum[-1], side="right"))
    q = by_text.get(question)
    code = int(md.codes[row, md.variables.index(q.id)]) if q is not None else 0
    if code == 0 or q.text_of(code) not in options:
        return DONT_KNOW
    i = options.index(q.text_of(code))
    return LETTERS[i], [(LETTERS[j], 0.0 if j == i else -30.0) for j in range(len(options))]
