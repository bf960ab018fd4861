"""How a model's survey answers compare with populations and with uniform, with bootstrap intervals.

Input, per question: the sample matrix X (one row per valid sample: that sample's option-probability vector in
questionnaire form order; a one-hot row for a text answer, the renormalised first-token probabilities for a
logprobs answer), optionally the matching position matrix (per shown letter A, B, ...), and per population the
population's share vector (None where the population has no complete figure for the question).

Per question (model distribution = mean row of X):
- KL(model || population) in bits (base 2, as Dominguez-Olmedo et al.), total variation, and for questions with
  `ordered` options the 1-D Wasserstein distance in option steps (None otherwise); see probe.metrics.
- chi-square goodness of fit against uniform on counts O = the column sums of X: each sample contributes one unit,
  spread over the options by its probabilities (integer answer counts in text mode, expected counts in logprobs
  mode, where the test treats expected counts as if observed). Statistic, df = k - 1, p-value.
- modal share: the share of samples whose most likely option (row argmax; ties split equally) is the most
  common one: 1 means every sample gives the same answer (the "correct answer" effect, Park et al.), 1/k is
  no agreement beyond chance.
Per model and survey, over the questions with samples: mean A-bias, mean normalized entropy, mean KL to uniform,
mean modal share; per population the mean KL/TV/Wasserstein over the questions it covers, the share of those
questions where the model is closer (in KL) to the population than to uniform, the population's own mean
normalized entropy beside the model's on the same questions, and a ranking of populations by mean KL (the
paper's state analysis) with paired bootstrap intervals of the gap to the next one.

Intervals: percentile bootstrap (95%) over samples, as probe.metrics.bootstrap_ci, with the same resamples used
for every statistic of a question (so differences are paired). Questions are resampled independently (their
samples are independent items); an aggregate's interval is the spread of the aggregate recomputed on each
replicate. A question without a population's figure is "no baseline" for that population: None, never guessed.
Plug-in divergences are biased upward for small n (entropy and modal share likewise), so near zero the whole
bootstrap distribution can lie on one side of the estimate; the interval is then widened to reach the estimate.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from probe import metrics
from probe.questionnaires import Question

N_BOOT = 500
ALPHA = 0.05
UNIFORM = "uniform"
STATE_NAME = re.compile(r"^.+_\d{2}$")  # probe.pums.build_from_pums(..., by_state=True) names state tables NAME_ST

METHOD = {
    "kl": "KL(model || population) in bits (base 2); model = mean of the samples' option-probability vectors",
    "tv": "total variation distance, 0.5 * sum |p - q|, in [0, 1]",
    "wasserstein": "1-D Wasserstein distance over option positions, in option steps; ordered questions only",
    "chi2_uniform": "Pearson chi-square against uniform on counts = sum of the samples' option-probability vectors "
                    "(one unit per sample; expected counts in logprobs mode)",
    "modal_share": "share of samples whose most likely option is the most common one (ties split); 1/k = no agreement",
    "closer_than_uniform": "share of the population's questions where KL(model || population) < KL(model || uniform)",
    "ci95": "percentile bootstrap over samples, resampled within each question; aggregates recomputed per "
            "replicate; widened to include the estimate where plug-in bias puts all replicates on one side",
    "no_baseline": "questions where a population has no complete figure are skipped for it (None)",
    "population_normalized_entropy": "the population's own mean normalized entropy over its questions (fixed: no "
                                     "interval); model_normalized_entropy is the model's on the same questions",
}


@dataclass
class QuestionSamples:
    question: Question
    options: np.ndarray  # n x k, form order
    letters: np.ndarray | None = None  # n x k, shown-position order (A, B, ...)


def state_baselines(names: list[str]) -> list[str]:
    """The state tables among baseline names (NAME_ST, as build_from_pums(by_state=True) writes them)."""
    return [n for n in names if STATE_NAME.match(n)]


def resample_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot x n) counts: how often each sample appears in each bootstrap resample (rows sum to n)."""
    idx = rng.integers(0, n, size=(n_boot, n))
    flat = (np.arange(n_boot)[:, None] * n + idx).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(float)


def votes(x: np.ndarray, atol: float = 1e-9) -> np.ndarray:
    """Each row's vote for its most likely option(s): 1 for a unique argmax, split equally among ties."""
    top = x >= x.max(axis=1, keepdims=True) - atol
    return top / top.sum(axis=1, keepdims=True)


def ci(values: np.ndarray, estimate: float | None = None) -> list[float]:
    """Percentile interval of the replicates, widened to include the estimate when given (see the module doc)."""
    lo, hi = np.quantile(values, [ALPHA / 2, 1 - ALPHA / 2])
    if estimate is not None:
        lo, hi = min(lo, estimate), max(hi, estimate)
    return [float(lo), float(hi)]


def _stat(est: float, reps: np.ndarray) -> tuple[float, np.ndarray]:
    return float(est), np.asarray(reps, dtype=float)


@dataclass
class _Q:
    """One question's estimates and bootstrap replicates (same resamples for all), for the aggregates."""

    est: dict
    reps: dict


def analyze_question(s: QuestionSamples, populations: Mapping[str, np.ndarray | None], n_boot: int = N_BOOT,
                     seed: int = 0) -> tuple[dict, _Q | None]:
    """(JSON additions for the question, internal estimates and replicates or None when there are no samples)."""
    q = s.question
    x = np.asarray(s.options, dtype=float).reshape(-1, len(q.options))
    n, k = x.shape
    if n == 0:
        return {"vs_baseline": {p: None for p in populations}, "chi2_uniform": None, "normalized_entropy_ci95": None,
                "kl_to_uniform_ci95": None, "a_bias_ci95": None, "modal_answer": None, "modal_share": None,
                "modal_share_ci95": None}, None
    rng = np.random.default_rng([seed, zlib.crc32(q.id.encode())])
    c = resample_counts(n, n_boot, rng)
    mean, means = x.mean(axis=0), c @ x / n
    uniform = np.full(k, 1.0 / k)
    est, reps = {}, {}
    est["entropy"], reps["entropy"] = _stat(metrics.normalized_entropy(mean), metrics.normalized_entropy(means))
    est["kl_u"], reps["kl_u"] = _stat(metrics.kl_divergence(mean, uniform), metrics.kl_divergence(means, uniform))
    v = votes(x)
    vmean = v.mean(axis=0)
    est["modal"], reps["modal"] = _stat(vmean.max(), (c @ v / n).max(axis=1))
    counts = x.sum(axis=0)
    chi2, pval = metrics.chi_square_uniform(counts)
    chi2_reps = n * k * ((means - 1.0 / k) ** 2).sum(axis=1)  # the same statistic on each resample's counts
    if s.letters is not None and np.shape(s.letters) == x.shape:
        lm = c @ np.asarray(s.letters, dtype=float) / n
        est["a_bias"] = metrics.position_bias(np.asarray(s.letters, dtype=float).mean(axis=0))
        reps["a_bias"] = lm[:, 0] / lm.sum(axis=1) - 1.0 / k
    vs: dict = {}
    for p, vec in populations.items():
        if vec is None:
            vs[p] = None
            continue
        vec = np.asarray(vec, dtype=float)
        kl, kl_r = metrics.kl_divergence(mean, vec), metrics.kl_divergence(means, vec)
        tv, tv_r = metrics.total_variation(mean, vec), metrics.total_variation(means, vec)
        est[("kl", p)], reps[("kl", p)] = _stat(kl, kl_r)
        est[("tv", p)], reps[("tv", p)] = _stat(tv, tv_r)
        est[("closer", p)], reps[("closer", p)] = _stat(kl < est["kl_u"], kl_r < reps["kl_u"])
        entry = {"shares": {o.text: float(w) for o, w in zip(q.options, vec / vec.sum())},
                 "kl": float(kl), "kl_ci95": ci(kl_r, kl), "tv": float(tv), "tv_ci95": ci(tv_r, tv),
                 "wasserstein": None, "wasserstein_ci95": None,
                 "closer_than_uniform": None if p == UNIFORM else bool(kl < est["kl_u"])}
        if q.ordered:
            w, w_r = metrics.wasserstein_ordinal(mean, vec), metrics.wasserstein_ordinal(means, vec)
            est[("w", p)], reps[("w", p)] = _stat(w, w_r)
            entry |= {"wasserstein": float(w), "wasserstein_ci95": ci(w_r, w)}
        vs[p] = entry
    out = {
        "vs_baseline": vs,
        "chi2_uniform": {"statistic": chi2, "ci95": ci(chi2_reps, chi2), "df": k - 1, "p_value": pval,
                         "counts": {o.text: float(cnt) for o, cnt in zip(q.options, counts)}},
        "normalized_entropy_ci95": ci(reps["entropy"], est["entropy"]),
        "kl_to_uniform_ci95": ci(reps["kl_u"], est["kl_u"]),
        "a_bias_ci95": ci(reps["a_bias"], est["a_bias"]) if "a_bias" in reps else None,
        "modal_answer": q.options[int(np.argmax(vmean))].text,
        "modal_share": est["modal"],
        "modal_share_ci95": ci(reps["modal"], est["modal"]),
    }
    return out, _Q(est, reps)


def _agg(qs: list[_Q], key) -> dict | None:
    """Mean over the questions that have `key`, with the interval of the per-replicate means."""
    have = [q for q in qs if key in q.est]
    if not have:
        return None
    reps = np.mean([q.reps[key] for q in have], axis=0)
    est = float(np.mean([q.est[key] for q in have]))
    return {"estimate": est, "ci95": ci(reps, est), "n_questions": len(have)}


def _diff(a: list[_Q], ka, b: list[_Q], kb) -> dict:
    """Paired bootstrap of mean over b of kb minus mean over a of ka."""
    est = np.mean([q.est[kb] for q in b]) - np.mean([q.est[ka] for q in a])
    reps = np.mean([q.reps[kb] for q in b], axis=0) - np.mean([q.reps[ka] for q in a], axis=0)
    return {"estimate": float(est), "ci95": ci(reps, est)}


def analyze_survey(samples: Mapping[str, QuestionSamples], populations: Mapping[str, Mapping[str, np.ndarray | None]],
                   n_boot: int = N_BOOT, seed: int = 0) -> tuple[dict[str, dict], dict]:
    """(per-question additions keyed by question id, the survey's `analysis` dict).

    `samples`: question id -> QuestionSamples, in questionnaire order. `populations`: name -> {question id -> share
    vector in form order, or None (no baseline)}; a question missing from a population's mapping counts as None.
    """
    per_q: dict[str, dict] = {}
    inner: dict[str, _Q] = {}
    for var, s in samples.items():
        per_q[var], r = analyze_question(s, {p: vecs.get(var) for p, vecs in populations.items()}, n_boot, seed)
        if r is not None:
            inner[var] = r
    qs = list(inner.values())
    pops: dict[str, dict] = {}
    for p, vecs in populations.items():
        covered = [var for var in inner if vecs.get(var) is not None]
        cq = [inner[v] for v in covered]
        pop_entropy = [float(metrics.normalized_entropy(vecs[v])) for v in covered]
        pops[p] = {
            "n_questions": len(covered),
            "no_baseline": [v for v in inner if vecs.get(v) is None],
            "mean_kl": _agg(cq, ("kl", p)),
            "mean_tv": _agg(cq, ("tv", p)),
            "mean_wasserstein": _agg(cq, ("w", p)),
            "closer_than_uniform": None if p == UNIFORM else _agg(cq, ("closer", p)),
            "population_normalized_entropy": float(np.mean(pop_entropy)) if pop_entropy else None,
            "model_normalized_entropy": _agg(cq, "entropy"),
        }
    ranked = sorted((p for p in pops if pops[p]["n_questions"]), key=lambda p: pops[p]["mean_kl"]["estimate"])
    common = [v for v in inner if all(populations[p].get(v) is not None for p in ranked)] if ranked else []
    ranking = []
    for i, p in enumerate(ranked):
        cov = [inner[v] for v in inner if populations[p].get(v) is not None]
        entry = {"rank": i + 1, "population": p, "reference": p == UNIFORM, "n_questions": pops[p]["n_questions"],
                 "mean_kl": pops[p]["mean_kl"]["estimate"], "ci95": pops[p]["mean_kl"]["ci95"],
                 "mean_kl_common": _agg([inner[v] for v in common], ("kl", p)), "gap_to_next": None}
        if i + 1 < len(ranked):
            nxt = ranked[i + 1]
            entry["gap_to_next"] = _diff(cov, ("kl", p), [inner[v] for v in inner if populations[nxt].get(v) is not None],
                                         ("kl", nxt))
        ranking.append(entry)
    summary = {
        "n_boot": n_boot, "seed": seed, "confidence": 1 - ALPHA, "method": METHOD,
        "n_questions": len(qs),
        "a_bias": _agg(qs, "a_bias"),
        "normalized_entropy": _agg(qs, "entropy"),
        "kl_to_uniform": _agg(qs, "kl_u"),
        "modal_share": _agg(qs, "modal"),
        "populations": pops,
        "ranking": ranking,
        "ranking_common_questions": len(common),
    }
    return per_q, summary


# ------------------------------------------------------------------------------- side by side (probe compare)


def _pick(a: dict | None) -> dict | None:
    return None if not a else {"estimate": a["estimate"], "ci95": a["ci95"], "n_questions": a.get("n_questions")}


def compare(reports: list[dict]) -> dict:
    """Reports (probe.report.build) side by side: one column per (campaign, model, survey), one row per measure;
    per survey a question matrix; and refusal rates per (campaign, model, set)."""
    multi = len(reports) > 1
    columns, questions, refusals, names = [], {}, [], []
    for rep in reports:
        cid = rep["campaign"]["id"]
        for model, m in rep["models"].items():
            label = f"{model} @ {cid}" if multi else model
            for sname, s in m["surveys"].items():
                a, sm = s.get("analysis") or {}, s["summary"]
                pops = a.get("populations", {})
                names += [p for p in pops if p not in names]
                col = len(columns)
                columns.append({
                    "campaign": cid, "model": model, "survey": sname, "simulator": m["simulator"], "label": label,
                    "n_answers": sm["n_answers"], "invalid_rate": sm["invalid_rate"],
                    "mean_a_bias": _pick(a.get("a_bias")),
                    "mean_normalized_entropy": _pick(a.get("normalized_entropy")),
                    "mean_kl_to_uniform": _pick(a.get("kl_to_uniform")),
                    "modal_share": _pick(a.get("modal_share")),
                    "mean_kl_to_baseline": {p: _pick(x["mean_kl"]) for p, x in pops.items()},
                    "closer_than_uniform": {p: _pick(x["closer_than_uniform"]) for p, x in pops.items() if p != UNIFORM},
                    "closest": (a.get("ranking") or [{}])[0].get("population"),  # uniform included
                })
                for var, q in s["questions"].items():
                    row = questions.setdefault(sname, {}).setdefault(var, {})
                    row[col] = {"kl_to_uniform": q["kl_to_uniform"], "kl_to_baseline": q["kl_to_baseline"],
                                "modal_answer": q.get("modal_answer"), "modal_share": q.get("modal_share")}
            for pname, r in m["refusals"].items():
                refusals.append({"campaign": cid, "model": model, "set": pname, "label": label, "n": r["n"],
                                 "refusal_rate": r["refusal_rate"], "ci95": r["ci95"]})
    matrix = {s: {v: [cells.get(i) for i in range(len(columns))] for v, cells in qs.items()} for s, qs in questions.items()}
    return {"campaigns": [r["campaign"]["id"] for r in reports], "baselines": names, "columns": columns,
            "questions": matrix, "refusals": refusals}


def _fmt(x, d: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, dict):
        return _fmt(x["estimate"], d) + ("" if x.get("ci95") is None else f" [{x['ci95'][0]:.{d}f}, {x['ci95'][1]:.{d}f}]")
    return f"{x:.{d}f}" if isinstance(x, float) else str(x)


def compare_rows(data: dict) -> list[tuple[str, list[str]]]:
    """(measure, one cell per column) rows of the side-by-side summary."""
    cols = data["columns"]
    rows = [("survey", [c["survey"] for c in cols]), ("simulator", ["yes" if c["simulator"] else "no" for c in cols]),
            ("answers", [str(c["n_answers"]) for c in cols]), ("invalid rate", [_fmt(c["invalid_rate"]) for c in cols])]
    for key, title in (("mean_a_bias", "mean A-bias"), ("mean_normalized_entropy", "mean norm. entropy"),
                       ("mean_kl_to_uniform", "mean KL to uniform"), ("modal_share", "modal share")):
        rows.append((title, [_fmt(c[key]) for c in cols]))
    for b in data["baselines"]:
        if b != UNIFORM:
            rows.append((f"mean KL to {b}", [_fmt(c["mean_kl_to_baseline"].get(b)) for c in cols]))
            rows.append((f"closer to {b} than uniform", [_fmt(c["closer_than_uniform"].get(b)) for c in cols]))
    rows.append(("closest (lowest mean KL)", [c["closest"] or "–" for c in cols]))
    return rows


def matrix_baseline(data: dict) -> str:
    return next((b for b in data["baselines"] if b != UNIFORM), UNIFORM)


def matrix_cell(cell: dict | None, what: str, baseline: str) -> str:
    if cell is None:
        return "–"
    if what == "modal":
        return "–" if cell["modal_answer"] is None else f"{cell['modal_answer'][:28]} ({cell['modal_share']:.2f})"
    v = cell["kl_to_uniform"] if baseline == UNIFORM else cell["kl_to_baseline"].get(baseline)
    return _fmt(v) if v is not None or baseline == UNIFORM else "no baseline"


def compare_markdown(data: dict, what: str = "kl") -> str:
    labels = [c["label"] for c in data["columns"]]
    lines = ["# Comparison of " + ", ".join(data["campaigns"]), "",
             "| measure | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    lines += [f"| {k} | " + " | ".join(v) + " |" for k, v in compare_rows(data)]
    b = matrix_baseline(data)
    for sname, qs in data["questions"].items():
        title = "modal answer (share of samples)" if what == "modal" else f"KL to {b} (bits)"
        lines += ["", f"## Survey {sname}: {title}", "", "| question | " + " | ".join(labels) + " |",
                  "|---" * (len(labels) + 1) + "|"]
        lines += [f"| {v} | " + " | ".join(matrix_cell(c, what, b) for c in cells) + " |" for v, cells in qs.items()]
    if data["refusals"]:
        lines += ["", "## Refusals", "", "| model | set | n | refusal rate [95% CI] |", "|---|---|---|---|"]
        lines += [f"| {r['label']} | {r['set']} | {r['n']} | {_fmt(r['refusal_rate'])}"
                  + ("" if r["ci95"][0] is None else f" [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]") + " |"
                  for r in data["refusals"]]
    return "\n".join(lines) + "\n"
