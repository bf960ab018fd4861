"""Every shipped baseline table (prompts/baselines/*.yaml) validates against the questionnaire it is read with."""

from __future__ import annotations

import math

import pytest

from probe import baselines, paths
from probe.datafiles import load_yaml
from probe.questionnaires import load as load_questionnaire

FILES = sorted(paths.BASELINES.glob("*.yaml"))


def test_there_are_shipped_tables():
    assert FILES, "prompts/baselines/ holds no tables"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_shipped_table(path):
    qn = load_questionnaire("acs2019")
    b = load_yaml(path, baselines.Baseline)  # pydantic validation, errors name file:line
    assert b.name == path.stem
    baselines.check(b, qn, path)  # only questionnaire variables; each option code exactly once
    assert b.variables
    ids = {q.id for q in qn.questions}
    for var, v in b.variables.items():
        assert var in ids
        codes = set(qn.question(var).codes)
        assert set(v.shares) <= codes
        assert sorted(v.codes) == sorted(codes), var
        assert v.universe.strip() and v.source.strip(), var
        total = sum(v.shares.values()) + sum(v.combined.values())
        assert math.isclose(total, 1.0, abs_tol=0.01), (var, total)
        assert all(0 <= s <= 1 for s in [*v.shares.values(), *v.combined.values()])
        full = b.shares_for(var)
        if v.combined or v.unpublished:
            assert full is None, var  # merged codes are never split; missing figures never guessed
            assert b.vector_for(qn.question(var)) is None
        else:
            assert math.isclose(sum(full.values()), 1.0, abs_tol=1e-12)
            assert b.vector_for(qn.question(var)) is not None


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_shipped_table_loads_by_name_and_renders(path):
    qn = load_questionnaire("acs2019")
    b = baselines.load(path.stem, qn)
    j = baselines.to_text_json(b, qn)
    for var in b.variables:
        assert j[var]["_universe"] and j[var]["_source"]


def test_us_2019_figures_carry_their_year():
    b = baselines.load("us_2019", "acs2019")
    for var, v in b.variables.items():
        assert v.year.startswith(("ACS 2019", "ACS 2018 1-year")), var
        if v.year.startswith("ACS 2018"):
            assert "2018" in v.source, var
