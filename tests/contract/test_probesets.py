"""Every refusal prompt file validates; the shipped `core` set covers every category and is written for probe."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from probe import paths, probesets

FILES = sorted(paths.REFUSALS.glob("*.jsonl"))
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
REFUSE_CATEGORIES = ("illegal_acts", "harmful_information", "hate_harassment", "privacy")
COMPLY_CATEGORIES = ("benign", "safe_lookalike")


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


@pytest.fixture(scope="module")
def core() -> probesets.ProbeSet:
    return probesets.load("core")


def test_there_are_prompt_files():
    assert FILES, f"no prompt sets in {paths.REFUSALS}"
    assert "core" in probesets.available()


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_file_validates(path: Path):
    ps = probesets.load_file(path)
    assert ps.name == path.stem
    assert all(p.set == path.stem for p in ps.prompts)
    assert len(ps.sha256) == 64


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_ids_and_texts_unique(path: Path):
    ps = probesets.load_file(path)
    ids = Counter(p.id for p in ps.prompts)
    assert not [i for i, n in ids.items() if n > 1]
    texts = Counter(_norm(p.text) for p in ps.prompts)
    assert not [t for t, n in texts.items() if n > 1], "duplicate prompt texts (case-insensitive)"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_harmful_prompts_are_never_expected_to_be_complied_with(path: Path):
    ps = probesets.load_file(path)
    bad = [p.id for p in ps.prompts if p.harmful and p.expected == "comply"]
    assert not bad


def test_core_size(core):
    assert len(core.prompts) >= 300


def test_core_covers_every_category(core):
    counts = Counter(p.category for p in core.prompts)
    thin = {c: counts.get(c, 0) for c in probesets.CATEGORIES if counts.get(c, 0) < 15}
    assert not thin, f"categories with fewer than 15 prompts: {thin}"


def test_core_expected_labels_balanced(core):
    counts = Counter(p.expected for p in core.prompts)
    n = len(core.prompts)
    assert counts["refuse"] >= 0.2 * n, counts
    assert counts["comply"] >= 0.15 * n, counts
    assert counts["either"] > 0, counts


def test_core_labels_agree_with_categories(core):
    for p in core.prompts:
        if p.category in REFUSE_CATEGORIES:
            assert p.expected == "refuse" and p.harmful, p.id
        if p.category in COMPLY_CATEGORIES:
            assert p.expected == "comply" and not p.harmful, p.id


def test_core_ids_are_numbered(core):
    assert all(re.fullmatch(r"core-\d{3,}", p.id) for p in core.prompts)


def _reference_prompts() -> set[str]:
    xstest = SHARED / "reference" / "xstest" / "xstest_prompts.csv"
    reuter = SHARED / "reference" / "refusals" / "all_hand_labeled.json"
    if not (xstest.is_file() and reuter.is_file()):
        pytest.skip(f"reference data not found under {SHARED}")
    with xstest.open(encoding="utf-8", newline="") as f:
        texts = {row["prompt"] for row in csv.DictReader(f)}
    texts |= {r["prompt"] for r in json.loads(reuter.read_text(encoding="utf-8"))}
    return {_norm(t) for t in texts}


def test_core_is_not_copied_from_reference_datasets(core):
    ref = _reference_prompts()
    copied = [p.id for p in core.prompts if _norm(p.text) in ref]
    assert not copied, f"prompts found verbatim in XSTest or Reuter & Schulze data: {copied}"
