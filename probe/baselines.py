"""Population baselines: shipped tables, user tables built from ACS PUMS microdata, and the uniform baseline.

A baseline table (YAML) is `{name, title, year, variables: {VAR: {universe, source, year, notes, shares,
combined}}}`. `shares` maps an option code to its share; `combined` maps a group of codes that the source
publishes only together ("2+3") to their joint share. Every option code of the question appears exactly once,
in `shares` or in a `combined` group, and the shares add up to 1 within 0.01 (published figures are rounded).
A variable with `combined` groups is *partial*: `shares_for` gives None for it (the report shows "no baseline"),
because splitting a merged figure would invent numbers. `shares_for` renormalises complete tables to sum to 1.

Where tables live: shipped ones in prompts/baselines/NAME.yaml; user-built ones in data_dir()/baselines/NAME.yaml
(probe.pums builds them from ACS PUMS microdata, one more per state with by_state, named NAME_ST).
"uniform" is built in code for every question of a questionnaire.

JSON shape of `probe baselines show NAME --format json` (`to_text_json`): `{VAR: {option_text: share, ...}}`
with the option texts exactly as shown to the model, plus reserved keys that start with "_" (option texts never
do): `_universe`, `_source`, `_year`, `_notes` per variable, `_combined` ({"text A + text B": share}) for partial
variables, and a top-level `_baseline` ({name, title, year}).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from probe import paths
from probe.datafiles import load_yaml
from probe.errors import DataFileError, ProbeError
from probe.questionnaires import Question, Questionnaire
from probe.questionnaires import load as load_questionnaire

UNIFORM = "uniform"

_GROUP = re.compile(r"^\d+(\+\d+)+$")


class VariableBaseline(BaseModel):
    model_config = ConfigDict(extra="forbid")
    universe: str = Field(min_length=1)
    source: str = Field(min_length=1)
    year: str = ""
    notes: str = ""
    shares: dict[int, float] = {}
    combined: dict[str, float] = {}  # "2+3": share of codes published only together
    unpublished: list[int] = []  # codes the source gives no figure for (e.g. outside its universe)
    n_records: int | None = None
    weight_sum: float | None = None

    @field_validator("combined")
    @classmethod
    def _groups(cls, v: dict[str, float]) -> dict[str, float]:
        for k in v:
            if not _GROUP.match(k.replace(" ", "")):
                raise ValueError(f"combined key '{k}' must be codes joined by '+', e.g. '2+3'")
        return {k.replace(" ", ""): s for k, s in v.items()}

    @model_validator(mode="after")
    def _valid(self):
        if not self.shares and not self.combined:
            raise ValueError("no shares")
        if any(not 0.0 <= s <= 1.0 for s in [*self.shares.values(), *self.combined.values()]):
            raise ValueError("shares must lie in [0, 1]")
        codes = self.codes
        if len(codes) != len(set(codes)):
            raise ValueError(f"an option code appears twice in shares/combined: {codes}")
        total = sum(self.shares.values()) + sum(self.combined.values())
        if abs(total - 1.0) > 0.01:
            raise ValueError(f"shares sum to {total:.4f}, not 1 (within 0.01)")
        return self

    @property
    def codes(self) -> list[int]:
        return [*self.shares, *(int(c) for k in self.combined for c in k.split("+")), *self.unpublished]

    @property
    def complete(self) -> bool:
        return not self.combined and not self.unpublished


class Baseline(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9_\-]+$")
    title: str = ""
    year: int | None = None
    notes: str = ""
    variables: dict[str, VariableBaseline] = {}

    def shares_for(self, var: str) -> dict[int, float] | None:
        """Option code -> share (renormalised to sum 1) for a complete variable; None if absent or partial."""
        v = self.variables.get(var)
        if v is None or not v.complete:
            return None
        total = sum(v.shares.values())
        return {c: s / total for c, s in v.shares.items()}

    def vector_for(self, question: Question) -> np.ndarray | None:
        """Shares in the question's form order, or None (absent, partial, or an option without a share)."""
        shares = self.shares_for(question.id)
        if shares is None or set(shares) != set(question.codes):
            return None
        return np.array([shares[c] for c in question.codes])


# ---------------------------------------------------------------------------------------------- loading


def user_dir() -> Path:
    return paths.data_dir() / "baselines"


def available() -> list[str]:
    """Names of every baseline: shipped, user-built, and 'uniform'."""
    names = {p.stem for p in paths.BASELINES.glob("*.yaml")}
    d = user_dir()
    if d.is_dir():
        names |= {p.stem for p in d.glob("*.yaml")}
    return [UNIFORM, *sorted(names - {UNIFORM})]


def origin(name: str) -> str:
    if name == UNIFORM:
        return "built in"
    return "shipped" if (paths.BASELINES / f"{name}.yaml").exists() else "user"


def uniform(questionnaire: Questionnaire) -> Baseline:
    k_note = "1/k for each of the k options"
    return Baseline(
        name=UNIFORM,
        title="Uniform over each question's options",
        variables={
            q.id: VariableBaseline(
                universe="uniform over the question's options",
                source=f"built in ({k_note})",
                shares={c: 1.0 / len(q.codes) for c in q.codes},
            )
            for q in questionnaire.questions
        },
    )


def as_questionnaire(questionnaire: Questionnaire | str) -> Questionnaire:
    return load_questionnaire(questionnaire) if isinstance(questionnaire, str) else questionnaire


def resolve(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    for d in (paths.BASELINES, user_dir()):
        if (p := d / f"{name_or_path}.yaml").is_file():
            return p
    raise ProbeError(f"unknown baseline '{name_or_path}' (available: {', '.join(available())})")


def check(baseline: Baseline, questionnaire: Questionnaire, path: Path | str = "") -> None:
    """Every variable is a question of the questionnaire and accounts for each of its option codes once."""
    ids = {q.id for q in questionnaire.questions}
    for var, v in baseline.variables.items():
        if var not in ids:
            raise DataFileError(path, f"'{var}' is not a question of {questionnaire.name}", field=f"variables.{var}")
        codes = questionnaire.question(var).codes
        if sorted(v.codes) != sorted(codes):
            raise DataFileError(
                path, f"codes {sorted(v.codes)} do not match the options {sorted(codes)}", field=f"variables.{var}"
            )


def load(name: str, questionnaire: Questionnaire | str = "acs2019") -> Baseline:
    """A baseline by name (or path to a YAML table), checked against the questionnaire."""
    qn = as_questionnaire(questionnaire)
    if name == UNIFORM:
        return uniform(qn)
    path = resolve(name)
    b = load_yaml(path, Baseline)
    check(b, qn, path)
    return b


def to_text_json(baseline: Baseline, questionnaire: Questionnaire | str = "acs2019") -> dict:
    """`{VAR: {option_text: share, _universe, _source, ...}}` in questionnaire order; see the module docstring."""
    qn = as_questionnaire(questionnaire)
    out: dict = {"_baseline": {"name": baseline.name, "title": baseline.title, "year": baseline.year}}
    for q in qn.questions:
        v = baseline.variables.get(q.id)
        if v is None:
            continue
        shares = baseline.shares_for(q.id) or v.shares
        entry: dict = {q.text_of(c): shares[c] for c in q.codes if c in shares}
        if v.combined:
            entry["_combined"] = {
                " + ".join(q.text_of(int(c)) for c in k.split("+")): s for k, s in v.combined.items()
            }
        if v.unpublished:
            entry["_unpublished"] = [q.text_of(c) for c in v.unpublished]
        entry.update({"_universe": v.universe, "_source": v.source})
        if v.year:
            entry["_year"] = v.year
        if v.notes:
            entry["_notes"] = v.notes
        out[q.id] = entry
    return out


def save(baseline: Baseline, directory: Path | None = None) -> Path:
    d = Path(directory) if directory else user_dir()
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{baseline.name}.yaml"
    data = baseline.model_dump(exclude_none=True)
    for v in data["variables"].values():
        for k in ("combined", "notes", "year"):
            if not v.get(k):
                v.pop(k, None)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110), encoding="utf-8")
    return path
