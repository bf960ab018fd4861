"""Pure: a completion (text, or first-token top logprobs) and the option order shown -> the answer.

Logprobs follow the paper's fill rule (fill_openai.py): letters missing from the top-k get
min(remaining_mass / n_missing, smallest top-k probability), then the letter probabilities are renormalised.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from probe.render import LETTERS


@dataclass(frozen=True)
class Answer:
    mode: str  # "logprobs" | "text"
    letter_probs: list[float] | None  # per position shown; None when invalid
    option_probs: dict[int, float] | None  # per option code (de-permuted); None when invalid
    letter_mass: float | None = None  # probability mass the top-k put on option letters (logprobs mode)

    @property
    def invalid(self) -> bool:
        return self.letter_probs is None

    @property
    def option_code(self) -> int | None:
        if self.option_probs is None:
            return None
        return max(self.option_probs, key=self.option_probs.get)


def _letter_of(token: str, k: int) -> str | None:
    t = token.strip().strip("().:*")
    return t if len(t) == 1 and t in LETTERS[:k] else None


def from_logprobs(top: list[tuple[str, float]], shown: list[int]) -> Answer:
    k = len(shown)
    mass = [0.0] * k
    total = 0.0
    for tok, lp in top:
        p = math.exp(lp)
        total += p
        letter = _letter_of(tok, k)
        if letter is not None:
            mass[LETTERS.index(letter)] += p
    letter_mass = sum(mass)
    missing = [i for i in range(k) if mass[i] == 0.0]
    if missing:
        smallest = min((math.exp(lp) for _, lp in top), default=1.0 / k)
        fill = min(max(1.0 - total, 0.0) / len(missing), smallest)
        if fill <= 0.0:  # the top-k took all the mass; give missing letters the smallest seen share
            fill = smallest
        for i in missing:
            mass[i] = fill
    z = sum(mass)
    probs = [m / z for m in mass]
    return Answer("logprobs", probs, _depermute(probs, shown), letter_mass)


_LEAD = re.compile(r"^[\s*]*(?:answer\s*(?:is)?\s*[:\-]?\s*)?(\()?([A-Za-z])(?=$|([\s.):,]))", re.IGNORECASE)


def from_text(text: str | None, shown: list[int], option_texts: list[str]) -> Answer:
    """A letter at the start ("B", "(B)", "b)", "B. Female", "Answer: B"), or exactly one option text named."""
    k = len(shown)
    s = (text or "").strip()
    m = _LEAD.match(s)
    idx = None
    if m:
        letter, paren, after = m.group(2), m.group(1), m.group(3)
        # a lowercase letter counts only when it cannot be the article "a": alone, or marked as a choice
        marked = letter.isupper() or paren or len(s) == 1 or (after and after in ".):")
        rest = s[m.end():].lstrip()
        if after and after.isspace() and rest[:1].islower():  # "A person ...", "I think ...": prose, not a choice
            marked = False
        if marked and letter.upper() in LETTERS[:k]:
            idx = LETTERS.index(letter.upper())
    if idx is None:
        hits = [i for i, t in enumerate(option_texts) if re.search(rf"(?<!\w){re.escape(t)}(?!\w)", s, re.IGNORECASE)]
        if len(hits) == 1:
            idx = hits[0]
    if idx is None:
        return Answer("text", None, None)
    probs = [1.0 if i == idx else 0.0 for i in range(k)]
    return Answer("text", probs, _depermute(probs, shown))


def _depermute(probs: list[float], shown: list[int]) -> dict[int, float]:
    return {code: p for code, p in zip(shown, probs)}
