"""Coverage of probe.analysis's 95% intervals on simulated respondents whose true distribution is known.

Each test draws 200 seeded replications of a survey from a known answer distribution (multinomial text answers,
or Dirichlet-distributed logprobs rows), runs analysis.analyze_survey on each, and counts how often the interval
contains the true population value, computed exactly from the known distribution. A 95% interval should cover
about 190 of 200; a test fails below 180, i.e. below 90 of every 100 (200 rather than 100 replications because
about 20 statistics are checked at once: a method that truly covers 94% would fall below 90 of 100 for one of
them by chance quite often, below 180 of 200 rarely; the seeds are fixed, so a pass is reproducible). Cases
include true KL of 0.01-0.05 bits, where the plug-in KL is biased upward by as much as the value, ties between
the two most common answers, and an exact zero.
"""

from __future__ import annotations

import numpy as np
import pytest

from probe import analysis, metrics
from probe.questionnaires import Option, Question

REPS = 200
N_BOOT = 200
MIN_COVERED = 180  # 90 of every 100


def question(qid: str, k: int, ordered: bool) -> Question:
    return Question(id=qid, text=f"{qid}?", options=[Option(code=i + 1, text=f"{qid} {i + 1}") for i in range(k)],
                    ordered=ordered)


def tilt(q: np.ndarray, kl_bits: float, rng: np.random.Generator) -> np.ndarray:
    """A distribution p with KL(p || q) = kl_bits exactly (to 1e-12): q tilted along a random direction."""
    d = rng.normal(size=q.size)
    d -= d.mean()
    lo, hi = 0.0, 50.0
    for _ in range(200):
        t = (lo + hi) / 2
        p = q * np.exp(t * d)
        p /= p.sum()
        lo, hi = (t, hi) if metrics.kl_divergence(p, q) < kl_bits else (lo, t)
    return p


class Survey:
    """Q questions with known answer distributions p, position distributions and two populations:
    'near' at a chosen true KL from p, 'far' a random Dirichlet(3) draw."""

    def __init__(self, ks: list[int], kls: list[float], seed: int, a_bias: float = 0.15):
        rng = np.random.default_rng(seed)
        self.questions, self.p, self.pos = [], [], []
        self.pops: dict[str, dict[str, np.ndarray]] = {"near": {}, "far": {}, analysis.UNIFORM: {}}
        for j, k in enumerate(ks):
            q = question(f"Q{j}", k, ordered=j % 2 == 0)
            near = rng.dirichlet(np.full(k, 3.0))
            self.questions.append(q)
            self.p.append(tilt(near, kls[j % len(kls)], rng))
            self.pops["near"][q.id] = near
            self.pops["far"][q.id] = rng.dirichlet(np.full(k, 3.0))
            self.pops[analysis.UNIFORM][q.id] = np.full(k, 1 / k)
            pos = np.full(k, (1 - a_bias) / k)
            pos[0] += a_bias  # position A favoured: true A-bias = a_bias * (1 - 1/k)
            self.pos.append(pos)
        self.truths = [self._truth(j) for j in range(len(ks))]

    def draw(self, n: int, rng: np.random.Generator, logprobs: bool = False) -> dict:
        out = {}
        for q, p, pos in zip(self.questions, self.p, self.pos):
            k = p.size
            x = rng.dirichlet(20 * p, size=n) if logprobs else np.eye(k)[rng.choice(k, size=n, p=p)]
            out[q.id] = analysis.QuestionSamples(q, x, np.eye(k)[rng.choice(k, size=n, p=pos)])
        return out

    def _truth(self, j: int) -> dict:
        """True per-question values (text answers: the vote shares are p itself)."""
        p, k = self.p[j], self.p[j].size
        t = {"normalized_entropy": metrics.normalized_entropy(p), "kl_to_uniform": metrics.kl_to_uniform(p),
             "a_bias": self.pos[j][0] - 1 / k, "modal_share": p.max(), "chi2": None}
        for name, vecs in self.pops.items():
            q = vecs[self.questions[j].id]
            t[("kl", name)] = metrics.kl_divergence(p, q)
            t[("tv", name)] = metrics.total_variation(p, q)
            t[("w", name)] = metrics.wasserstein_ordinal(p, q) if self.questions[j].ordered else None
            t[("closer", name)] = float(metrics.kl_divergence(p, q) < metrics.kl_to_uniform(p))
        return t

    def mean_truth(self, key, only_ordered: bool = False) -> float:
        return float(np.mean([self.truths[j][key] for j in range(len(self.p))
                              if not only_ordered or self.questions[j].ordered]))


def count(hits: dict, name: str, truth: float, iv: list[float]) -> None:
    hits[name] = hits.get(name, 0) + int(iv[0] - 1e-12 <= truth <= iv[1] + 1e-12)


def assert_coverage(hits: dict) -> None:
    low = {k: v for k, v in hits.items() if v < MIN_COVERED}
    assert not low, f"covered fewer than {MIN_COVERED} of {REPS}: {low} (all: {hits})"


def test_one_question_small_kl():
    """One ordered question, k = 4, 200 text answers, true KL 0.02 bits to the 'near' population: every
    per-question interval (KL, TV, Wasserstein, KL to uniform, normalized entropy, A-bias, modal share, and the
    chi-square's population value n k sum (p - 1/k)^2)."""
    sv = Survey([4], [0.02], seed=1)
    t, n, hits = sv.truths[0], 200, {}
    p, k = sv.p[0], 4
    rng = np.random.default_rng(100)
    for r in range(REPS):
        per_q, _ = analysis.analyze_survey(sv.draw(n, rng), sv.pops, n_boot=N_BOOT, seed=r)
        a = per_q["Q0"]
        for pop in ("near", "far"):
            v = a["vs_baseline"][pop]
            for key, name in (("kl", "kl"), ("tv", "tv"), ("w", "wasserstein")):
                count(hits, f"{name} {pop}", t[(key, pop)], v[f"{name}_ci95"])
        for key in ("normalized_entropy", "kl_to_uniform", "a_bias", "modal_share"):
            count(hits, key, t[key], a[f"{key}_ci95"])
        count(hits, "chi2 population value", n * k * ((p - 1 / k) ** 2).sum(), a["chi2_uniform"]["ci95"])
    assert t[("kl", "near")] == pytest.approx(0.02)
    assert_coverage(hits)


def test_kl_exactly_zero_and_tied_modes():
    """True KL exactly 0 (the population is the respondent's own distribution), with the two most common
    answers tied (0.35, 0.35): KL, TV, Wasserstein (true value 0) and the modal share (the plug-in max of two
    tied shares is biased upward)."""
    q = question("QT", 4, ordered=True)
    p = np.array([0.35, 0.35, 0.2, 0.1])
    pops = {"same": {"QT": p}}
    hits: dict = {}
    rng = np.random.default_rng(7)
    for r in range(REPS):
        x = np.eye(4)[rng.choice(4, size=60, p=p)]
        per_q, _ = analysis.analyze_survey({"QT": analysis.QuestionSamples(q, x)}, pops, n_boot=N_BOOT, seed=r)
        v = per_q["QT"]["vs_baseline"]["same"]
        for key in ("kl", "tv", "wasserstein"):
            count(hits, key, 0.0, v[f"{key}_ci95"])
        count(hits, "modal_share", 0.35, per_q["QT"]["modal_share_ci95"])
    assert_coverage(hits)


def _aggregates(sv: Survey, n: int, logprobs: bool, seed: int) -> dict:
    hits: dict = {}
    rng = np.random.default_rng(seed)
    nq = len(sv.questions)
    for r in range(REPS):
        _, s = analysis.analyze_survey(sv.draw(n, rng, logprobs), sv.pops, n_boot=N_BOOT, seed=r)
        for key in ("normalized_entropy", "kl_to_uniform", "a_bias") + (() if logprobs else ("modal_share",)):
            count(hits, key, sv.mean_truth(key), s[key]["ci95"])
        for pop in ("near", "far"):
            a = s["populations"][pop]
            count(hits, f"mean_kl {pop}", sv.mean_truth(("kl", pop)), a["mean_kl"]["ci95"])
            count(hits, f"mean_tv {pop}", sv.mean_truth(("tv", pop)), a["mean_tv"]["ci95"])
            count(hits, f"mean_wasserstein {pop}", sv.mean_truth(("w", pop), only_ordered=True),
                  a["mean_wasserstein"]["ci95"])
            count(hits, f"closer_than_uniform {pop}", sv.mean_truth(("closer", pop)), a["closer_than_uniform"]["ci95"])
            count(hits, f"model_normalized_entropy {pop}", sv.mean_truth("normalized_entropy"),
                  a["model_normalized_entropy"]["ci95"])
        true_kl = {pop: sv.mean_truth(("kl", pop)) for pop in sv.pops}
        for i, e in enumerate(s["ranking"]):
            count(hits, f"ranking ci95 {e['population']}", true_kl[e["population"]], e["ci95"])
            if e["gap_to_next"] is not None:
                nxt = s["ranking"][i + 1]["population"]
                count(hits, f"gap_to_next after rank {i + 1}", true_kl[nxt] - true_kl[e["population"]],
                      e["gap_to_next"]["ci95"])
        assert s["n_questions"] == nq
    return hits


def test_survey_aggregates_text_answers_small_kl():
    """8 questions (k = 2..6), 30 text answers each, true KL 0.01-0.05 bits to 'near': the survey means and
    their intervals (per question the plug-in KL's bias is about the size of the KL, and over 8 questions
    several standard errors of the mean), the ranking's intervals and the gaps between ranks."""
    sv = Survey([2, 3, 4, 6] * 2, [0.01, 0.03, 0.05], seed=2)
    assert 0.01 <= sv.mean_truth(("kl", "near")) <= 0.05
    assert_coverage(_aggregates(sv, 30, logprobs=False, seed=200))


def test_survey_aggregates_logprobs_rows():
    """The same with logprobs answers: each sample a Dirichlet(20 p) probability vector, so the true model
    distribution is p; 40 samples per question, true KL 0.01-0.03 bits to 'near'."""
    sv = Survey([2, 3, 4, 5, 6, 7, 3, 4], [0.01, 0.02, 0.03], seed=3)
    assert_coverage(_aggregates(sv, 40, logprobs=True, seed=300))
