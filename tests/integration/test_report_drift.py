"""`probe report` reads the questions the campaign stored and flags prompt files edited on disk since."""

from __future__ import annotations

import json
import re

import yaml
from typer.testing import CliRunner

from probe import paths
from probe.cli.main import app

SEX_TEXT = "What is this person's sex?"


def test_report_uses_stored_questions_and_flags_an_edited_file(tmp_path):
    data = yaml.safe_load((paths.SURVEYS / "acs2019.yaml").read_text(encoding="utf-8"))
    data["name"], data["questions"] = "mini", data["questions"][:2]
    survey = tmp_path / "mini.yaml"
    survey.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'd.db'}"
    runner = CliRunner()
    r = runner.invoke(app, ["run", "--model", "sim/uniform", "--survey", str(survey), "--samples", "2", "--db", db])
    assert r.exit_code == 0, r.output
    cid = r.stdout.strip().splitlines()[-1]

    rep = runner.invoke(app, ["report", cid, "--format", "json", "--db", db])
    assert rep.exit_code == 0, rep.output
    assert json.loads(rep.stdout)["campaign"]["prompt_drift"] == []

    survey.write_text(survey.read_text(encoding="utf-8").replace(SEX_TEXT, "What is your sex?"), encoding="utf-8")
    rep = runner.invoke(app, ["report", cid, "--format", "json", "--db", db])
    assert rep.exit_code == 0, rep.output
    got = json.loads(rep.stdout)
    (line,) = got["campaign"]["prompt_drift"]
    assert str(survey.resolve()) in line and "changed on disk since the campaign" in line
    assert got["models"]["sim/uniform"]["surveys"]["mini"]["questions"]["SEX"]["text"] == SEX_TEXT  # the stored one

    md = runner.invoke(app, ["report", cid, "--format", "markdown", "--db", db]).stdout
    assert f"> ⚠️ **Warning:** {line}" in md
    table = runner.invoke(app, ["report", cid, "--format", "table", "--db", db]).stdout
    assert re.sub(r"\s", "", "warning: " + line) in re.sub(r"\s", "", table)  # however rich wraps it
    # at 80 columns the modal answer's label may be cut, never its share, which leads the cell
    rows = [row for row in table.splitlines() if row.startswith(("│ SEX ", "│ AGER "))]
    assert len(rows) == 2 and all(re.search(r"│ (0\.\d\d|1\.00) \S[^│]*│?\s*$", row) for row in rows), table
    page = runner.invoke(app, ["report", cid, "--format", "html", "--db", db]).stdout
    box = re.search(r'<div class="warn" role="alert">(.*?)</div>', page, re.S)
    assert box and "changed on disk since the campaign" in box.group(1) and str(survey.resolve()) in box.group(1)
    assert page.index('class="warn"') < page.index("<h2>Provenance</h2>")  # near the top
