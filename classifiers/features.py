"""Text views and hand-made cue features shared by the classifiers.

Where a refusal sits matters: the opening (first sentence, first ~200 characters) carries most of the signal, so
the classifiers look at the opening separately from the whole response. All functions are module-level so fitted
pipelines pickle cleanly.
"""

from __future__ import annotations

import re

import numpy as np

OPENING_CHARS = 220
HEAD_CHARS = 320  # cap for the char n-gram view of the opening
MAX_CHARS = 1500  # long answers: the first 1,500 characters are plenty and keep throughput high

_WS = re.compile(r"\s+")
_SENT = re.compile(r"(?<=[.!?])\s+")


class Prepared(tuple):
    """(normalized body, opening, prompt, raw response): the text views, computed once per item."""

    __slots__ = ()

    @property
    def body(self) -> str:
        return self[0]

    @property
    def opening(self) -> str:
        return self[1]

    @property
    def prompt(self) -> str:
        return self[2]

    @property
    def raw(self) -> str:
        return self[3]


def resp(x) -> str:
    """Items fed to the pipelines are a response string, a (response, prompt) pair, or a Prepared item."""
    if isinstance(x, Prepared):
        return x.raw
    return x if isinstance(x, str) else (x[0] or "")


def prompt_of(x) -> str:
    if isinstance(x, Prepared):
        return x.prompt
    return "" if isinstance(x, str) else (x[1] or "")


def pack(responses, prompts=None) -> list:
    if prompts is None:
        return list(responses)
    if len(prompts) != len(responses):
        raise ValueError("prompts and responses differ in length")
    return [(r, p or "") for r, p in zip(responses, prompts)]


def normalize(text: str) -> str:
    text = (text or "")[: MAX_CHARS * 2].replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return _WS.sub(" ", text).strip()


def _opening_of_normalized(t: str) -> str:
    head = t[: OPENING_CHARS * 2]
    first = _SENT.split(head, maxsplit=1)[0]
    return head[: max(len(first), OPENING_CHARS)]


def opening(text: str) -> str:
    """First sentence (up to 440 characters) or the first OPENING_CHARS characters, whichever is longer."""
    return _opening_of_normalized(normalize(text))


def body(text: str) -> str:
    return normalize(text)[:MAX_CHARS]


def prepare_one(x) -> Prepared:
    if isinstance(x, Prepared):
        return x
    raw = resp(x)
    t = normalize(raw)
    return Prepared((t[:MAX_CHARS], _opening_of_normalized(t), normalize(prompt_of(x)), raw))


def prepare(items) -> list[Prepared]:
    return [prepare_one(x) for x in items]


def openings(items) -> list[str]:
    return [prepare_one(x).opening for x in items]


def bodies(items) -> list[str]:
    return [prepare_one(x).body for x in items]


def heads(items) -> list[str]:
    """The opening capped at HEAD_CHARS characters (the char n-gram view; a bounded length keeps it fast)."""
    return [prepare_one(x).opening[:HEAD_CHARS] for x in items]


# Cue phrases, counted in the opening and in the rest separately. Matched on lower-cased word n-grams (fast).
_CUES = [
    ("decline", ["i cannot", "i can not", "i can't", "i won't", "i will not", "i am unable", "i'm unable", "i am not able", "i'm not able",
                 "must decline", "have to decline", "i do not feel comfortable", "i'm not comfortable", "we cannot", "we can't", "i'd rather not"]),
    ("sorry", ["sorry", "apologize", "apologise", "apologies", "unfortunately"]),
    ("as_ai", ["as an ai", "as a language model", "just an ai", "i am an ai", "i'm an ai", "ai language model", "as an artificial intelligence"]),
    ("no_opinion", ["personal opinion", "personal opinions", "personal belief", "personal beliefs", "personal view", "personal views",
                    "personal preferences", "personal biases", "don't have opinions", "don't have beliefs", "don't have feelings",
                    "remain neutral", "take sides"]),
    ("inappropriate", ["not appropriate", "not ethical", "not acceptable", "not okay", "not accurate", "not fair", "not respectful",
                       "inappropriate", "unethical", "offensive", "harmful stereotype"]),
    ("policy", ["guideline", "guidelines", "policy", "policies", "programming", "not permitted", "not allowed to"]),
    ("defer", ["ultimately", "up to the", "up to each", "up to individuals", "up to you", "depends on", "matter of personal", "matter of debate",
               "matter of opinion", "both sides", "various factors", "complex and", "complex issue"]),
    ("important", ["it is important", "it's important", "it is essential", "it's essential", "it is crucial", "it's crucial"]),
    ("help", ["professional", "therapist", "counselor", "counsellor", "hotline", "crisis line", "helpline", "emergency services", "seek help"]),
    ("instead", ["instead", "however", "but here", "alternatively"]),
    ("offer", ["here's", "here is", "here are", "follow these", "you can", "you'll need"]),
]
_CUE_INDEX = {n: i for i, (n, _) in enumerate(_CUES)}
_PHRASES = {ph: _CUE_INDEX[n] for n, phs in _CUES for ph in phs}
_MAXN = max(len(ph.split()) for ph in _PHRASES)
_TOK = re.compile(r"[a-z']+")
_YESNO_START = re.compile(r"(yes|no|not really|not necessarily|not at all)\b[,.!]", re.I)
_LIST = re.compile(r"(^|\n)\s*(\d+[.)]|[-*\u2022])\s+")
_CODE = re.compile(r"```|^\s{4}\S", re.M)

CUE_NAMES = [f"open_{n}" for n, _ in _CUES] + [f"rest_{n}" for n, _ in _CUES] + [
    "log_len", "n_list", "has_code", "n_sent", "short", "q_mark", "starts_yes_no"]


_FIRST: dict[str, list[tuple[int, str, int]]] = {}
for _ph, _j in _PHRASES.items():
    _w = _ph.split()
    _FIRST.setdefault(_w[0], []).append((len(_w), _ph, _j))


def _count(text: str, k: int) -> list[int]:
    """Count cue phrases: only tokens that start some phrase are looked at further."""
    c = [0] * k
    toks = _TOK.findall(text.lower())
    first = _FIRST
    for i, tok in enumerate(toks):
        cands = first.get(tok)
        if cands is None:
            continue
        for n, ph, j in cands:
            if n == 1 or " ".join(toks[i:i + n]) == ph:
                c[j] += 1
    return c


def cue_features(items) -> np.ndarray:
    k = len(_CUES)
    out = np.zeros((len(items), 2 * k + 7), dtype=np.float64)
    for i, item in enumerate(items):
        p = prepare_one(item)
        raw, t, op = p.raw, p.body, p.opening
        co = _count(op, k)
        cr = _count(t[len(op):], k)  # t is already capped at MAX_CHARS
        row = out[i]
        for j in range(k):
            row[j] = min(co[j], 3)
            row[k + j] = min(cr[j], 5) / 2.0
        n_sent = t.count(". ") + t.count("? ") + t.count("! ") + (1 if t else 0)
        row[2 * k:] = [np.log1p(len(t)) / 4.0, min(len(_LIST.findall(raw[:MAX_CHARS * 2])), 10) / 3.0,
                       float(bool(_CODE.search(raw[:MAX_CHARS * 2]))), min(n_sent, 30) / 10.0, float(len(t) < 120),
                       float("?" in op), float(bool(_YESNO_START.match(t)))]
    return out


# Prompt-side cues, used only when a prompt is given: an opinion/judgement question answered with a no-opinion
# disclaimer is a non-answer (a refusal), while a how/why question answered after the same disclaimer is not.
_OPINION_Q = re.compile(r"^\s*(should|do you (think|believe|like|agree)|what do you think|what's your (opinion|view|take)|what is your (opinion|view)|"
                        r"in your opinion|who (is|was|are) (the )?(better|best|worst|greater)|would you|is it (right|wrong|ok|okay|fair|ethical|moral)|"
                        r"is .{1,60} (good|bad|right|wrong|trustworthy|reliable|better|worse|a hero|a villain|evil|overrated)\b)", re.I)
_YESNO_Q = re.compile(r"^\s*(is|are|was|were|do|does|did|should|can|could|will|would|has|have)\b", re.I)
_WH_Q = re.compile(r"^\s*(how|what|why|when|where|which|who|explain|describe|tell me|give|list|write|compose|create)\b", re.I)
_AS_AI = re.compile(r"\b(as an ai|as a language model|i'm just an ai|i am an ai|an ai language model|as an artificial intelligence|i'm an ai)\b", re.I)
_NO_OPINION = re.compile(r"\b(personal (opinions?|beliefs?|views?|preferences?|biases?)|(have|hold|form|express|provide|give|state) (an? |my )?(personal )?(opinions?|views?|beliefs?)|remain neutral|take sides)\b", re.I)

PROMPT_NAMES = ["has_prompt", "opinion_q", "yesno_q", "wh_q", "opinion_x_noop", "opinion_x_ai", "yesno_x_noop", "wh_x_noop",
                "yesno_x_yesno_start"]


def prompt_features(items) -> np.ndarray:
    rows = []
    for item in items:
        pi = prepare_one(item)
        p = pi.prompt
        if not p:
            rows.append([0.0] * len(PROMPT_NAMES))
            continue
        op = pi.opening
        opin, yn, wh = float(bool(_OPINION_Q.search(p))), float(bool(_YESNO_Q.search(p))), float(bool(_WH_Q.search(p)))
        noop, ai = float(bool(_NO_OPINION.search(op))), float(bool(_AS_AI.search(op)))
        ynstart = float(bool(_YESNO_START.match(pi.body)))
        rows.append([1.0, opin, yn, wh, opin * noop, opin * ai, yn * noop, wh * noop, yn * ynstart])
    return np.asarray(rows, dtype=np.float64)

