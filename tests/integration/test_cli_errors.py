"""Bad input: one clear line on stderr, a non-zero exit, and no campaign written."""

from __future__ import annotations

import pytest

from probe.store import Store
from tests.conftest import free_port, run_probe


def no_campaigns(db: str) -> bool:
    store = Store(db)
    try:
        return store.campaigns() == []
    finally:
        store.engine.dispose()


def one_line_error(r) -> str:
    assert r.returncode != 0
    lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in r.stderr
    return lines[0]


@pytest.fixture
def db(tmp_path):
    return f"sqlite:///{tmp_path / 'e.db'}"


def test_unknown_survey(db):
    line = one_line_error(run_probe("run", "--model", "sim/uniform", "--survey", "nope", "--db", db))
    assert "unknown survey 'nope'" in line and "acs2019" in line
    assert no_campaigns(db)


def test_malformed_yaml_names_file_line_and_field(tmp_path, db):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nquestions:\n  - id: Q1\n    text: What?\n    options:\n      - {code: 1, text: \"Yes\"}\n"
                   "      - {code: one, text: \"No\"}\n")
    line = one_line_error(run_probe("run", "--model", "sim/uniform", "--survey", str(bad), "--db", db))
    assert f"{bad}:7" in line and "questions.0.options.1.code" in line
    assert no_campaigns(db)
    line = one_line_error(run_probe("prompts", "validate", str(bad)))
    assert f"{bad}:7" in line


def test_unquoted_yes_gets_a_hint(tmp_path):
    bad = tmp_path / "yes.yaml"
    bad.write_text("name: yesfile\nquestions:\n  - id: Q1\n    text: What?\n    options:\n      - {code: 1, text: Yes}\n"
                   "      - {code: 2, text: \"No\"}\n")
    line = one_line_error(run_probe("prompts", "validate", str(bad)))
    assert f"{bad}:6" in line and "questions.0.options.0.text" in line and "quotes" in line


def test_yaml_syntax_error_names_line(tmp_path):
    bad = tmp_path / "syntax.yaml"
    bad.write_text("name: x\nquestions:\n  - id: [unclosed\n")
    line = one_line_error(run_probe("prompts", "validate", str(bad)))
    assert f"{bad}:" in line and "invalid YAML" in line


def test_unknown_provider(db):
    line = one_line_error(run_probe("run", "--model", "nosuchprovider/x", "--db", db))
    assert "unknown model provider in 'nosuchprovider/x'" in line
    assert no_campaigns(db)


def test_missing_api_key(db):
    line = one_line_error(run_probe("run", "--model", "openai/gpt-4o-mini", "--db", db, env={"OPENAI_API_KEY": ""}))
    assert "OPENAI_API_KEY" in line
    assert no_campaigns(db)


def test_unreachable_broker(db):
    port = free_port()
    line = one_line_error(run_probe("run", "--model", "sim/uniform", "--db", db, "--broker", f"redis://127.0.0.1:{port}/0"))
    assert "cannot reach broker" in line and str(port) in line
    assert no_campaigns(db)


def test_unreachable_database(tmp_path):
    line = one_line_error(run_probe("run", "--model", "sim/uniform", "--db", f"sqlite:///{tmp_path}/no/such/dir/x.db"))
    assert "cannot open database" in line
    port = free_port()
    line = one_line_error(run_probe("run", "--model", "sim/uniform", "--db", f"postgresql://u:secret@127.0.0.1:{port}/x"))
    assert "cannot open database" in line and "secret" not in line


def test_bad_flag_values(db):
    line = one_line_error(run_probe("run", "--model", "sim/uniform", "--ordering", "sideways", "--db", db))
    assert "ordering" in line
    line = one_line_error(run_probe("run", "--model", "sim/a_bias=2", "--db", db))
    assert "a_bias" in line
    assert no_campaigns(db)


def test_unknown_campaign_in_report(db):
    line = one_line_error(run_probe("report", "nope", "--db", db))
    assert "no campaign 'nope'" in line
