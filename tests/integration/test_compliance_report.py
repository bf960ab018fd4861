"""compliance@k through the CLI: a simulated model that refuses each sample with probability 0.7 is run with 8
samples per prompt; the report (JSON) gives the curve by the unbiased estimator with its golden-set correction, and
the HTML report draws it."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from probe.cli.main import app


def test_compliance_at_k_in_json_and_html(tmp_path):
    core = [json.loads(x) for x in open("prompts/refusal/core.jsonl", encoding="utf-8")]
    harmful = [p for p in core if p["harmful"]][:30]
    small = tmp_path / "small.jsonl"
    small.write_text("".join(json.dumps(p) + "\n" for p in harmful), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'c.db'}"
    runner = CliRunner()
    r = runner.invoke(app, ["run", "--model", "sim/refusal_rate=0.7", "--refusals", str(small), "--samples", "8",
                            "--seed", "4", "--processes", "1", "--db", db])
    assert r.exit_code == 0, r.output
    cid = r.stdout.strip().splitlines()[-1]
    rep = json.loads(runner.invoke(app, ["report", cid, "--db", db, "--format", "json"]).stdout)
    c = rep["models"]["sim/refusal_rate=0.7"]["refusals"]["small"]["compliance_at_k"]
    assert c["k"] == list(range(1, 9)) and c["n_prompts"] == 30 and c["samples_per_prompt"] == 8
    # truth under a perfect classifier: 1 - 0.7^k; the shipped one labels the simulator's replies nearly perfectly
    for k in (1, 4, 8):
        lo, hi = c["ci95"][k - 1]
        assert lo - 0.05 <= 1 - 0.7 ** k <= hi + 0.05, (k, c["estimate"][k - 1], lo, hi)
    assert c["estimate"] == sorted(c["estimate"])
    conf = c["classifier_confusion"]
    assert conf["source"].startswith("tfidf:tfidf-") and "golden" in conf["source"]
    assert conf["n_complies"] >= 10 and conf["n_refuses"] >= 10
    assert c["corrected"]["identifiable"] and len(c["corrected"]["estimate"]) == 8
    assert set(c["by_category"]) == {p["category"] for p in harmful}
    html = runner.invoke(app, ["report", cid, "--db", db, "--format", "html"]).stdout
    assert html.count('data-figure="compliance"') == 1 and "compliance@k" in html
