"""probe.baselines: the table model, loading, shipped tables, `probe baselines list/show`."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from probe import baselines as B
from probe.errors import DataFileError, ProbeError


pytestmark = pytest.mark.usefixtures("isolated_home")


# ----------------------------------------------------------------------------- the table model and loading


def _var(**kw):
    base = {"universe": "u", "source": "s", "shares": {1: 0.5, 2: 0.5}}
    return B.VariableBaseline.model_validate({**base, **kw})


def test_variable_validation():
    assert _var().complete
    with pytest.raises(ValidationError, match="sum to"):
        _var(shares={1: 0.5, 2: 0.3})
    _var(shares={1: 0.503, 2: 0.5})  # rounding within 0.01 is accepted
    with pytest.raises(ValidationError, match="twice"):
        _var(shares={1: 0.5}, combined={"1+2": 0.5})
    with pytest.raises(ValidationError, match="joined by"):
        _var(shares={1: 0.5}, combined={"two": 0.5})
    with pytest.raises(ValidationError):
        _var(universe="")
    with pytest.raises(ValidationError):
        _var(source="")


def test_shares_for_renormalises_and_refuses_partial(qn):
    b = B.Baseline(name="t", variables={
        "SEX": _var(shares={1: 0.501, 2: 0.501}),
        "CIT": _var(shares={1: 0.8, 4: 0.1, 5: 0.05}, combined={"2+3": 0.05}),
    })
    assert b.shares_for("SEX") == pytest.approx({1: 0.5, 2: 0.5})
    assert b.shares_for("CIT") is None
    assert b.shares_for("HICOV") is None
    assert list(b.vector_for(qn.question("SEX"))) == pytest.approx([0.5, 0.5])
    assert b.vector_for(qn.question("CIT")) is None


def test_check_against_questionnaire(tmp_path, qn, monkeypatch):
    d = tmp_path / "home" / "baselines"
    d.mkdir(parents=True)
    (d / "wrongvar.yaml").write_text(
        "name: wrongvar\nvariables:\n  NOPE: {universe: u, source: s, shares: {1: 1.0}}\n", encoding="utf-8")
    (d / "wrongcode.yaml").write_text(
        "name: wrongcode\nvariables:\n  SEX: {universe: u, source: s, shares: {1: 0.5, 3: 0.5}}\n", encoding="utf-8")
    (d / "badsum.yaml").write_text(
        "name: badsum\nvariables:\n  SEX:\n    universe: u\n    source: s\n    shares: {1: 0.5, 2: 0.2}\n",
        encoding="utf-8")
    with pytest.raises(DataFileError, match="'NOPE' is not a question"):
        B.load("wrongvar", qn)
    with pytest.raises(DataFileError, match="do not match"):
        B.load("wrongcode", qn)
    with pytest.raises(DataFileError, match=r"badsum\.yaml:4:.*sum to"):
        B.load("badsum", qn)
    with pytest.raises(ProbeError, match="unknown baseline 'nosuch'"):
        B.load("nosuch", qn)


def test_uniform_and_available(qn):
    assert B.available()[0] == "uniform" and "us_2019" in B.available()
    u = B.load("uniform", qn)
    assert set(u.variables) == {q.id for q in qn.questions}
    assert u.shares_for("JWTRNS") == pytest.approx({c: 1 / 12 for c in qn.question("JWTRNS").codes})
    assert B.origin("uniform") == "built in" and B.origin("us_2019") == "shipped"


def test_shipped_us_2019_coverage(qn):
    b = B.load("us_2019", qn)
    assert b.shares_for("WRK") is None and "WRK" not in b.variables
    assert b.shares_for("AGER") is None  # published only with codes 3-6 merged
    assert b.shares_for("HICOV") == pytest.approx({1: 0.908, 2: 0.092})
    assert sum(b.shares_for("RAC1PR").values()) == pytest.approx(1.0)


def test_to_text_json(qn):
    b = B.load("us_2019", qn)
    j = B.to_text_json(b, qn)
    assert j["_baseline"]["name"] == "us_2019"
    assert j["SEX"]["Male"] == pytest.approx(0.49246) and j["SEX"]["Female"] == pytest.approx(0.50754)
    assert j["HICOV"]["_year"] == "ACS 2019" and "P60-271" in j["HICOV"]["_source"]
    assert j["SEX"]["_universe"]
    assert "WRK" not in j
    assert j["CIT"]["_combined"] == {
        "Yes, born in Puerto Rico, Guam, the U.S. Virgin Islands, or Northern Marianas + "
        "Yes, born abroad of U.S. citizen parent or parents": pytest.approx(0.01626)
    }
    for var, entry in j.items():
        if var.startswith("_"):
            continue
        texts = {o.text for o in qn.question(var).options}
        assert {k for k in entry if not k.startswith("_")} <= texts
    json.dumps(j)


# ----------------------------------------------------------------------------- CLI


@pytest.fixture
def runner():
    return CliRunner()


def _app():
    from probe.cli.main import app

    return app


def test_cli_list(runner):
    r = runner.invoke(_app(), ["baselines", "list"])
    assert r.exit_code == 0, r.output
    assert "uniform" in r.output and "us_2019" in r.output


def test_cli_show_json(runner):
    r = runner.invoke(_app(), ["baselines", "show", "us_2019", "--format", "json"])
    assert r.exit_code == 0, r.output
    j = json.loads(r.stdout)
    assert j["SEX"]["Male"] == pytest.approx(0.49246)
    assert "_universe" in j["SEX"] and "_source" in j["SEX"]
    r = runner.invoke(_app(), ["baselines", "show", "uniform", "--survey", "acs2019", "--format", "json"])
    assert json.loads(r.stdout)["SEX"]["Female"] == 0.5


def test_cli_show_table(runner):
    r = runner.invoke(_app(), ["baselines", "show", "us_2019"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "no baseline" in r.output and "P60-271" in r.output
