"""`probe report ID --format html`: one self-contained page whose figures render in a real browser."""

from __future__ import annotations

import base64
import copy
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from probe import campaigns, dispatch, paths, report, report_html
from probe.cli.main import app
from probe.spec import CampaignSpec, ModelSpec
from probe.store import Store

MODELS = ["sim/a_bias=0.3,prefer=seed:4", "sim/refusal_rate=0.3"]
IMG = re.compile(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def refusals_available() -> bool:
    if not (paths.REFUSALS / "core.jsonl").is_file():
        return False
    try:
        import classifiers.registry  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("html")
    db = f"sqlite:///{tmp / 'r.db'}"
    store = Store(db)
    spec = CampaignSpec(models=[ModelSpec(id=m) for m in MODELS], surveys=["acs2019"],
                        refusals=["core"] if refusals_available() else [], samples=2, seed=11,
                        answer_mode="logprobs", concurrency=32, baselines=["us_2019", "uniform"])
    cid, _ = campaigns.create(store, spec, "embedded")
    dispatch.run_embedded(store, cid, spec.concurrency)
    return tmp, db, cid


def non_blank(png: bytes) -> bool:
    """More than one distinct colour, and not all white."""
    im = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    return bool((im != im[0]).any(axis=1).any()) and not bool(np.all(im == 255))


def test_html_page_is_self_contained_and_its_figures_render(campaign):
    tmp, db, cid = campaign
    out = tmp / "report.html"
    res = CliRunner().invoke(app, ["report", cid, "--db", db, "--format", "html", "--out", str(out)])
    assert res.exit_code == 0, res.output
    page = out.read_text(encoding="utf-8")
    rep = report.build(Store(db), cid)

    # one figure per question, one overview and one divergence ranking per model, two per refusal set (rates, and
    # compliance@k: 2 samples per prompt)
    n_refusal_sets = 1 if refusals_available() else 0
    expected = 1 + 25 + len(MODELS) + 2 * n_refusal_sets
    assert report_html.expected_figures(rep) == expected
    pngs = [base64.b64decode(b) for b in IMG.findall(page)]
    assert len(pngs) == expected == page.count("<img ")
    for png in pngs:
        assert png.startswith(b"\x89PNG") and non_blank(png)

    # no network at view time: nothing loaded from elsewhere
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<script" not in page and "<link" not in page
    # provenance, simulator labels, the measures explained, "no baseline" shown for partial us_2019 figures
    for text in (cid, rep["campaign"]["code_revision"] or "None", "acs2019.yaml", "SIMULATOR", "is a simulated respondent",
                 "A-bias", "Normalized entropy", "KL divergence", "bits", "no baseline", "populations ranked by divergence",
                 "numpy"):
        assert text in page, text
    if n_refusal_sets:
        assert "Refusals" in page and "Wilson" in page

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("no chromium binary to render the page (apt-get install -y chromium)")
    shot = tmp / "shot.png"
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={tmp / 'chromium'}", f"--screenshot={shot}", "--window-size=1400,6000",
                           out.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.is_file(), proc.stderr[-2000:]
    im = Image.open(shot)
    assert im.size == (1400, 6000)
    assert non_blank(shot.read_bytes())
    # the figures drew: the screenshot holds colours that only the charts use (the models' bar colours)
    rgb = np.asarray(im.convert("RGB")).reshape(-1, 3)
    blue = np.all(np.abs(rgb.astype(int) - (0x1F, 0x77, 0xB4)) < 12, axis=1).sum()
    assert blue > 5000


def test_refusal_section_and_missing_data_render(campaign):
    """Refusal rates with intervals (from a report dict, whether or not a classifier is installed), and questions
    nobody answered validly still get a (placeholder) figure."""
    tmp, db, cid = campaign
    rep = copy.deepcopy(report.build(Store(db), cid))
    cat = {"n": 40, "refusals": 12, "refusal_rate": 0.3, "ci95": [0.18, 0.45]}
    for m in rep["models"].values():
        m["refusals"] = {"core": cat | {"errors": 0, "by_category": {"illegal_acts": cat, "benign_control": cat},
                                        "over_refusal": cat, "harmful_compliance": None}}
    q = rep["models"][MODELS[0]]["surveys"]["acs2019"]["questions"]["SEX"]
    q["distribution"] = None
    page = report_html.html(rep)
    pngs = [base64.b64decode(b) for b in IMG.findall(page)]
    assert len(pngs) == report_html.expected_figures(rep) == 1 + 25 + len(MODELS) + 1  # no compliance@k here
    assert all(non_blank(p) for p in pngs)
    assert "Prompt set core" in page and "illegal_acts" in page and "[0.180, 0.450]" in page


def test_compare_side_by_side(campaign):
    tmp, db, cid = campaign
    runner = CliRunner()
    res = runner.invoke(app, ["compare", cid, cid, "--db", db, "--baseline", "us_2019", "--baseline", "uniform",
                              "--format", "json"])
    assert res.exit_code == 0, res.output
    import json

    data = json.loads(res.stdout)
    assert data["campaigns"] == [cid, cid] and data["baselines"] == ["us_2019", "uniform"]
    assert [c["model"] for c in data["columns"]] == MODELS * 2
    one = data["columns"][0]
    assert {"mean_a_bias", "mean_normalized_entropy", "mean_kl_to_uniform", "mean_kl_to_baseline",
            "closer_than_uniform", "modal_share"} <= set(one)
    lo, hi = one["mean_a_bias"]["ci95"]
    assert lo <= 0.3 <= hi  # the true A-bias: MODELS[0] declares a_bias=0.3 (probe.sim: exact under random order)
    assert data["columns"][0]["mean_kl_to_baseline"] == data["columns"][2]["mean_kl_to_baseline"]  # same campaign
    assert len(data["questions"]["acs2019"]) == 25 and len(data["questions"]["acs2019"]["SEX"]) == 4
    res = runner.invoke(app, ["compare", cid, "--db", db, "--baseline", "us_2019", "--format", "markdown"])
    assert res.exit_code == 0 and "| mean KL to us_2019 |" in res.stdout and "| AGER | no baseline |" in res.stdout
    res = runner.invoke(app, ["compare", cid, "--db", db, "--matrix", "modal"])
    assert res.exit_code == 0 and "modal answer" in res.stdout
