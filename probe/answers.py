"""Pure: a completion (text, first-token top logprobs, or exact letter probabilities) and the option order shown
-> the answer.

First-token probabilities (`from_logprobs`, `from_letter_probs`)
- letter mass: the first-token probability on the option letters shown, summed over the tokens that spell a letter
  ("A", " A", and in a top-k list also "(A", "A.", "**A": `letter_of`). It is a lower bound when read from a top-k
  list, exact when the model gives every letter's probability (`from_letter_probs`, e.g. the local model).
- MIN_LETTER_MASS = 0.1: an answer whose letter mass is below it is invalid ("letter mass 0.06 < 0.1"), and so is a
  top-k list with no option letter at all ("no option letter in the top-k"). Without this, the fill rule below
  turns a model that answers with prose ("The", "**", "I") into a perfectly uniform respondent, which is exactly the
  paper's headline finding manufactured by the parser. 0.1 keeps every ACS question of the local SmolLM2-135M
  (letter mass 0.30-0.89 on the paper prompt, fixed and random orders) and drops answers where the letters are a
  sliver of the mass, i.e. where the model was not answering with a letter.
- Fill rule (the paper's fill_openai.py), for a valid top-k answer: letters missing from the top-k get
  min(remaining_mass / n_missing, smallest top-k probability), then the letter probabilities are renormalised.
  Exact letter probabilities need no fill: they are only renormalised.
- Caveat: with 9+ options a first token "I" counts for option I, though it is as often the pronoun ("I am ..."); a
  first token cannot tell them apart (SmolLM2-135M puts ~0.03 on "I" for JWTRNS and COWR).

Text (`from_text`): the answer is read only from answer positions, never from any letter or option text that
happens to occur in prose. Markdown (* _ ` # >) and surrounding quotes are dropped, case is ignored for option texts.
- A letter counts when it stands alone as a token (not "I'm", not "U.S.") and sits
  (a) at the very start ("B", "B.", "B)", "(b)", "**B. Female**", "B - Female"),
  (b) right after an answer cue ("Answer: B", "The answer is C", "I choose (A)", "I'd go with B", "Option B"), or
  (c) anywhere in full brackets ("(B)", "[B]").
  A lower-case letter needs a mark: brackets, a following ".", ":" or ")", or nothing else in the answer.
  A bare letter directly followed by "," is not an answer ("I, as an AI, ..."), and neither is a letter followed by
  a lower-case word ("A person like me", "I think B"), unless the word is a connector (because, since, is, seems)
  or the start of an option's text ("b. female"). The rules are the same for every letter, so "A" and "I" lose no
  more real answers than "B" does, and prose that opens with the article or the pronoun gives no letter.
- An option's text counts (longest text first, so "Very well" is not also "Well") when it is the whole answer up to
  punctuation ("female", "Female.", "**Female**"), follows an answer cue ("I would say Female."), or opens the
  answer followed by a new line, ":", a dash, "(" or a connector ("Female, because ..."). "No, I can't answer
  that" gives no answer.
- Invalid, with a reason: nothing found (refusals, prose), a letter outside the options shown, more than one option
  named (two letters in answer positions, two letters anywhere joined as alternatives: "A or B", "A/B", "(A) or
  (B)", "A, B, C"; two option texts; a letter and a different option's text), or a letter followed by the text of
  a different option ("A. Female" when A is Male). When nothing is named in an answer position but two option
  texts occur ("Male/Female"), the reason says two options were named.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from probe.render import LETTERS

MIN_LETTER_MASS = 0.1


@dataclass(frozen=True)
class Answer:
    mode: str  # "logprobs" (top-k) | "exact" (every letter's probability) | "text"
    letter_probs: list[float] | None  # per position shown; None when invalid
    option_probs: dict[int, float] | None  # per option code (de-permuted); None when invalid
    letter_mass: float | None = None  # first-token probability on option letters; None for text answers
    invalid_reason: str | None = None  # None when valid

    @property
    def invalid(self) -> bool:
        return self.letter_probs is None

    @property
    def option_code(self) -> int | None:
        if self.option_probs is None:
            return None
        return max(self.option_probs, key=self.option_probs.get)


def letter_of(token: str, k: int) -> str | None:
    """The option letter (among the first k) a first token spells, if any: "A", " A", "(A", "A.", "**A"."""
    t = token.strip().strip("().:*")
    return t if len(t) == 1 and t in LETTERS[:k] else None


def _mass_reason(letter_mass: float) -> str | None:
    if letter_mass < MIN_LETTER_MASS:
        return f"letter mass {letter_mass:.2g} < {MIN_LETTER_MASS:g}"
    return None


def from_logprobs(top: list[tuple[str, float]], shown: list[int]) -> Answer:
    """A first-token top-k list -> the answer, by the fill rule; invalid below MIN_LETTER_MASS."""
    k = len(shown)
    mass = [0.0] * k
    total = 0.0
    for tok, lp in top:
        p = math.exp(lp)
        total += p
        letter = letter_of(tok, k)
        if letter is not None:
            mass[LETTERS.index(letter)] += p
    letter_mass = sum(mass)
    if letter_mass == 0.0:
        return Answer("logprobs", None, None, 0.0, "no option letter in the top-k")
    if (reason := _mass_reason(letter_mass)) is not None:
        return Answer("logprobs", None, None, letter_mass, reason)
    missing = [i for i in range(k) if mass[i] == 0.0]
    if missing:
        smallest = min(math.exp(lp) for _, lp in top)
        fill = min(max(1.0 - total, 0.0) / len(missing), smallest)
        if fill <= 0.0:  # the top-k took all the mass; give missing letters the smallest seen share
            fill = smallest
        for i in missing:
            mass[i] = fill
    z = sum(mass)
    probs = [m / z for m in mass]
    return Answer("logprobs", probs, _depermute(probs, shown), letter_mass)


def from_letter_probs(probs_by_letter: dict[str, float], shown: list[int]) -> Answer:
    """Exact first-token probability per letter (each summed over its spellings, e.g. "A" + " A") -> the answer:
    the letters shown, renormalised; letter_mass is their sum; invalid below MIN_LETTER_MASS. Letters beyond the
    options shown are ignored."""
    k = len(shown)
    mass = [max(float(probs_by_letter.get(letter, 0.0)), 0.0) for letter in LETTERS[:k]]
    letter_mass = sum(mass)
    if letter_mass == 0.0:
        return Answer("exact", None, None, 0.0, "no probability on any option letter")
    if (reason := _mass_reason(letter_mass)) is not None:
        return Answer("exact", None, None, letter_mass, reason)
    probs = [m / letter_mass for m in mass]
    return Answer("exact", probs, _depermute(probs, shown), letter_mass)


# ---- text answers -------------------------------------------------------------------------------------------------

_CONNECTORS = frozenset({"because", "since", "is", "seems"})
_CUE = re.compile(r"""(?<![\w'])(?:
      (?:(?:the|my)\s+)?(?:(?:final|correct|best|right)\s+)?answer(?:\s+(?:is|would\s+be|will\s+be))?
    | i(?:\s+would|\s+will|'d|'ll)?\s+(?:choose|pick|select|go\s+with|say|answer)
    | (?:my\s+)?(?:choice|selection)(?:\s+(?:is|would\s+be))?
    | option | letter
    )\s*[:=\-–]?\s*""", re.IGNORECASE | re.VERBOSE)
# a single-letter token: not part of a word, a contraction ("I'm") or an abbreviation ("U.S.")
_LETTER = re.compile(r"(?<![\w'])(?P<open>[(\[])?(?P<l>[A-Za-z])(?P<close>[)\]])?(?![\w'])(?!\.\w)")
_PAIR = re.compile(r"(?<![\w'])(?:\((?P<a>[A-Za-z])\)|(?P<A>[A-Z]))\s*(?P<conj>,?\s*\bor\b|,?\s*\band\b|,|/|&)\s*"
                   r"(?:\((?P<b>[A-Za-z])\)|(?P<B>[A-Z]))(?![\w'])(?!\.\w)")
_LIST_GOES_ON = re.compile(r"\s*(?:,|,?\s*\bor\b|,?\s*\band\b)\s*(?:[A-Z]|\([A-Za-z]\))(?![\w'])")
_SKIP = re.compile(r"[\s.,:;!?)\]\-–—]*")
_WORD = re.compile(r"[a-z']+")


def _normalise(text: str) -> str:
    s = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    s = re.sub(r"[*_`]+", "", s)  # markdown emphasis and code
    s = re.sub(r"(?m)^[ \t]*(?:#+|>)[ \t]*", "", s)  # headings, block quotes
    s = re.sub(r"[^\S\n]+", " ", s)
    s = re.sub(r" ?\n\s*", "\n", s)
    return s.strip().strip("\"'").strip()


class _Parser:
    def __init__(self, text: str, option_texts: list[str]):
        self.s = _normalise(text)
        self.k = len(option_texts)
        self.options = [re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, _normalise(t).rstrip(".").split()))
                                   + r"(?!\w)", re.IGNORECASE) for t in option_texts]

    def option_at(self, pos: int) -> tuple[int, int] | None:
        """(option index, end) of the longest option text starting at pos."""
        best = None
        for i, rx in enumerate(self.options):
            m = rx.match(self.s, pos)
            if m and (best is None or m.end() > best[1]):
                best = (i, m.end())
        return best

    def reads_as_answer(self, end: int) -> bool:
        """What follows position `end` still reads as an answer: nothing, punctuation, a new line, a capitalised
        word, or a lower-case word that is a connector or an option's text."""
        s = self.s
        j = _SKIP.match(s, end).end()
        if j == len(s) or not (s[j].isalpha() and s[j].islower()):
            return True
        return _WORD.match(s, j).group() in _CONNECTORS or self.option_at(j) is not None

    def letter(self, m: re.Match) -> bool:
        """Does this single-letter token, already in an answer position, read as an answer letter?"""
        s, letter, marked = self.s, m["l"], bool(m["open"] or m["close"])
        if not marked and s[m.end():m.end() + 1] == ",":
            return False
        if letter.islower() and not (marked or s[m.end():m.end() + 1] in (".", ":") or m.end() == len(s)):
            return False
        return self.reads_as_answer(m.end())

    def echo(self, m: re.Match) -> int | None:
        """The option whose text directly follows a letter ("B. Female" -> Female's index), if any."""
        hit = self.option_at(_SKIP.match(self.s, m.end()).end())
        return hit[0] if hit else None

    def parse(self) -> tuple[int | None, str | None]:
        s, k = self.s, self.k
        if not s:
            return None, "empty answer"
        cues = [c.end() for c in _CUE.finditer(s)]
        letters = []  # accepted letter tokens
        for m in _LETTER.finditer(s):
            in_place = m.start() == 0 or m.start() in cues or (m["open"] and m["close"])
            if in_place and self.letter(m):
                letters.append(m)
        named: set[int] = set()  # option indexes named in answer positions
        outside = []
        for m in letters:
            i = LETTERS.index(m["l"].upper())
            if i >= k:
                outside.append(m["l"].upper())
                continue
            named.add(i)
            e = self.echo(m)
            if e is not None and e != i:
                return None, f"letter {LETTERS[i]} is followed by the text of option {LETTERS[e]}"
        for a, b in self.pairs():
            if a != b and LETTERS.index(a) < k and LETTERS.index(b) < k:
                named |= {LETTERS.index(a), LETTERS.index(b)}
        for pos in cues:  # "I would say Female.", "Answer: Female"
            hit = self.option_at(pos)
            if hit and self.reads_as_answer(hit[1]):
                named.add(hit[0])
        hit = self.option_at(0)  # "female", "Female.", "Female, because ...", "Female\nThe person ..."
        if hit:
            j = _SKIP.match(s, hit[1]).end()
            gap = s[hit[1]:j]
            if (j == len(s) or "\n" in gap or ":" in gap or any(d in gap for d in "-–—") or s[j] == "("
                    or _WORD.match(s, j) and _WORD.match(s, j).group() in _CONNECTORS):
                named.add(hit[0])
        if len(named) > 1:
            return None, "names more than one option (" + ", ".join(LETTERS[i] for i in sorted(named)) + ")"
        if named:
            return named.pop(), None
        if outside:
            return None, f"letter {outside[0]} is not among the options shown (A-{LETTERS[k - 1]})"
        mentioned = self.mentions()
        if len(mentioned) > 1:
            return None, "names more than one option (" + ", ".join(LETTERS[i] for i in sorted(mentioned)) + ")"
        return None, "no option letter or option text in an answer position"

    def pairs(self) -> list[tuple[str, str]]:
        """Letters joined as alternatives: "A or B", "A/B", "(A) or (B)", "A and B", "A, B". After "and" or a comma
        the second letter must itself read as an answer ("B, I think" is no pair)."""
        out, pos = [], 0
        while (p := _PAIR.search(self.s, pos)) is not None:
            pos = p.start() + 1  # overlapping: "A, B, or C" tries (A, B) and (B, C)
            weak = p["conj"].replace(",", "").strip() not in ("or", "/", "&")
            listed = _LIST_GOES_ON.match(self.s, p.end()) is not None  # "A, B, or C"
            if weak and not listed and (not self.reads_as_answer(p.end()) or self.s[p.end():p.end() + 1] == ","):
                continue
            out.append(((p["a"] or p["A"]).upper(), (p["b"] or p["B"]).upper()))
        return out

    def mentions(self) -> set[int]:
        """Options whose text occurs anywhere, not counting an occurrence inside a longer option's ("Very well")."""
        spans = [(m.start(), m.end(), i) for i, rx in enumerate(self.options) for m in rx.finditer(self.s)]
        return {i for a, b, i in spans if not any(a2 <= a and b <= b2 and (b2 - a2) > (b - a) for a2, b2, _ in spans)}


def from_text(text: str | None, shown: list[int], option_texts: list[str]) -> Answer:
    """A generated answer -> the option it names (rules in the module docstring), or invalid with a reason."""
    k = len(shown)
    idx, reason = _Parser(text or "", option_texts).parse()
    if idx is None:
        return Answer("text", None, None, None, reason)
    probs = [1.0 if i == idx else 0.0 for i in range(k)]
    return Answer("text", probs, _depermute(probs, shown))


def read(letter_probs: dict[str, float] | None, top_logprobs, text: str | None, shown: list[int],
         option_texts: list[str], mode: str) -> Answer:
    """A completion's answer by the campaign's answer mode: exact letter probabilities (the local model), else the
    top-k first-token logprobs, in logprobs or auto mode; else the text."""
    if letter_probs and mode in ("auto", "logprobs"):  # exact: no fill rule needed
        return from_letter_probs(letter_probs, shown)
    if top_logprobs and mode in ("auto", "logprobs"):
        return from_logprobs(top_logprobs, shown)
    return from_text(text, shown, option_texts)


def _depermute(probs: list[float], shown: list[int]) -> dict[int, float]:
    return {code: p for code, p in zip(shown, probs)}
