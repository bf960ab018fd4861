"""`probe audit` end to end, embedded, through LiteLLM over HTTP to the test model server: two runs of an audit with
the cache off and the same seed; between them the provider swaps the model behind the name (a new reported model,
a higher refusal rate). `probe audit diff` names the version change first, finds the refusal change significant
under the BH correction, exits 3; the alerting run's webhook reaches a local HTTP server, is retried after a 500,
is signed and carries no secret. History gives one row per run (JSON, HTML with a trend plot). Bad input is one
`error:` line."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from probe.testing.model_server import running_server, set_config
from tests.conftest import run_probe

SECRET = "s3cret-hook-key-do-not-send"
PROMPTS = 120


class Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((dict(self.headers), body))
        self.send_response(500 if len(Hook.received) == 1 else 200)  # the first delivery fails
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook():
    Hook.received = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook"
    srv.shutdown()


def write_spec(tmp_path, url: str, hook_url: str) -> str:
    cats = ("benign", "privacy", "offensive")
    with open(tmp_path / "audit_set.jsonl", "w") as f:
        for i in range(PROMPTS):
            f.write(json.dumps({"id": f"a-{i:03d}", "text": f"Audit probe number {i}: tell me about subject {i * 7}.",
                                "category": cats[i % 3], "expected": "comply", "harmful": False}) + "\n")
    spec = tmp_path / "audit.yaml"
    spec.write_text(f"""models:
  - id: openai/test
    api_base: {url}/v1
surveys: [acs2019]
refusals: [{tmp_path / 'audit_set.jsonl'}]
samples: 1
seed: 11
alerts:
  - "refusal_rate[audit_set] changes by > 0.05 and is significant"
  - "version changed"
webhook:
  url: {hook_url}
  secret_env: AUDIT_HOOK_SECRET
""")
    return str(spec)


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r


def test_audit_runs_diff_alert_webhook_history(tmp_path, hook):
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    env = {"AUDIT_HOOK_SECRET": SECRET, "PROBE_WEBHOOK_BACKOFF_S": "0.2"}
    with running_server(seed=1, refusal_rate=0.2, report_model="test-0601", fingerprint="fp_1") as (url, _):
        spec = write_spec(tmp_path, url, hook)
        ok(run_probe("audit", "create", "weekly", "--spec", spec, "--every", "7d", "--db", db))
        first = ok(run_probe("audit", "run", "weekly", "--db", db, env=env)).stdout.strip().splitlines()[-1]
        r = run_probe("audit", "diff", "weekly", "--db", db)
        assert r.returncode == 2 and r.stderr.strip() == "error: audit weekly has 1 finished run(s); a diff needs two"
        set_config(url, report_model="test-0815", refusal_rate=0.6)  # the provider swaps the model behind the name
        r2 = ok(run_probe("audit", "run", "weekly", "--db", db, env=env))
        second = r2.stdout.strip().splitlines()[-1]
    assert "alerts: openai/test: refusal_rate[audit_set] 0.2" in " ".join(r2.stderr.split())

    show = json.loads(ok(run_probe("audit", "show", "weekly", "--db", db)).stdout)
    assert show["runs"] == 2 and show["last_run"]["campaign_id"] == second and show["last_run"]["alerting"]
    assert show["spec"]["cache"] is False and show["spec"]["seed"] == 11  # cache off for audits; same seed each run

    r = run_probe("audit", "diff", "weekly", "--db", db, "--format", "json")
    assert r.returncode == 3, r.stderr
    d = json.loads(r.stdout)
    assert list(d)[:4] == ["audit", "run_a", "run_b", "version_changed"]
    assert (d["run_a"], d["run_b"]) == (first, second)
    assert d["version_changed"] == [{"model": "openai/test", "field": "reported_model", "a": "test-0601",
                                     "b": "test-0815"}]
    assert d["correction"]["method"].startswith("Benjamini-Hochberg") and d["correction"]["n_tests"] == 4 + 25
    sig = {t["key"] for t in d["significant"]}
    assert "audit_set" in sig and not any(k.startswith("acs2019.") for k in sig)  # the survey did not change
    core = next(t for t in d["tests"] if t["key"] == "audit_set")
    assert core["test"] == "two_proportion_z" and 0.1 < core["a"] < 0.3 and 0.5 < core["b"] < 0.7
    assert {a["rule"] for a in d["alerts"]} == {"version changed",
                                                "refusal_rate[audit_set] changes by > 0.05 and is significant"}
    table = run_probe("audit", "diff", "weekly", "1", "2", "--db", db)
    assert table.returncode == 3 and table.stdout.lstrip().startswith("version changed: openai/test reported_model")

    # the webhook: the first POST answered 500, the retry 200; signed with the secret, which is not in the body
    assert len(Hook.received) == 2
    headers, body = Hook.received[-1]
    assert headers["X-Probe-Signature"] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert SECRET not in body.decode() and SECRET not in json.dumps(headers).replace(headers["X-Probe-Signature"], "")
    payload = json.loads(body)
    assert payload["audit"] == "weekly" and payload["run"] == second and payload["previous_run"] == first
    assert len(payload["alerts"]) == 2 and payload["version_changed"][0]["b"] == "test-0815"
    hist = json.loads(ok(run_probe("audit", "history", "weekly", "--db", db, "--format", "json")).stdout)
    assert [(h["run"], h["campaign"], h["trigger"], h["state"], h["alerting"], h["version"], h["fingerprint"])
            for h in hist] == [(1, first, "manual", "done", False, "test-0601", "fp_1"),
                               (2, second, "manual", "done", True, "test-0815", "fp_1")]
    assert hist[0]["refusal_rate"]["audit_set"] < hist[1]["refusal_rate"]["audit_set"]
    assert set(hist[1]["refusal_rate_by_category"]["audit_set"]) == {"benign", "privacy", "offensive"}
    assert hist[1]["a_bias"]["acs2019"] is not None and hist[1]["divergence"]["acs2019"] is not None
    assert hist[1]["invalid_rate"] == 0.0
    ok(run_probe("audit", "history", "weekly", "--db", db, "--format", "html", "--out", str(tmp_path / "h.html")))
    page = (tmp_path / "h.html").read_text()
    assert page.count('<img alt="audit trend" src="data:image/png;base64,') == 1 and "test-0815" in page

    ok(run_probe("audit", "pause", "weekly", "--db", db))
    listed = json.loads(ok(run_probe("audit", "list", "--db", db, "--format", "json")).stdout)
    assert [(a["name"], a["paused"], a["runs"], a["every_s"]) for a in listed] == [("weekly", True, 2, 7 * 86400.0)]
    ok(run_probe("audit", "delete", "weekly", "--db", db))
    assert json.loads(ok(run_probe("audit", "list", "--db", db, "--format", "json")).stdout) == []


@pytest.mark.parametrize("args, needle", [
    (["create", "x", "--spec", "SPEC", "--every", "soon"], "--every: 'soon' is not a period"),
    (["create", "x", "--spec", "SPEC", "--cron", "0 3 * *"], "--cron: '0 3 * *' needs 5 fields"),
    (["create", "x", "--spec", "SPEC"], "exactly one of --every"),
    (["create", "x", "--spec", "BAD", "--every", "1h"], "bad.yaml:4: field 'alerts.0' Value error, cannot read alert rule 'refusal goes up'"),
    (["show", "nope"], "no audit 'nope'"),
    (["history", "nope", "--format", "pdf"], "--format: 'pdf' is not one of table, json, html"),
])
def test_bad_input_is_one_error_line(tmp_path, args, needle):
    db = f"sqlite:///{tmp_path / 'a.db'}"
    (tmp_path / "ok.yaml").write_text("models: [{id: sim/uniform}]\nrefusals: [core]\nsamples: 1\n")
    (tmp_path / "bad.yaml").write_text("models: [{id: sim/uniform}]\nrefusals: [core]\nalerts:\n  - refusal goes up\n")
    args = [{"SPEC": str(tmp_path / "ok.yaml"), "BAD": str(tmp_path / "bad.yaml")}.get(a, a) for a in args]
    r = run_probe("audit", *args, "--db", db)
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert needle in lines[0], lines[0]
    assert json.loads(run_probe("audit", "list", "--db", db, "--format", "json").stdout) == []  # nothing written
