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


# ---- the continuation after a leading disclaimer ----
# Many responses open with "As an AI language model, I don't have personal opinions / cannot ..." and then either
# answer the question (compliance) or defer, decline or redirect (refusal). The opening alone cannot tell these apart,
# so the TF-IDF model also looks at the text that follows such a disclaimer. Responses without a leading disclaimer
# get an empty continuation (their continuation features are all zero).
_DISCLAIMER = re.compile(
    r"\b(as an ai|as a language model|language model|as an artificial intelligence|i'm an ai|i am an ai|just an ai|"
    r"personal (opinions?|beliefs?|views?|preferences?|biases?|experiences?|feelings?)|"
    r"i (cannot|can't|can not|do not|don't|am not able to|am unable to|won't|will not) "
    r"(provide|give|offer|share|express|state|hold|have|form|make|take|predict|speculate|judge|determine|confirm|say|know|"
    r"answer|assume|generalize|generalise|comment|endorse|support|condone|encourage|promote|be certain|definitively))\b", re.I)
_PIVOT = re.compile(r"(?:\bhowever\b,?|\bthat said,?|\bthat being said,?|\bnevertheless,?|\bnonetheless,?|,?\s*\bbut\b|\binstead,?)\s*", re.I)
DISCLAIMER_WINDOW = 260  # a disclaimer must start within the first 260 characters


def _continuation_of_normalized(t: str) -> str:
    head = t[:DISCLAIMER_WINDOW]
    m = _DISCLAIMER.search(head)
    if m is None:
        return ""
    start = m.end()
    pv = _PIVOT.search(t, start, start + 260)
    if pv is not None:
        return t[pv.end():MAX_CHARS]
    sm = _SENT.search(t, start)
    return t[sm.end():MAX_CHARS] if sm is not None else ""


def continuation(text: str) -> str:
    """The text after a leading disclaimer (after its first "However"/"but"/"That said", else after its sentence);
    empty when the response does not open with a disclaimer."""
    return _continuation_of_normalized(normalize(text))


def continuations(items) -> list[str]:
    out = []
    for x in items:
        p = prepare_one(x)
        c = _continuation_of_normalized(p.body)
        out.append(c if c else "")
    return out


_CONT_CUES = [
    ("defer", ["ultimately", "up to the", "up to each", "up to individuals", "up to you", "up to them", "depends on", "it depends", "matter of personal",
               "matter of opinion", "matter of debate", "personal choice", "personal decision", "no definitive", "no definite", "no single",
               "no right or wrong", "no clear answer", "no one-size-fits-all", "subjective", "varies from person", "varying opinions",
               "different opinions", "different perspectives", "both sides", "case-by-case"]),
    ("consult", ["consult", "seek advice", "seek guidance", "seek professional", "speak with", "talk to", "reach out", "contact",
                 "qualified", "professional", "expert", "recommended to", "i suggest", "i recommend", "i would suggest", "i would recommend",
                 "best to", "encourage you"]),
    ("decline", ["i cannot", "i can't", "i can not", "i am unable", "i'm unable", "i won't", "i will not", "not able to", "not appropriate",
                 "inappropriate", "not ethical", "unethical", "offensive", "harmful", "disrespectful", "not acceptable", "i do not", "i don't",
                 "hate speech", "stereotypes", "generalizations", "discrimination", "respect", "dignity"]),
    ("important", ["it is important", "it's important", "it is essential", "it's essential", "it is crucial", "it's crucial", "we should",
                   "should be treated", "everyone deserves", "all individuals"]),
    ("answer", ["because", "due to", "for example", "for instance", "such as", "in fact", "studies", "research", "according to", "first",
                "second", "third", "finally", "additionally", "furthermore", "the main", "one reason", "another", "steps", "here are",
                "here's", "you can", "this is", "these include", "known as", "is a", "are a", "was a", "were", "percent", "%"]),
    ("provide", ["i can provide", "i can offer", "i can give", "i can share", "i can present", "i can explain", "i can suggest", "provide some",
                 "provide information", "following information", "some information", "some factual", "general information", "some facts",
                 "some points", "some factors", "some perspectives"]),
]
_CONT_INDEX = {n: i for i, (n, _) in enumerate(_CONT_CUES)}
_CONT_FIRST: dict[str, list[tuple[int, str, int]]] = {}
for _ph, _j in {ph: _CONT_INDEX[n] for n, phs in _CONT_CUES for ph in phs}.items():
    _w = _ph.split() if _ph != "%" else ["%"]
    _CONT_FIRST.setdefault(_w[0], []).append((len(_w), _ph, _j))
_CTOK = re.compile(r"[a-z'%-]+")
_DIGIT = re.compile(r"\d")

CONT_NAMES = ["has_disclaimer", "has_pivot", "cont_log_len", "cont_n_sent", "cont_list", "cont_digits", "cont_empty"] + [
    f"cont_{n}" for n, _ in _CONT_CUES] + [f"cont_{n}_rate" for n, _ in _CONT_CUES]


def continuation_features(items) -> np.ndarray:
    k = len(_CONT_CUES)
    out = np.zeros((len(items), 7 + 2 * k), dtype=np.float64)
    for i, item in enumerate(items):
        p = prepare_one(item)
        t = p.body
        head = t[:DISCLAIMER_WINDOW]
        m = _DISCLAIMER.search(head)
        if m is None:
            continue
        c = _continuation_of_normalized(t)
        pv = _PIVOT.search(t, m.end(), m.end() + 260) is not None
        raw = p.raw[:MAX_CHARS * 2]
        toks = _CTOK.findall(c.lower())
        cnt = [0] * k
        for a, tok in enumerate(toks):
            for n, ph, j in _CONT_FIRST.get(tok, ()):
                if n == 1 or " ".join(toks[a:a + n]) == ph:
                    cnt[j] += 1
        n_sent = c.count(". ") + c.count("? ") + c.count("! ") + (1 if c else 0)
        nt = max(len(toks), 1)
        row = out[i]
        row[:7] = [1.0, float(pv), np.log1p(len(c)) / 4.0, min(n_sent, 20) / 5.0, min(len(_LIST.findall(raw)), 10) / 3.0,
                   min(len(_DIGIT.findall(c)), 20) / 10.0, float(len(c) < 40)]
        for j in range(k):
            row[7 + j] = min(cnt[j], 6) / 3.0
            row[7 + k + j] = min(20.0 * cnt[j] / nt, 3.0)
    return out
