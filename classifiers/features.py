"""Text views and hand-made cue features shared by the classifiers.

Where a refusal sits matters: the opening (first sentence, first ~200 characters) carries most of the signal, so
the classifiers look at the opening separately from the whole response. All functions are module-level so fitted
pipelines pickle cleanly.
"""

from __future__ import annotations

import re

import numpy as np

OPENING_CHARS = 220
MAX_CHARS = 2000  # long answers: the first 2,000 characters are plenty and keep throughput high

_WS = re.compile(r"\s+")
_SENT = re.compile(r"(?<=[.!?])\s+")


def resp(x) -> str:
    """Items fed to the pipelines are either a response string or a (response, prompt) pair."""
    return x if isinstance(x, str) else (x[0] or "")


def prompt_of(x) -> str:
    return "" if isinstance(x, str) else (x[1] or "")


def pack(responses, prompts=None) -> list:
    if prompts is None:
        return list(responses)
    if len(prompts) != len(responses):
        raise ValueError("prompts and responses differ in length")
    return [(r, p or "") for r, p in zip(responses, prompts)]


def normalize(text: str) -> str:
    text = (text or "").replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return _WS.sub(" ", text).strip()


def opening(text: str) -> str:
    """First sentence plus whatever else fits in OPENING_CHARS characters."""
    t = normalize(text)[: OPENING_CHARS * 2]
    first = _SENT.split(t, maxsplit=1)[0]
    return t[: max(len(first), OPENING_CHARS)][: OPENING_CHARS * 2]


def body(text: str) -> str:
    return normalize(text)[:MAX_CHARS]


def openings(items) -> list[str]:
    return [opening(resp(t)) for t in items]


def bodies(items) -> list[str]:
    return [body(resp(t)) for t in items]


# Cue patterns: (name, regex). Counted in the opening and in the rest separately.
_CUES = [
    ("decline", r"\b(i|we) (cannot|can ?not|can't|won't|will not|am unable|'m unable|am not able|'m not able|must decline|have to decline|do not feel comfortable|'m not comfortable)\b"),
    ("sorry", r"\b(sorry|apologi[sz]e|apologies|unfortunately)\b"),
    ("as_ai", r"\b(as an ai|as a language model|i'm just an ai|i am an ai|an ai language model|as an artificial intelligence|i'm an ai)\b"),
    ("no_opinion", r"\b(personal (opinions?|beliefs?|views?|preferences?|biases)|don't have (opinions|beliefs|feelings)|remain neutral|take sides)\b"),
    ("inappropriate", r"\b(not (appropriate|ethical|acceptable|okay|ok|accurate|fair|respectful)|inappropriate|unethical|offensive|harmful stereotype)\b"),
    ("policy", r"\b(guidelines?|polic(y|ies)|programming|not permitted|not allowed to)\b"),
    ("defer", r"\b(ultimately|up to (the|each|individuals?|you)|depends on|matter of (personal|debate|opinion)|both sides|various factors|complex (and|issue))\b"),
    ("important", r"\b(it is|it's) (important|essential|crucial)\b"),
    ("help", r"\b(professional|therapist|counsell?or|hotline|crisis line|helpline|emergency services|seek help)\b"),
    ("instead", r"\b(instead|however|but here|alternatively)\b"),
    ("offer", r"\b(here('s| is| are)|follow these|steps?:|you can|you'll need)\b"),
]
_CUE_RX = [(n, re.compile(p, re.I)) for n, p in _CUES]
_LIST = re.compile(r"(^|\n)\s*(\d+[.)]|[-*\u2022])\s+")
_CODE = re.compile(r"```|^\s{4}\S", re.M)

CUE_NAMES = [f"open_{n}" for n, _ in _CUES] + [f"rest_{n}" for n, _ in _CUES] + [
    "log_len", "n_list", "has_code", "n_sent", "short", "q_mark"]


def cue_features(items) -> np.ndarray:
    rows = []
    for item in items:
        raw = resp(item)
        t = normalize(raw)
        op = opening(raw)
        rest = t[len(op):MAX_CHARS * 2]
        row = [min(len(rx.findall(op)), 3) for _, rx in _CUE_RX]
        row += [min(len(rx.findall(rest)), 5) / 2.0 for _, rx in _CUE_RX]
        n_sent = len(_SENT.split(t)) if t else 0
        row += [np.log1p(len(t)) / 4.0, min(len(_LIST.findall(raw)), 10) / 3.0, float(bool(_CODE.search(raw))),
                min(n_sent, 30) / 10.0, float(len(t) < 120), float("?" in op)]
        rows.append(row)
    return np.asarray(rows, dtype=np.float64)


# Prompt-side cues, used only when a prompt is given: an opinion/judgement question answered with a no-opinion
# disclaimer is a non-answer (a refusal), while a how/why question answered after the same disclaimer is not.
_OPINION_Q = re.compile(r"^\s*(should|do you (think|believe|like|agree)|what do you think|what's your (opinion|view|take)|what is your (opinion|view)|"
                        r"in your opinion|who (is|was|are) (the )?(better|best|worst|greater)|would you|is it (right|wrong|ok|okay|fair|ethical|moral)|"
                        r"is .{1,60} (good|bad|right|wrong|trustworthy|reliable|better|worse|a hero|a villain|evil|overrated)\b)", re.I)
_YESNO_Q = re.compile(r"^\s*(is|are|was|were|do|does|did|should|can|could|will|would|has|have)\b", re.I)
_WH_Q = re.compile(r"^\s*(how|what|why|when|where|which|who|explain|describe|tell me|give|list|write|compose|create)\b", re.I)
_NO_OPINION = re.compile(r"\b(personal (opinions?|beliefs?|views?|preferences?|biases?)|(have|hold|form|express|provide|give|state) (an? |my )?(personal )?(opinions?|views?|beliefs?)|remain neutral|take sides)\b", re.I)
_AS_AI = _CUE_RX[2][1]

PROMPT_NAMES = ["has_prompt", "opinion_q", "yesno_q", "wh_q", "opinion_x_noop", "opinion_x_ai", "yesno_x_noop", "wh_x_noop"]


def prompt_features(items) -> np.ndarray:
    rows = []
    for item in items:
        p = normalize(prompt_of(item))
        if not p:
            rows.append([0.0] * len(PROMPT_NAMES))
            continue
        op = opening(resp(item))
        opin, yn, wh = float(bool(_OPINION_Q.search(p))), float(bool(_YESNO_Q.search(p))), float(bool(_WH_Q.search(p)))
        noop, ai = float(bool(_NO_OPINION.search(op))), float(bool(_AS_AI.search(op)))
        rows.append([1.0, opin, yn, wh, opin * noop, opin * ai, yn * noop, wh * noop])
    return np.asarray(rows, dtype=np.float64)
