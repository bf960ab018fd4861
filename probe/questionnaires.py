"""Questionnaires (survey question files in prompts/surveys/) as typed, validated data."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from probe import paths
from probe.datafiles import file_hash, parse_yaml, read_text
from probe.errors import ProbeError


class Option(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: int
    text: str = Field(min_length=1)


class Recode(BaseModel):
    """How a PUMS person record maps to an option code: identity, or right-closed bins with labels."""

    model_config = ConfigDict(extra="forbid")
    pums_var: str
    bin_edges: list[float] | None = None
    labels: list[int] | None = None
    missing: int | None = None  # code given to records where the variable is blank (else they are dropped)

    @model_validator(mode="after")
    def _bins(self):
        if (self.bin_edges is None) != (self.labels is None):
            raise ValueError("bin_edges and labels go together")
        if self.bin_edges is not None and len(self.bin_edges) != len(self.labels) + 1:
            raise ValueError("bin_edges needs one more entry than labels")
        return self


class Signal(BaseModel):
    """The signal test's binary task for a variable (the paper's signal_test.py): y = (code >= split). Predictors
    that the form's skip logic ties to the target are dropped automatically; `drop` names any others."""

    model_config = ConfigDict(extra="forbid")
    split: int
    drop: list[str] = []


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    text: str = Field(min_length=1)
    options: list[Option] = Field(min_length=2, max_length=26)
    anchored: list[int] = []  # option codes that keep their form position when the others are shuffled
    asked_if: str = "always asked"
    ordered: bool = False  # options form an ordinal scale (ages, income bands): Wasserstein distance applies
    recode: Recode | None = None
    # The form's skip rule as data: asked only when every named earlier question's answer is among the codes
    # listed (a question answered invalidly, or itself not asked, fails the rule). None: always asked.
    ask_when: dict[str, list[int]] | None = None
    # The PUMS builder blanks this variable where ask_when fails (the paper's census masks, process_acs.py);
    # without it the census file's own blanks stand (its universes match the form's closely, not exactly).
    census_mask: bool = False
    signal: Signal | None = None  # the whole-questionnaire signal test's binary target for this variable

    @model_validator(mode="after")
    def _options(self):
        codes = [o.code for o in self.options]
        if len(set(codes)) != len(codes):
            raise ValueError(f"duplicate option code in {codes}")
        texts = [o.text for o in self.options]
        if len(set(texts)) != len(texts):
            raise ValueError("duplicate option text")
        if missing := set(self.anchored) - set(codes):
            raise ValueError(f"anchored codes {sorted(missing)} are not option codes")
        if self.recode and self.recode.labels and (bad := set(self.recode.labels) - set(codes)):
            raise ValueError(f"recode labels {sorted(bad)} are not option codes")
        return self

    @property
    def codes(self) -> list[int]:
        return [o.code for o in self.options]

    def asked(self, answers: dict) -> bool:
        """Whether the form asks this question, given the answers so far ({VAR: code or None})."""
        return all(answers.get(var) in codes for var, codes in (self.ask_when or {}).items())

    def text_of(self, code: int) -> str:
        return next(o.text for o in self.options if o.code == code)


class Questionnaire(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9_\-]+$")
    title: str = ""
    source: str = ""
    questions: list[Question] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self):
        ids = [q.id for q in self.questions]
        if dup := {i for i in ids if ids.count(i) > 1}:
            raise ValueError(f"duplicate question id {sorted(dup)}")
        seen: dict[str, Question] = {}
        for q in self.questions:
            for var, codes in (q.ask_when or {}).items():
                if var not in seen:
                    raise ValueError(f"{q.id}: ask_when names '{var}', which is not an earlier question")
                if bad := set(codes) - set(seen[var].codes):
                    raise ValueError(f"{q.id}: ask_when codes {sorted(bad)} are not options of {var}")
            if q.census_mask and not q.ask_when:
                raise ValueError(f"{q.id}: census_mask needs an ask_when rule")
            seen[q.id] = q
        for q in self.questions:
            if q.signal is not None:
                if q.signal.split not in q.codes or q.signal.split == min(q.codes):
                    raise ValueError(f"{q.id}: signal.split {q.signal.split} must be an option code above the lowest")
                if bad := set(q.signal.drop) - set(ids):
                    raise ValueError(f"{q.id}: signal.drop names unknown questions {sorted(bad)}")
        return self

    def question(self, qid: str) -> Question:
        return next(q for q in self.questions if q.id == qid)


def available() -> list[str]:
    return sorted(p.stem for p in paths.SURVEYS.glob("*.yaml"))


def resolve(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    p = paths.SURVEYS / f"{name_or_path}.yaml"
    if not p.exists():
        raise ProbeError(f"unknown survey '{name_or_path}' (available: {', '.join(available())})")
    return p


def loads(text: str, source: str | Path) -> Questionnaire:
    """A questionnaire from YAML text; source is the file name errors give."""
    return parse_yaml(text, source, Questionnaire)


def load_file(path: str | Path) -> Questionnaire:
    return loads(read_text(path), path)


@lru_cache(maxsize=32)
def _load_cached(path: str, digest: str) -> Questionnaire:
    return load_file(path)


def load(name_or_path: str) -> Questionnaire:
    """A questionnaire by name (prompts/surveys/NAME.yaml) or path; cached per file content."""
    p = resolve(name_or_path)
    return _load_cached(str(p), file_hash(p))
