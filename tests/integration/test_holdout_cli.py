"""`probe classifier evaluate --holdout`: answers through Thresholdout, records each answer in the ledger, refuses
with a one-line error once the budget is spent, and leaves the ledger as it was."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from probe.cli.main import app


def test_holdout_budget_is_spent_then_refused(tmp_path):
    ledger = tmp_path / "ledger.json"
    ledger.write_text(json.dumps({"holdouts": {"golden": {"threshold": 0.0, "sigma": 0.0001, "budget": 1, "spent": 0,
                                                          "queries": []}}}))
    runner = CliRunner()
    args = ["classifier", "evaluate", "--holdout", "golden", "--ledger", str(ledger)]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "on holdout golden (Thresholdout)" in r.output and "budget left 0 of 1" in r.output
    answer = float(r.output.split("(Thresholdout): ")[1].split(";")[0])
    assert 0.8 < answer < 0.99  # the golden sets' accuracy (noisy), not the 0.994 cross-validated figure
    before = ledger.read_text()
    q = json.loads(before)["holdouts"]["golden"]["queries"]
    assert len(q) == 1 and q[0]["classifier"].startswith("tfidf:tfidf-") and q[0]["over_threshold"]
    r = runner.invoke(app, args)
    assert r.exit_code != 0 and "budget of 1 holdout answers is spent" in str(r.exception)
    assert ledger.read_text() == before
    r = runner.invoke(app, ["classifier", "evaluate", "--holdout", "nope", "--ledger", str(ledger)])
    assert r.exit_code != 0 and "unknown holdout 'nope'" in str(r.exception)


def test_shipped_ledger_is_a_ledger():
    from probe.holdout import LEDGER

    data = json.loads(LEDGER.read_text())
    for name in ("golden", "reuter", "xstest"):
        e = data["holdouts"][name]
        assert e["spent"] <= e["budget"] and e["spent"] == sum(q["over_threshold"] for q in e["queries"])
