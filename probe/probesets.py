"""Refusal-probing prompt sets (prompts/refusal/*.jsonl) as typed, validated data.

One JSON object per line: {"id", "text", "category", "expected", "harmful"}. The set name is the file stem and
is filled in by the loader, never stored in the file.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from probe import paths
from probe.datafiles import file_hash, parse_jsonl, read_text, text_hash
from probe.errors import DataFileError, ProbeError

CATEGORIES: tuple[str, ...] = (
    "illegal_acts",  # instructions for committing crimes
    "harmful_information",  # weapons, dangerous chemistry, self-harm methods
    "hate_harassment",  # demeaning groups, targeting individuals
    "privacy",  # doxxing, personal data of private people
    "offensive",  # insincere, loaded or stereotyping questions (Reuter & Schulze)
    "benign",  # ordinary helpful requests
    "safe_lookalike",  # safe prompts that only look unsafe (XSTest-style)
    "ill_posed",  # false premises, nonsense
    "knowledge_horizon",  # events after training, live data
    "model_self",  # the model's own feelings, body, identity, opinions
    "political_opinion",  # asks the model to take a side on a contested issue
)

Expected = Literal["refuse", "comply", "either"]


class _PromptFields(BaseModel):
    """The fields one line of a prompt file holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    text: str = Field(min_length=1)
    category: str
    expected: Expected
    harmful: bool

    @field_validator("text")
    @classmethod
    def _text(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("text is blank")
        return v

    @field_validator("category")
    @classmethod
    def _category(cls, v: str) -> str:
        if v not in CATEGORIES:
            raise ValueError(f"unknown category '{v}' (one of: {', '.join(CATEGORIES)})")
        return v


class ProbePrompt(_PromptFields):
    set: str = Field(min_length=1)


class ProbeSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    prompts: list[ProbePrompt] = Field(min_length=1)

    def __len__(self) -> int:
        return len(self.prompts)

    def prompt(self, pid: str) -> ProbePrompt:
        return next(p for p in self.prompts if p.id == pid)

    def by_category(self) -> dict[str, list[ProbePrompt]]:
        out: dict[str, list[ProbePrompt]] = {}
        for p in self.prompts:
            out.setdefault(p.category, []).append(p)
        return out


def available() -> list[str]:
    return sorted(p.stem for p in paths.REFUSALS.glob("*.jsonl"))


def resolve(name_or_path: str | Path) -> Path:
    """A set name (prompts/refusal/NAME.jsonl) or a path to a .jsonl file."""
    p = Path(name_or_path)
    if p.suffix == ".jsonl" and p.is_file():
        return p
    p = paths.REFUSALS / f"{name_or_path}.jsonl"
    if not p.is_file():
        raise ProbeError(f"unknown prompt set '{name_or_path}' (available: {', '.join(available()) or 'none'})")
    return p


def loads(text: str, source: str | Path) -> ProbeSet:
    """A prompt set from JSONL text; source is the file name errors give (and whose stem names the set)."""
    rows = parse_jsonl(text, source, _PromptFields)
    if not rows:
        raise DataFileError(source, "no prompts")
    first: dict[str, int] = {}
    for line, row in rows:
        if row.id in first:
            raise DataFileError(source, f"duplicate id '{row.id}' (first on line {first[row.id]})", line=line,
                                field="id")
        first[row.id] = line
    name = Path(source).stem
    return ProbeSet(name=name, sha256=text_hash(text),
                    prompts=[ProbePrompt(set=name, **row.model_dump()) for _, row in rows])


def load_file(path: str | Path) -> ProbeSet:
    return loads(read_text(path), path)


@lru_cache(maxsize=32)
def _load_cached(path: str, digest: str) -> ProbeSet:
    return load_file(path)


def load(name_or_path: str | Path) -> ProbeSet:
    """A prompt set by name or path; cached per file content."""
    p = resolve(name_or_path)
    return _load_cached(str(p), file_hash(p))
