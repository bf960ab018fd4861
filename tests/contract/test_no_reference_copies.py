"""Copy guard: no training or golden text repeats the external reference sets.

Every text we train or test the refusal classifiers on (classifiers/data/*.jsonl, the template strings of
classifiers/data/*.py, tests/data/*.jsonl, prompts/refusal/*.jsonl) is compared with every text of every set under
../shared/reference/ (Reuter & Schulze's prompts and responses, XSTest's prompts and completions, the ACS questions):
lower-cased, punctuation dropped, split into words. A text fails if it shares any run of 8 words with a reference
text, if it is a whole short reference text (3-7 words, e.g. an XSTest prompt), or if it contains one of 5-7 words.
The only exceptions are the stock phrases listed in STOCK, each with the reason it is not a copy. Skips cleanly when
../shared is absent.
"""

from __future__ import annotations

import ast
import csv
import json
import re
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "reference"
N = 8  # shingle length in words
SHORT_MIN, CONTAIN_MIN = 3, 5  # whole-text matches from 3 words, containment from 5 (4-word runs are common English)

# Formulaic phrases that chat models (and therefore both reference sets and our own voices) use everywhere. A match
# that lies wholly inside one of these is not a copy of a reference sentence: each is a formula of the genre, not a
# sentence only a reference set contains. "*" stands for any one word, so a formula may carry its first few words of
# continuation (the verb and object after "As an AI language model, I", a pivot word after a disclaimer); a longer
# continuation still fails.
STOCK: dict[str, str] = {
    "i'm sorry but i can't assist with that":
        "the canonical one-line refusal of chat assistants; the terse refusal voice is built from it",
    "as an ai language model i * * *":
        "the 2023 chat-model opener with at most three words of what follows ('I cannot provide', 'I do not have'): "
        "hundreds of Reuter responses open with it, and our AI-voice refusals and caveat-then-answer voices must too",
    "as an ai language model i do not have personal * *":
        "the no-opinion disclaimer ('... personal opinions/beliefs/experience') plus its pivot word ('However', 'but')",
    "as an ai language model i don't have personal * *":
        "the contracted form of the same disclaimer plus its pivot word",
    "i'm sorry as an ai language model i *":
        "the apologetic form of the opener (our apologetic voice prefixes 'I'm sorry,' to it)",
    "as an ai i do not have personal * or *":
        "the short form of the no-opinion disclaimer ('As an AI, I do not have personal opinions or beliefs')",
    "i do not have personal * or * *":
        "the bare no-opinion disclaimer plus the next word ('... opinions or beliefs. However')",
}


def tokens(text: str) -> tuple[str, ...]:
    t = text.casefold().replace("\u2019", "'").replace("\u2018", "'").replace("`", "'").replace("\u00b4", "'")
    return tuple(re.findall(r"[^\W_]+(?:'[^\W_]+)*", t))


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def reference_texts(folder: Path) -> dict[str, set[tuple[str, ...]]]:
    """Every string value of every .json and every cell of every .csv under `folder`, by set (first folder level)."""
    csv.field_size_limit(1 << 30)
    out: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for f in sorted(folder.rglob("*")):
        if f.suffix == ".json":
            texts = set(_strings(json.loads(f.read_text(encoding="utf-8"))))
        elif f.suffix == ".csv":
            with f.open(encoding="utf-8", newline="") as fh:
                texts = {cell for row in csv.reader(fh) for cell in row}
        else:
            continue
        name = f.relative_to(folder).parts[0]
        for s in texts:
            t = tokens(s)
            if len(t) >= SHORT_MIN:
                out[name].add(t)
    return out


class Index:
    """Reference shingles (8 words) and short reference texts (3-7 words), each mapped to the set it came from."""

    def __init__(self, sets: dict[str, set[tuple[str, ...]]]):
        self.shingles: dict[tuple[str, ...], str] = {}
        self.short: dict[tuple[str, ...], str] = {}
        self.short_by_first: dict[str, list[tuple[str, ...]]] = defaultdict(list)
        for name in sorted(sets):
            for t in sets[name]:
                if len(t) < N:
                    if t not in self.short:
                        self.short[t] = name
                        if len(t) >= CONTAIN_MIN:
                            self.short_by_first[t[0]].append(t)
                for i in range(len(t) - N + 1):
                    self.shingles.setdefault(t[i:i + N], name)
        self.stock = [tuple("*" if w == "*" else tokens(w)[0] for w in p.split()) for p in STOCK]
        self.used: set[str] = set()  # the stock phrases that excused some match

    def is_stock(self, run: tuple[str, ...]) -> bool:
        """Whether `run` lies wholly inside a stock phrase ("*" matches any one word)."""
        k = len(run)
        for p in self.stock:
            for i in range(len(p) - k + 1):
                window = p[i:i + k]
                if sum(a != "*" for a in window) < min(k, 5):
                    continue  # a wildcard excuses a word only beside at least five fixed ones
                if all(a == "*" or a == b for a, b in zip(window, run)):
                    self.used.add(" ".join(p))
                    return True
        return False

    def overlaps(self, text: str) -> list[tuple[str, str]]:
        """(matched words, reference set) for every copied run in `text`: maximal runs of shared 8-word shingles,
        a whole short reference text, or a contained 5-7 word reference text; stock phrases excepted."""
        t = tokens(text)
        found = []
        hit = [False] * len(t)
        src = {}
        for i in range(len(t) - N + 1):
            g = t[i:i + N]
            if g in self.shingles and not self.is_stock(g):
                src.setdefault(i, self.shingles[g])
                for j in range(i, i + N):
                    hit[j] = True
        i = 0
        while i < len(t):
            if hit[i]:
                j = i
                while j < len(t) and hit[j]:
                    j += 1
                found.append((" ".join(t[i:j]), next(v for k, v in src.items() if i <= k < j)))
                i = j
            else:
                i += 1
        if t in self.short and not self.is_stock(t):
            found.append((" ".join(t), self.short[t]))
        for i, w in enumerate(t):
            for s in self.short_by_first.get(w, ()):
                if t[i:i + len(s)] == s and s != t and not self.is_stock(s):
                    found.append((" ".join(s), self.short[s]))
        return found


def our_texts() -> list[tuple[str, str]]:
    """(location, text) for every training, golden and probe-set text, and every template string of the generator
    (split at its {placeholders}, since the parts are what end up verbatim in the data)."""
    out = []
    files = [*sorted((ROOT / "classifiers" / "data").glob("*.jsonl")), *sorted((ROOT / "tests" / "data").glob("*.jsonl")),
             *sorted((ROOT / "prompts" / "refusal").glob("*.jsonl"))]
    for f in files:
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                for key, v in json.loads(line).items():
                    if isinstance(v, str):
                        out.append((f"{f.relative_to(ROOT)}:{n}:{key}", v))
    for f in sorted((ROOT / "classifiers" / "data").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for part in re.split(r"\{[^{}]*\}", node.value):
                    out.append((f"{f.relative_to(ROOT)}:{node.lineno}", part))
    return out


@lru_cache(maxsize=1)
def _index() -> Index:
    return Index(reference_texts(REFERENCE))


@pytest.fixture(scope="module")
def index() -> Index:
    if not REFERENCE.is_dir():
        pytest.skip(f"reference data not found under {REFERENCE}")
    return _index()


def test_reference_sets_are_all_read(index):
    # refusals (Reuter & Schulze), xstest, acs: prompts, responses and completions all feed the index
    assert {"refusals", "xstest", "acs"} <= set(index.shingles.values())
    assert len(index.shingles) > 300_000


def test_guard_catches_planted_copies(index):
    with (REFERENCE / "xstest" / "xstest_prompts.csv").open(encoding="utf-8", newline="") as fh:
        prompts = [row["prompt"] for row in csv.DictReader(fh)]
    short = next(p for p in prompts if 3 <= len(tokens(p)) < CONTAIN_MIN)
    contained = next(p for p in prompts if CONTAIN_MIN <= len(tokens(p)) < N)
    reuter = json.loads((REFERENCE / "refusals" / "all_hand_labeled.json").read_text(encoding="utf-8"))
    sentence = next(r["response"] for r in reuter if len(tokens(r["response"])) > 40)
    excerpt = " ".join(sentence.split()[10:22])
    assert index.overlaps(short.upper() + "!!")  # case and punctuation do not hide a copy
    assert index.overlaps(f"Q: {contained} A: something else entirely")
    assert index.overlaps(f"Our own opening words. {excerpt} And our own ending.")
    assert not index.overlaps("I'm sorry, but I can't assist with that.")  # stock, listed in STOCK
    assert index.overlaps("I'm sorry, but I can't assist with that. " + excerpt)
    wild = next(" ".join(t) for t in sorted(index.shingles) if t[:6] == tokens("as an ai language model i"))
    assert not index.overlaps(wild)  # the opener plus two words is stock ...
    longer = next(r["response"] for r in reuter if tokens(r["response"])[:6] == tokens("as an ai language model i")
                  and len(tokens(r["response"])) > 20)
    assert index.overlaps(longer)  # ... but a reference response that opens with it is not


def test_stock_phrases_have_reasons_and_are_short():
    for phrase, reason in STOCK.items():
        words = phrase.split()
        assert 7 <= len(words) <= 12 and all(w == "*" or (w,) == tokens(w) for w in words), phrase
        assert words.count("*") <= 3 and len(words) - words.count("*") >= 6, phrase  # mostly fixed words
        assert len(reason) > 40, phrase


@pytest.fixture(scope="module")
def scan(index) -> tuple[dict[tuple[str, str], list[str]], set[str]]:
    """(copied run, reference set) -> locations, over all our texts; and the stock phrases that excused a match."""
    index.used.clear()
    copies: dict[tuple[str, str], list[str]] = defaultdict(list)
    for loc, text in our_texts():
        for run, ref in index.overlaps(text):
            copies[(run, ref)].append(loc)
    return copies, set(index.used)


def test_stock_phrases_are_still_needed(scan):
    """An allowance that no text needs any more should be deleted, so the list stays an honest record."""
    unused = [p for p in STOCK if p not in scan[1]]
    assert not unused, unused


def test_no_training_or_golden_text_copies_a_reference_set(scan):
    copies = scan[0]
    report = [f"{ref}: {run!r} in {len(locs)} place(s), e.g. {locs[0]}" for (run, ref), locs in
              sorted(copies.items(), key=lambda kv: -len(kv[1]))]
    assert not report, f"{len(report)} passages shared with ../shared/reference:\n" + "\n".join(report[:40])
