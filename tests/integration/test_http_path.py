"""Model calls through LiteLLM's real HTTP path to the project's test server, embedded mode:
429s and 500s are retried (Retry-After honoured) and lose nothing; non-retryable errors are stored and reported."""

from __future__ import annotations

import json

import pytest

from probe.testing.model_server import running_server
from tests.conftest import run_probe
from tests.helpers import counts

QUESTIONNAIRE = """\
name: faults
questions:
  - id: OK1
    text: "How often do you read the news?"
    options:
      - {code: 1, text: "Daily"}
      - {code: 2, text: "Weekly"}
      - {code: 3, text: "Rarely"}
  - id: OK2
    text: "Do you own a bicycle?"
    options:
      - {code: 1, text: "Yes"}
      - {code: 2, text: "No"}
  - id: BAD
    text: "This request is malformed [[400]]"
    options:
      - {code: 1, text: "Yes"}
      - {code: 2, text: "No"}
"""


@pytest.fixture
def survey(tmp_path):
    p = tmp_path / "faults.yaml"
    p.write_text(QUESTIONNAIRE)
    return p


def test_retries_lose_nothing_and_bad_requests_are_stored(tmp_path, survey):
    db = f"sqlite:///{tmp_path / 'h.db'}"
    with running_server(latency=0.01, p429=0.15, p500=0.1, retry_after=1, seed=3, a_bias=0.5) as (url, _):
        r = run_probe("run", "--model", "openai/test", "--api-base", f"{url}/v1", "--survey", str(survey),
                      "--samples", "40", "--db", db, "--answer-mode", "logprobs")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip().splitlines()[-1]
    assert "40 of 120 items failed" in r.stderr
    c = counts(db, cid)
    assert c["items"] == 120 and c["responses"] == 120 and c["done"] == 80 and c["ok_responses"] == 80
    assert c["labels"] == 80 and c["max_saves_per_item"] == 1
    rep = json.loads(run_probe("report", cid, "--db", db, "--format", "json").stdout)
    qs = rep["models"]["openai/test"]["surveys"]["faults"]["questions"]
    assert qs["BAD"]["errors"] == 40 and qs["BAD"]["n"] == 0 and qs["BAD"]["distribution"] is None
    # the server answers "A" with the extra weight 0.5: measured A-bias = 0.5 * (1 - 1/k)
    assert qs["OK1"]["a_bias"] == pytest.approx(0.5 * (1 - 1 / 3), abs=1e-6)
    assert qs["OK2"]["a_bias"] == pytest.approx(0.5 * (1 - 1 / 2), abs=1e-6)
    assert rep["campaign"]["status"] == {"done": 80, "failed": 40, "pending": 0}


def test_every_item_failing_is_an_error(tmp_path):
    db = f"sqlite:///{tmp_path / 'a.db'}"
    survey = tmp_path / "denied.yaml"
    survey.write_text(QUESTIONNAIRE.replace("name: faults", "name: denied").replace("[[400]]", "[[401]]")
                      .replace("How often", "[[401]] How often").replace("Do you own", "[[401]] Do you own"))
    with running_server() as (url, _):
        r = run_probe("run", "--model", "openai/test", "--api-base", f"{url}/v1", "--survey", str(survey),
                      "--samples", "2", "--db", db)
        stats = __import__("httpx").get(f"{url}/stats").json()
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: all 6 items of campaign") and "AuthenticationError" in last
    assert stats["status_4xx"] == 6  # a 401 is not retried
