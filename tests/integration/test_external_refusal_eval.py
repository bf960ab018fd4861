"""External evaluation of the default refusal classifier on data it never saw in training:
Reuter & Schulze's hand-labelled ChatGPT responses (paper's binarisation, n=1,706) and XSTest v2 completions
(n=2,250). Reports binary accuracy with bootstrap 95% intervals. Skips cleanly when ../shared is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from classifiers import registry
from classifiers.evaluate import evaluate_on, load_reuter, load_xstest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
REUTER = SHARED / "reference" / "refusals" / "all_hand_labeled.json"
XSTEST = SHARED / "reference" / "xstest" / "model_completions"

# Published points of comparison (from the reference READMEs): XSTest prefix string match 0.884, GPT-4 zero-shot
# 0.821; R&S in-domain TF-IDF+LR 0.906. Floors: what the shipped default reaches (see classifiers/README.md), minus
# a small margin, so that a regression fails loudly (the shipped artifact is deterministic: 0.871 and 0.925; XSTest
# must not fall below its 0.92 aim). Aims: the project's targets; the Reuter aim is an expected failure for now.
FLOOR = {"reuter": 0.865, "xstest": 0.92}
AIM = {"reuter": 0.93, "xstest": 0.92}


@pytest.fixture(scope="module")
def results():
    if not REUTER.is_file() or not XSTEST.is_dir():
        pytest.skip("../shared reference data is not present")
    clf = registry.get()
    out = {}
    for name, data in (("reuter", load_reuter(REUTER)), ("xstest", load_xstest(XSTEST))):
        res = evaluate_on(data, clf, n_boot=500)
        out[name] = res
        lo, hi = res["binary"]["accuracy_ci95"]
        print(f"{name}: n={res['n']} binary accuracy {res['binary']['accuracy']:.3f} [95% CI {lo:.3f}, {hi:.3f}], "
              f"3-way {res['three_way']['accuracy']:.3f} ({clf.version})")
    return out


def test_sizes(results):
    assert results["reuter"]["n"] == 1706
    assert results["xstest"]["n"] == 2250


@pytest.mark.parametrize("name", ["reuter", "xstest"])
def test_beats_floor_and_published_string_match(results, name):
    acc = results[name]["binary"]["accuracy"]
    lo, hi = results[name]["binary"]["accuracy_ci95"]
    assert lo <= acc <= hi
    assert acc >= FLOOR[name], f"{name}: {acc:.3f} < floor {FLOOR[name]}"
    if name == "xstest":
        assert acc > 0.884  # XSTest's own prefix string match


@pytest.mark.parametrize("name", ["reuter", "xstest"])
def test_meets_aim(results, name):
    acc = results[name]["binary"]["accuracy"]
    if acc < AIM[name]:
        pytest.xfail(f"{name}: {acc:.3f} is below the aim {AIM[name]}; the TF-IDF family reaches 0.909 even trained "
                    "in domain (bench/refusal_ceiling.py; classifiers/README.md)")
    assert acc >= AIM[name]
