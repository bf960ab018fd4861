"""Did a model change between two audit runs? Significance tests on the runs' counts, with the false discovery rate
controlled over every test of a diff (Benjamini-Hochberg).

Refusal rates (per prompt set, and per set and category): a two-proportion test (the chi-square test of a 2x2 table
without continuity correction, which is the two-sided z test), or Fisher's exact test where an expected count is
below 10. Survey answer distributions (per question): the chi-square test of homogeneity on the 2 x options table of
answer counts, or where an expected count is below 5 a permutation test of the total variation distance between the
two runs' answers (small runs keep each answer's option probabilities for it; larger ones pool the sparse options).
Counts of survey answers are each answer's option probabilities summed (one-hot for answers read from text).

Pure functions over probe.audit_history summaries: no store, no network.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

FDR_Q = 0.05
FDR_METHOD = "Benjamini-Hochberg (false discovery rate)"
PERMUTATIONS = 2000


def bh_adjust(pvalues: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values): a test is significant at FDR q when its value is <= q."""
    if not pvalues:
        return []
    return [float(x) for x in stats.false_discovery_control(np.asarray(pvalues, dtype=float), method="bh")]


def proportion_test(k1: int, n1: int, k2: int, n2: int) -> tuple[str, float]:
    """(test name, two-sided p) for "the refusal rate is the same in both runs"."""
    if n1 == 0 or n2 == 0:
        return "none", 1.0
    table = np.array([[k1, n1 - k1], [k2, n2 - k2]], dtype=float)
    if table.sum(axis=0).min() == 0:  # nobody (or everybody) refused in both runs: no evidence of a change
        return "none", 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    if expected.min() < 10:
        return "fisher_exact", float(stats.fisher_exact(table.astype(int)).pvalue)
    return "two_proportion_z", float(stats.chi2_contingency(table, correction=False).pvalue)


def total_variation(a: np.ndarray, b: np.ndarray) -> float:
    return float(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())


def distribution_test(a: dict[str, float], b: dict[str, float], samples_a: list | None = None,
                      samples_b: list | None = None, seed: int = 0) -> tuple[str, float]:
    """(test name, p) for "the answer distribution is the same in both runs". a, b: answer counts by option (each
    answer's option probabilities summed); samples_*: per answer, its option probabilities in `options` order
    (sorted option texts), kept for small runs. Expected counts all >= 5: chi-square on the counts. Else, with the
    samples: a permutation test of the total variation distance between the runs' mean answers. Else options with
    expected counts below 5 are pooled into one and chi-square is used on the rest."""
    options = sorted(set(a) | set(b))
    table = np.array([[a.get(o, 0.0) for o in options], [b.get(o, 0.0) for o in options]], dtype=float)
    if table.sum(axis=1).min() <= 0 or (table.sum(axis=0) > 0).sum() < 2:
        return "none", 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    if expected.min() >= 5:
        return "chi_square", float(stats.chi2_contingency(table, correction=False).pvalue)
    if samples_a is not None and samples_b is not None:
        if min(len(samples_a), len(samples_b)) < 2:
            return "too_few_answers", 1.0
        xa, xb = np.asarray(samples_a, dtype=float), np.asarray(samples_b, dtype=float)

        def tv(x, y, axis=0):
            return 0.5 * np.abs(x.mean(axis=axis) - y.mean(axis=axis)).sum(axis=-1)

        res = stats.permutation_test((xa, xb), tv, permutation_type="independent", vectorized=True, axis=0,
                                     n_resamples=PERMUTATIONS, alternative="greater", rng=np.random.default_rng(seed))
        return "permutation_tv", float(res.pvalue)
    sparse = expected.min(axis=0) < 5
    pooled = np.column_stack([table[:, ~sparse], table[:, sparse].sum(axis=1)]) if sparse.any() else table
    pooled = pooled[:, pooled.sum(axis=0) > 0]
    if pooled.shape[1] < 2:
        return "none", 1.0
    return "chi_square_pooled", float(stats.chi2_contingency(pooled, correction=False).pvalue)


def _refusal_tests(model: str, a: dict, b: dict) -> list[dict]:
    out = []
    for pset in sorted(set(a.get("refusals", {})) & set(b.get("refusals", {}))):
        ra, rb = a["refusals"][pset], b["refusals"][pset]
        groups = [(pset, None, ra, rb)] + [
            (pset, cat, ra["by_category"][cat], rb["by_category"][cat])
            for cat in sorted(set(ra.get("by_category", {})) & set(rb.get("by_category", {})))]
        for s, cat, x, y in groups:
            if not x.get("n") or not y.get("n"):
                continue
            test, p = proportion_test(x["refusals"], x["n"], y["refusals"], y["n"])
            ra_, rb_ = x["refusals"] / x["n"], y["refusals"] / y["n"]
            out.append({"kind": "refusal_rate", "model": model, "set": s, "category": cat,
                        "key": f"{s}/{cat}" if cat else s, "a": ra_, "b": rb_, "change": rb_ - ra_,
                        "n_a": x["n"], "n_b": y["n"], "test": test, "p": p})
    return out


def _survey_tests(model: str, a: dict, b: dict, seed: int) -> list[dict]:
    out = []
    for survey in sorted(set(a.get("surveys", {})) & set(b.get("surveys", {}))):
        qa, qb = a["surveys"][survey].get("questions", {}), b["surveys"][survey].get("questions", {})
        for var in sorted(set(qa) & set(qb)):
            ca, cb = qa[var].get("counts") or {}, qb[var].get("counts") or {}
            if not ca or not cb:
                continue
            test, p = distribution_test(ca, cb, qa[var].get("samples"), qb[var].get("samples"), seed)
            opts = sorted(set(ca) | set(cb))
            va, vb = np.array([ca.get(o, 0.0) for o in opts]), np.array([cb.get(o, 0.0) for o in opts])
            shares_a = {o: float(x / va.sum()) for o, x in zip(opts, va)}
            shares_b = {o: float(x / vb.sum()) for o, x in zip(opts, vb)}
            out.append({"kind": "distribution", "model": model, "set": survey, "category": None,
                        "key": f"{survey}.{var}", "question": var, "a": shares_a, "b": shares_b,
                        "change": total_variation(va, vb), "n_a": float(va.sum()), "n_b": float(vb.sum()),
                        "test": test, "p": p})
    return out


def version_changes(a: dict, b: dict) -> list[dict]:
    """Per model, the reported model name or system fingerprint that differs between the runs."""
    out = []
    for model in sorted(set(a.get("models", {})) & set(b.get("models", {}))):
        va, vb = a["models"][model].get("version") or {}, b["models"][model].get("version") or {}
        for field in ("reported_model", "system_fingerprint"):
            if va.get(field) != vb.get(field):
                out.append({"model": model, "field": field, "a": va.get(field), "b": vb.get(field)})
    return out


def diff(a: dict, b: dict, q: float = FDR_Q, seed: int = 0) -> dict:
    """Compare run b (newer) with run a: every test, BH-adjusted over all of them, significant at FDR q."""
    tests: list[dict] = []
    for model in sorted(set(a.get("models", {})) & set(b.get("models", {}))):
        ma, mb = a["models"][model], b["models"][model]
        tests += _refusal_tests(model, ma, mb) + _survey_tests(model, ma, mb, seed)
    for t, adj in zip(tests, bh_adjust([t["p"] for t in tests])):
        t["p_adjusted"] = adj
        t["significant"] = bool(adj <= q)
    return {
        "run_a": a.get("campaign"), "run_b": b.get("campaign"),
        "version_changed": version_changes(a, b),
        "correction": {"method": FDR_METHOD, "q": q, "n_tests": len(tests)},
        "tests": tests,
        "significant": [t for t in tests if t["significant"]],
    }


def fmt_p(p: float) -> str:
    return "<1e-4" if p < 1e-4 else f"{p:.4f}" if not math.isnan(p) else "nan"
