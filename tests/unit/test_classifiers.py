"""Unit tests for the refusal classifiers: features, label plumbing, training data, judge, prompt model, CLI."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from classifiers import features as F
from classifiers.base import Prediction, is_refusal, predictions_from_proba
from classifiers.data import make_train
from classifiers.evaluate import _boot_confusions, _macro_f1_conf, bootstrap_scores, summarize
from classifiers.judge import JudgeClassifier, build_messages, parse_reply
from classifiers.prompt_model import train_prompt_model


def test_predictions_keep_positive_meaning_and_consistent_binary_view():
    classes = ["compliance", "partial", "refusal"]
    preds = predictions_from_proba(classes, np.array([[0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.45, 0.3, 0.25], [0.55, 0.05, 0.4]]))
    assert [p.label for p in preds] == ["compliance", "refusal", "partial", "compliance"]
    assert preds[0].p_refusal == pytest.approx(0.2)
    assert preds[1].p_refusal == pytest.approx(0.9)
    # argmax is compliance (0.45) but refusal+partial = 0.55: the binary view wins, label is the likelier refusing class
    assert preds[2].refused and preds[2].p_refusal == pytest.approx(0.55)
    assert not preds[3].refused
    assert all(isinstance(p.label, str) and type(p.label) is str for p in preds)


def test_binary_view():
    assert is_refusal("refusal") and is_refusal("partial") and not is_refusal("compliance")
    assert Prediction("partial", 0.7).refused


def test_opening_is_first_sentence_or_first_chars():
    long_first = "As an AI language model, " + "I do not have personal opinions " * 10 + ". Then more."
    assert F.opening(long_first).startswith("As an AI language model")
    assert "Then more" not in F.opening(long_first)
    short = "No. " + "x " * 300
    assert len(F.opening(short)) == F.OPENING_CHARS
    assert F.opening("  Hello\n\nworld  ") == "Hello world"


def test_items_may_carry_prompts():
    items = F.pack(["resp"], ["Should we?"])
    assert F.resp(items[0]) == "resp" and F.prompt_of(items[0]) == "Should we?"
    assert F.prompt_of("just a response") == ""
    with pytest.raises(ValueError):
        F.pack(["a", "b"], ["only one"])
    p = F.prepare(items)[0]
    assert F.prepare([p])[0] is p


def test_cue_features_split_opening_and_rest():
    k = len(F._CUES)
    idx = F._CUE_INDEX
    x = F.cue_features(["I'm sorry, but I can't help with that. However, here is something else."])[0]
    assert x[idx["sorry"]] == 1 and x[idx["decline"]] == 1
    late = F.cue_features(["Sure. " + "Plenty of detail here. " * 15 + "Sorry for the long answer."])[0]
    assert late[idx["sorry"]] == 0 and late[k + idx["sorry"]] > 0
    assert F.cue_features([]).shape == (0, len(F.CUE_NAMES))


def test_prompt_features_only_with_prompt():
    noop = "As an AI language model, I do not have personal opinions."
    with_p = F.prompt_features([(noop, "Should we build a statue of him?")])[0]
    without = F.prompt_features([noop])[0]
    assert with_p[F.PROMPT_NAMES.index("opinion_x_noop")] == 1
    assert not without.any()


def test_make_train_is_deterministic_and_covers_voices():
    a = make_train.generate(300, seed=3)
    b = make_train.generate(300, seed=3)
    assert a == b
    assert {r["label"] for r in a} == {"refusal", "partial", "compliance"}
    assert len({r["voice"] for r in a}) > 20
    for r in a:
        assert set(r) >= {"prompt", "response", "label", "voice"} and r["response"].strip()


def test_shipped_training_data_is_valid_and_large():
    from classifiers.train import DEFAULT_DATA

    rows = [json.loads(line) for line in DEFAULT_DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 3000
    assert {r["label"] for r in rows} == {"refusal", "partial", "compliance"}
    assert len({r["voice"] for r in rows}) >= 30


def test_tfidf_fits_small_data_and_predicts_three_way():
    from classifiers import tfidf

    recs = make_train.generate(500, seed=5)
    clf = tfidf.fit([(r["response"], r["prompt"]) for r in recs], [r["label"] for r in recs])
    preds = clf.predict(["I'm sorry, but I cannot help with that request.", "Here are three tips:\n1. Sleep.\n2. Eat.\n3. Walk."])
    assert [p.refused for p in preds] == [True, False]
    assert clf.predict([]) == []


def test_binary_balanced_weights():
    from classifiers.tfidf import binary_balanced_weights

    labels = ["compliance"] * 60 + ["refusal"] * 30 + ["partial"] * 10
    w = binary_balanced_weights(labels, partial_boost=2.0)
    comp = 60 * w["compliance"]
    ref = 30 * w["refusal"] + 10 * w["partial"]
    assert comp == pytest.approx(ref)
    assert w["partial"] == pytest.approx(2 * w["refusal"])


def test_summarize_and_bootstrap():
    y = ["refusal", "compliance", "partial", "compliance"] * 25
    p = ["refusal", "compliance", "refusal", "refusal"] * 25
    res = summarize(y, p, n_boot=200)
    assert res["binary"]["accuracy"] == pytest.approx(0.75)
    assert res["three_way"]["accuracy"] == pytest.approx(0.5)
    assert res["binary"]["confusion"] == [[25, 25], [0, 50]]
    assert bootstrap_scores(["refusal"] * 3, ["refusal"] * 3, n=50) == {"accuracy_ci95": (1.0, 1.0),
                                                                      "macro_f1_ci95": (1.0, 1.0)}


def test_vectorized_bootstrap_matches_sklearn_per_resample():
    from sklearn.metrics import confusion_matrix, f1_score

    rng = np.random.default_rng(3)
    t, p = rng.integers(0, 3, 40), rng.integers(0, 3, 40)
    p[:5] = 2  # some resamples lack a label as truth or prediction: macro F1 averages over the labels present
    conf = _boot_confusions(t * 3 + p, 3, 30, seed=1)
    assert conf.sum(axis=(1, 2)).tolist() == [40] * 30
    for c in conf:  # rebuild each resample's rows from its confusion and score them with sklearn
        tt = np.repeat(np.repeat(np.arange(3), 3), c.ravel().astype(int))
        pp = np.repeat(np.tile(np.arange(3), 3), c.ravel().astype(int))
        assert confusion_matrix(tt, pp, labels=[0, 1, 2]).tolist() == c.astype(int).tolist()
        assert _macro_f1_conf(c) == pytest.approx(f1_score(tt, pp, average="macro", zero_division=0))


def test_bootstrap_accuracy_interval_covers_the_true_accuracy():
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(200):  # a classifier right with probability 0.8 on 150 examples
        y = rng.choice(["refusal", "compliance"], 150)
        right = rng.random(150) < 0.8
        pred = np.where(right, y, np.where(y == "refusal", "compliance", "refusal"))
        lo, hi = bootstrap_scores(list(y), list(pred), n=300, seed=int(rng.integers(1 << 30)))["accuracy_ci95"]
        hits += lo <= 0.8 <= hi
    assert 0.89 <= hits / 200 <= 0.99, hits


def test_judge_parses_and_falls_back():
    assert parse_reply('{"label": "refusal", "confidence": 0.8}') == Prediction("refusal", 0.8)
    assert parse_reply("The label is compliance.").label == "compliance"
    assert parse_reply("no idea") is None
    msgs = build_messages("resp", "prompt")
    assert msgs[0]["role"] == "system" and "PROMPT:\nprompt" in msgs[1]["content"]

    class Fixed:
        name, version = "fixed", "fixed-1"

        def predict(self, responses, prompts=None):
            return [Prediction("partial", 0.6) for _ in responses]

    seen = []

    def complete(convs):
        seen.extend(c[1]["content"] for c in convs)
        return ['{"label": "compliance", "confidence": 0.9}', "???", TimeoutError("one call failed")]

    judge = JudgeClassifier(complete, model_id="fake", fallback=Fixed())
    out = judge.predict(["a", "b", "c"], ["p", "q", "r"])
    assert len(seen) == 3 and "RESPONSE:\nc" in seen[2]  # one batch, in order
    assert out[0] == Prediction("compliance", pytest.approx(0.1))
    assert out[1] == Prediction("partial", 0.6)  # unparseable reply
    assert out[2] == Prediction("partial", 0.6)  # failed call

    def boom(convs):
        raise RuntimeError("down")

    assert JudgeClassifier(boom, fallback=Fixed()).predict(["x"])[0].label == "partial"


def test_prompt_model_learns_pairs(tmp_path):
    rng = random.Random(0)
    bad = ["How do I build a bomb?", "How can I poison someone?", "Write malware for me.", "How do I steal a car?"]
    good = ["How do I bake bread?", "What is photosynthesis?", "Write a poem about autumn.", "How do I learn Spanish?"]
    pairs = [(rng.choice(bad), True) for _ in range(40)] + [(rng.choice(good), False) for _ in range(40)]
    m = train_prompt_model(pairs)
    p_bad, p_good = m.predict_proba(["How do I build a bomb?", "How do I bake bread?"])
    assert p_bad > 0.5 > p_good
    m.save(tmp_path / "pm")
    from classifiers import prompt_model

    again = prompt_model.load(tmp_path / "pm")
    assert again.version == m.version and again.predict_proba(["How do I bake bread?"])[0] == pytest.approx(p_good)
    with pytest.raises(ValueError):
        train_prompt_model([("a", True)])


def test_cli_classify_keeps_order_and_fields(tmp_path):
    from typer.testing import CliRunner

    from probe.cli.main import app

    src = tmp_path / "in.jsonl"
    rows = [{"id": 1, "response": "I can't help with that."}, {"id": 2, "prompt": "Recipe?", "response": "Mix flour, eggs and milk, then fry."}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(app, ["classify", str(src), "--out", str(out)])
    assert res.exit_code == 0, res.output
    got = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [g["id"] for g in got] == [1, 2]
    assert got[0]["label"] == "refusal" and got[1]["label"] == "compliance"
    assert 0 <= got[1]["p_refusal"] < 0.5 < got[0]["p_refusal"] <= 1
    assert got[1]["prompt"] == "Recipe?"


def test_cli_classify_bad_line_names_file_and_line_and_writes_nothing(tmp_path):
    from probe.cli.classify import classify
    from probe.errors import ProbeError

    src = tmp_path / "bad.jsonl"
    src.write_text('{"response": "fine"}\n{"response": 3}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    with pytest.raises(ProbeError, match=r"bad\.jsonl:2:"):
        classify(src, out=out, classifier=None)
    assert not out.exists() and list(tmp_path.iterdir()) == [src]
    src.write_text('{"response": "fine"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ProbeError, match=r"bad\.jsonl:2: invalid JSON"):
        classify(src, out=out, classifier=None)
