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
normalized entropy beside the model's on the same questions, and a ranking of populations by (bias-corrected) mean
KL (the paper's state analysis) with paired bootstrap intervals of the gap to the next one.

Estimates: KL (to each population and to uniform), normalized entropy and the chi-square interval's centre are
jackknife bias-corrected: t - (n - 1) (mean of the leave-one-out values - t). Plug-in KL of a mean of n text answers
over m options is biased upward by about (m - 1) / (2 n ln 2) bits (entropy downward), which near zero is as large
as the value itself and, averaged over questions, many standard errors; KL is then floored at 0. TV, Wasserstein and
the modal share stay plug-in (their bias has no good correction; their intervals allow for it).

Intervals (95%), over samples resampled within each question, with the same resamples for every statistic of a
question (so differences are paired); questions are resampled independently, an aggregate recomputed per replicate:
- smooth statistics (KL, KL to uniform, normalized entropy, chi-square, A-bias, the ranking gaps): BCa
  (metrics.bca_interval) on the replicates centred on the bias-corrected estimate, the acceleration from the
  stratified jackknife, and the critical value expanded for small n (metrics.expanded_z). The bootstrap's own
  world has the plug-in value as its truth, so the replicates of a biased statistic centre there, not on the
  bias-corrected estimate; moving them is the bias correction of the interval.
- TV, Wasserstein, modal share: convex in the model distribution, so the plug-in is biased upward (Jensen) near
  zero differences and ties, and the bootstrap cannot see that bias. Upper end: the bootstrap percentile (biased
  upward too: conservative). Lower end: a cross-fitted lower bound (_abs_lower, _max_lower) minus t standard
  errors.
- closer-than-uniform share: from the share of questions clearly closer to the share possibly closer (_closer).
Coverage of all of these is checked on simulated respondents in tests/unit/test_interval_coverage.py. A question
without a population's figure is "no baseline" for that population: None, never guessed.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Mapping
import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from probe import metrics
from probe.questionnaires import Question

N_BOOT = 500
ALPHA = 0.05
UNIFORM = "uniform"
STATE_NAME = re.compile(r"^.+_\d{2}$")  # probe.pums.build_from_pums(..., by_state=True) names state tables NAME_ST

METHOD = {
    "kl": "KL(model || population) in bits (base 2); model = mean of the samples' option-probability vectors; "
          "jackknife bias-corrected (plug-in KL is biased upward by about (m - 1) / (2 n ln 2) bits for n text "
          "answers over m options), floored at 0; likewise KL to uniform and mean KL, and normalized entropy "
          "(biased downward)",
    "tv": "total variation distance, 0.5 * sum |p - q|, in [0, 1]; plug-in (biased upward when shares are close)",
    "wasserstein": "1-D Wasserstein distance over option positions, in option steps; ordered questions only; plug-in",
    "chi2_uniform": "Pearson chi-square against uniform on counts = sum of the samples' option-probability vectors "
                    "(one unit per sample; expected counts in logprobs mode); its ci95 is for the population value "
                    "n k sum (p_i - 1/k)^2, centred on the jackknife bias-corrected statistic",
    "modal_share": "share of samples whose most likely option is the most common one (ties split); 1/k = no agreement; "
                   "plug-in",
    "closer_than_uniform": "share of the population's questions where KL(model || population) < KL(model || uniform)",
    "ci95": "95% bootstrap over samples, resampled within each question (questions independently; aggregates "
            "recomputed per replicate). KL, KL to uniform, normalized entropy, chi-square, A-bias, gaps: BCa on the "
            "replicates centred on the bias-corrected estimate (acceleration from the jackknife), critical value "
            "expanded for small n (sqrt(n / (n - 1)) t_(n-1)). TV, Wasserstein, modal share (biased upward near "
            "ties): from a cross-fitted lower bound minus t standard errors to the bootstrap upper percentile. "
            "closer_than_uniform: from the share of questions clearly closer to the share possibly closer "
            "(difference of the two KLs -/+ z standard errors, z Bonferroni over the questions)",
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


GROUPED = 2000  # from this many samples of a question, resampled_means may resample its distinct rows


def resampled_means(rows: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot x columns) means of the rows over bootstrap resamples (n rows drawn with replacement).

    With GROUPED samples or more of which at most a quarter differ (text answers, a simulator's fixed
    distributions, at any campaign size), each distinct row's count in a resample is drawn instead, one multinomial
    per replicate over the distinct rows: the same distribution of resampled means in O(distinct rows) per
    replicate instead of O(n). Otherwise how often each sample appears in each resample (n draws of an index per
    replicate): below GROUPED samples the draws the report always made, above it 32-bit draws."""
    n = rows.shape[0]
    if n >= GROUPED:
        uniq, inv = _distinct_rows(rows)
        if len(uniq) * 4 <= n:
            counts = rng.multinomial(n, np.bincount(inv.ravel(), minlength=len(uniq)) / n, size=n_boot)
            return counts @ uniq / n
        # many distinct rows: each sample's count, from 32-bit indices (this path's own draws: half the work)
        return _counted_means(rows, rng.integers(0, n, size=(n_boot, n), dtype=np.int32))
    return _counted_means(rows, rng.integers(0, n, size=(n_boot, n)))


def _counted_means(rows: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Means of rows[idx[b]] per replicate b, as counts (bincount a block of replicates at a time) times rows."""
    n_boot, n = idx.shape
    out = np.empty((n_boot, rows.shape[1]))
    step = max(1, 2_000_000 // n)
    for s in range(0, n_boot, step):
        block = idx[s:s + step]
        m = len(block)
        c = np.bincount((np.arange(m)[:, None] * n + block).ravel(), minlength=m * n).reshape(m, n)
        out[s:s + m] = c @ rows / n
    return out


def _distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows, each row's index among them): grouped by a random projection (a sort of n numbers, not of n
    rows), checked exactly; np.unique over whole rows if two different rows ever shared a projection."""
    h = rows @ np.random.default_rng(0).standard_normal(rows.shape[1])
    _, first, inv = np.unique(h, return_index=True, return_inverse=True)
    uniq = rows[first]
    if not np.array_equal(uniq[inv], rows):
        uniq, inv = np.unique(rows, axis=0, return_inverse=True)
    return uniq, inv.ravel()


def votes(x: np.ndarray, atol: float = 1e-9) -> np.ndarray:
    """Each row's vote for its most likely option(s): 1 for a unique argmax, split equally among ties."""
    top = x >= x.max(axis=1, keepdims=True) - atol
    return top / top.sum(axis=1, keepdims=True)


def ci(values: np.ndarray, estimate: float, accel: float = 0.0, bounds: tuple[float, float] = (-np.inf, np.inf),
       z: float | None = None) -> list[float]:
    """BCa interval of the replicates (metrics.bca_interval), clipped to the statistic's range `bounds`."""
    lo, hi = metrics.bca_interval(values, estimate, accel, ALPHA, z)
    return [float(np.clip(lo, *bounds)), float(np.clip(hi, *bounds))]


NONNEG = (0.0, np.inf)
UNIT = (0.0, 1.0)
# per statistic key (or its first element): the range its estimate and interval are clipped to
BOUNDS = {"kl": NONNEG, "kl_u": NONNEG, "entropy": UNIT, "tv": UNIT, "w": NONNEG, "modal": UNIT, "closer": UNIT,
          "chi2": NONNEG}
# convex, piecewise-linear statistics of the mean vector (TV, Wasserstein, the largest vote share): _abs_lower
CONVEX = ("tv", "w", "modal")


def _kind(key) -> str:
    return key[0] if isinstance(key, tuple) else key


def _bounds(key) -> tuple[float, float]:
    return BOUNDS.get(_kind(key), (-np.inf, np.inf))


@dataclass
class _Q:
    """One question's statistics, for its own intervals and the aggregates.

    est: the estimate (bias-corrected where METHOD says so; unclipped); reps: bootstrap replicates (the same
    resamples for every statistic), for the smooth statistics centred like the estimate's sampling distribution;
    jack: jackknife deviations (BCa acceleration); lin: for the convex statistics the cross-fitted lower-bound
    estimate, its variance and the statistic's least possible value, for `closer` the KL difference and its
    variance (see _abs_lower, _closer)."""

    qid: str
    n: int
    est: dict
    reps: dict
    jack: dict
    lin: dict
    sd: dict = dataclasses.field(default_factory=dict)  # the replicates' standard deviations, cached by _crit


SOFT = 2.0  # the cross-fitted lower bounds' smoothing scale, in standard errors (see _abs_lower)


def _soft_sign(d: np.ndarray, se: np.ndarray) -> np.ndarray:
    """sign(d), made linear within SOFT standard errors of 0: clip(d / (SOFT se), -1, 1); sign(d) where se = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(se > 0, np.clip(d / (SOFT * se), -1.0, 1.0), np.sign(d))


def _abs_lower(x: np.ndarray, loo: np.ndarray, a: np.ndarray, b: np.ndarray, w: float) -> tuple[float, float]:
    """Cross-fitted lower bound of theta = w sum_l |a_l . mu - b_l| (TV: a = identity, b = q, w = 1/2;
    Wasserstein: a_l = cumulative sums to option l, b = a q, w = 1), mu the model's true distribution:
    (estimate, its variance).

    |y| >= t y for any t in [-1, 1], so theta >= w sum_l t_l (a_l . mu - b_l) for any t chosen without sample j;
    with t from the mean of the other samples, l_j = w sum_l t_l (a_l . x_j - b_l) has expectation at most theta
    (x_j is independent of them), and so has their mean: an estimate of a lower bound of the true value, free of
    the plug-in's upward (Jensen) bias. t is the sign of the difference, made linear within SOFT standard errors
    of 0 (a hard sign flips between leave-one-out means near a zero difference, which makes the mean of the l_j
    far noisier than their spread says); that costs at most SOFT se / 4 per near-zero difference, nothing where
    the sign is clear (the standard errors come from all samples: a dependence on sample j of order 1/n).
    Variance: the delta method on t(m) (a_l . m - b_l), whose gradient doubles t in the linear zone."""
    n = x.shape[0]
    if n < 2:
        return 0.0, 0.0
    proj = x @ a.T  # n x L
    se = proj.std(axis=0, ddof=1) / np.sqrt(n)
    d = proj.mean(axis=0) - b
    ell = w * (_soft_sign(loo @ a.T - b, se) * (proj - b)).sum(axis=1)
    t = _soft_sign(d, se)
    grad = w * t * np.where(np.abs(d) < SOFT * se, 2.0, 1.0)
    return float(ell.mean()), float((proj @ grad).var(ddof=1) / n)


def _max_lower(v: np.ndarray, loo: np.ndarray) -> tuple[float, float]:
    """Cross-fitted lower bound of theta = max_i mu_i (the modal share; v = the votes): (estimate, variance).

    max_i mu_i >= t . mu for any weights t on the simplex; t = softmax of the other samples' mean vote shares
    at temperature SOFT times the largest standard error (the argmax where every sample votes alike), so
    l_j = t . v_j has expectation at most theta; see _abs_lower. Variance by the delta method on t(m) . m."""
    n, k = v.shape
    if n < 2:
        return 1.0 / k, 0.0
    m = v.mean(axis=0)
    tau = SOFT * float(v.std(axis=0, ddof=1).max()) / np.sqrt(n)
    if tau <= 0:
        return float((votes(loo) * v).sum(axis=1).mean()), 0.0

    def soft(z):
        e = np.exp((z - z.max(axis=-1, keepdims=True)) / tau)
        return e / e.sum(axis=-1, keepdims=True)

    ell = (soft(loo) * v).sum(axis=1)
    t = soft(m)
    grad = t + t * (m - t @ m) / tau
    return float(ell.mean()), float((v @ grad).var(ddof=1) / n)


def _interval(terms: list[tuple[float, _Q, object]], bounds: tuple[float, float] | None = None
              ) -> tuple[float, list[float]]:
    """(estimate, 95% interval) of sum of weight * statistic over (weight, question, key) terms, questions
    resampled independently; all terms of one kind.

    Smooth statistics: BCa over the summed replicates, the acceleration from the stratified jackknife (per
    question the weighted sum of its terms' deviations, sample by sample), the critical value from _crit. Convex
    ones (positive weights): from the cross-fitted lower bound minus t standard errors up to the replicates'
    upper percentile at the same expanded level (the plug-in is biased upward, so that end is conservative).
    `closer`: see _closer."""
    kind = _kind(terms[0][2])
    bounds = _bounds(terms[0][2]) if bounds is None else bounds
    est = float(sum(w * q.est[k] for w, q, k in terms))
    if kind == "closer":
        return est, _closer(terms)
    reps = np.asarray(sum(w * q.reps[k] for w, q, k in terms), dtype=float)
    z, z_t = _crit(terms)
    if kind in CONVEX:
        lb = sum(w * q.lin[k][0] for w, q, k in terms)
        sd = np.sqrt(sum(w * w * q.lin[k][1] for w, q, k in terms))
        least = sum(w * q.lin[k][2] for w, q, k in terms)  # the statistic's least possible value
        hi = float(np.quantile(reps, special.ndtr(z)))
        lo = min(max(lb - z_t * sd, least), hi)
        return est, [float(np.clip(lo, *bounds)), float(np.clip(hi, *bounds))]
    dev: dict[str, np.ndarray] = {}
    for w, q, k in terms:
        dev[q.qid] = dev.get(q.qid, 0.0) + w * q.jack[k]
    accel = metrics.acceleration(np.concatenate([np.ravel(d) for d in dev.values()]))
    return est, ci(reps, est, accel, bounds, z)


def _crit(terms) -> tuple[float, float]:
    """(expanded critical value for the bootstrap replicates, t critical value for a linear estimate with an
    unbiased variance): per question n_q samples, df = sum (n_q - 1); the replicates' spread is too small by
    sqrt((n_q - 1) / n_q) in each question, which the first value undoes (metrics.expanded_z)."""
    by_q: dict[str, tuple[float, int]] = {}
    for w, q, k in terms:
        if k not in q.sd:
            q.sd[k] = float(np.std(q.reps[k]))
        by_q[q.qid] = (by_q.get(q.qid, (0.0, q.n))[0] + abs(w) * q.sd[k], q.n)
    df = sum(n - 1 for _, n in by_q.values())
    if df < 1:
        zz = float(special.ndtri(1 - ALPHA / 2))
        return zz, zz
    v = np.array([s * s for s, _ in by_q.values()])
    f = np.array([n / (n - 1) if n > 1 else 1.0 for _, n in by_q.values()])
    infl = float((v * f).sum() / v.sum()) if v.sum() > 0 else 1.0
    t = _t_crit(df)
    return float(np.sqrt(infl) * t), t


@functools.lru_cache(maxsize=256)
def _t_crit(df: int) -> float:
    return float(stats.t.ppf(1 - ALPHA / 2, df))


def _closer(terms: list[tuple[float, _Q, object]]) -> list[float]:
    """Interval of the share of questions where KL(model || population) < KL(model || uniform).

    The difference of the two KLs is linear in the model distribution (sum_i p_i log2(u_i / q_i)), so per question
    it has an unbiased estimate d with a standard error s. Lower end: the share of questions with d + z s < 0
    (clearly closer), upper end: with d - z s < 0 (possibly closer), z = Phi^-1(1 - alpha / (2 Q)) (Bonferroni over
    the Q questions), so the share's interval holds whichever questions are near the boundary."""
    z = float(special.ndtri(1 - ALPHA / (2 * len(terms))))
    d = np.array([q.lin[k][0] for _, q, k in terms])
    s = np.sqrt([q.lin[k][1] for _, q, k in terms])
    w = np.array([w for w, _, _ in terms])
    return [float(w @ (d + z * s < 0)), float(w @ (d - z * s < 0))]


def _one(q: _Q, key) -> tuple[float, list[float]]:
    """A question's own (clipped) estimate and interval for `key`."""
    est, iv = _interval([(1.0, q, key)])
    return float(np.clip(est, *_bounds(key))), iv


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
    v = votes(x)
    letters = np.asarray(s.letters, dtype=float) if s.letters is not None and np.shape(s.letters) == x.shape else None
    # resampled means of the answers, the votes and the positions: one product (reads the counts once)
    cols = [x, v] + ([letters] if letters is not None else [])
    all_means = np.split(resampled_means(np.hstack(cols), n_boot, rng), [k * (i + 1) for i in range(len(cols) - 1)],
                         axis=1)
    mean, means, loo = x.mean(axis=0), all_means[0], metrics.leave_one_out_means(x)
    uniform = np.full(k, 1.0 / k)
    r = _Q(q.id, n, {}, {}, {}, {})

    def put(key, f) -> None:
        """Smooth statistic f of the mean vector: the jackknife bias-corrected estimate t - b, b = (n - 1) (mean
        of the leave-one-out values - t); the replicates' spread, centred on it (the bootstrap's own world has
        the plug-in value as its truth, so its replicates centre there); the jackknife deviations."""
        t, t_r = f(mean), f(means)
        t_j = f(loo) if n > 1 else np.full(1, t)  # one sample: no leave-one-out, no correction
        b = (n - 1) * (t_j.mean() - t)
        r.est[key] = float(t - b)
        r.reps[key] = np.asarray(t_r - t_r.mean() + t - b, dtype=float)
        r.jack[key] = metrics.jackknife_deviations(t_j) if n > 1 else np.zeros(1)

    def put_convex(key, f, lower, least=0.0, rows_mean=mean, rows_means=means) -> None:
        """Convex piecewise-linear f of the mean of the rows (x, or the votes), at least `least`; its cross-fitted
        lower bound (estimate, variance)."""
        r.est[key] = float(f(rows_mean))
        r.reps[key] = np.asarray(f(rows_means), dtype=float)
        r.lin[key] = (*lower, least)

    put("entropy", metrics.normalized_entropy)
    put("kl_u", lambda m: metrics.kl_divergence(m, uniform))
    put_convex("modal", lambda m: m.max(axis=-1), _max_lower(v, metrics.leave_one_out_means(v)), 1.0 / k,
               v.mean(axis=0), all_means[1])
    counts = x.sum(axis=0)
    chi2, pval = metrics.chi_square_uniform(counts)
    put("chi2", lambda m: n * k * ((m - 1.0 / k) ** 2).sum(axis=-1))  # = chi2 on n samples' counts
    if letters is not None:
        lmean, lmeans, lloo = letters.mean(axis=0), all_means[2], metrics.leave_one_out_means(letters)
        share_a = lambda m: m[..., 0] / m.sum(axis=-1) - 1.0 / k  # noqa: E731
        r.est["a_bias"], r.reps["a_bias"] = metrics.position_bias(lmean), share_a(lmeans)
        r.jack["a_bias"] = metrics.jackknife_deviations(share_a(lloo)) if n > 1 else np.zeros(1)
    vs: dict = {}
    for p, vec in populations.items():
        if vec is None:
            vs[p] = None
            continue
        vec = np.asarray(vec, dtype=float)
        vec = vec / vec.sum()
        put(("kl", p), lambda m: metrics.kl_divergence(m, vec))
        put_convex(("tv", p), lambda m: metrics.total_variation(m, vec), _abs_lower(x, loo, np.eye(k), vec, 0.5))
        # KL(m || vec) - KL(m || uniform) = m . log2(uniform / vec'): linear (vec' smoothed as kl_divergence does)
        sm = (vec + metrics.KL_EPSILON) / (vec + metrics.KL_EPSILON).sum() if np.any((vec == 0) & (mean > 0)) else vec
        with np.errstate(divide="ignore"):
            lr = np.where(mean > 0, np.log2(uniform / sm), 0.0)
        dl = x @ lr
        closer = bool(dl.mean() < 0)
        r.est[("closer", p)] = float(closer)
        r.lin[("closer", p)] = (float(dl.mean()), float(dl.var(ddof=1) / n) if n > 1 else np.inf)
        kl, kl_ci = _one(r, ("kl", p))
        tv, tv_ci = _one(r, ("tv", p))
        entry = {"shares": {o.text: float(w) for o, w in zip(q.options, vec)},
                 "kl": kl, "kl_ci95": kl_ci, "tv": tv, "tv_ci95": tv_ci,
                 "wasserstein": None, "wasserstein_ci95": None,
                 "closer_than_uniform": None if p == UNIFORM else closer}
        if q.ordered:
            tri = np.tril(np.ones((k - 1, k)))  # row l: ones at options 0..l (cumulative share up to option l)
            put_convex(("w", p), lambda m: metrics.wasserstein_ordinal(m, vec), _abs_lower(x, loo, tri, tri @ vec, 1.0))
            w, w_ci = _one(r, ("w", p))
            entry |= {"wasserstein": w, "wasserstein_ci95": w_ci}
        vs[p] = entry
    out = {
        "vs_baseline": vs,
        "chi2_uniform": {"statistic": chi2, "ci95": _one(r, "chi2")[1], "df": k - 1, "p_value": pval,
                         "counts": {o.text: float(cnt) for o, cnt in zip(q.options, counts)}},
        "normalized_entropy_ci95": _one(r, "entropy")[1],
        "kl_to_uniform_ci95": _one(r, "kl_u")[1],
        "a_bias_ci95": _one(r, "a_bias")[1] if "a_bias" in r.est else None,
        "modal_answer": q.options[int(np.argmax(v.mean(axis=0)))].text,
        "modal_share": r.est["modal"],
        "modal_share_ci95": _one(r, "modal")[1],
    }
    return out, r


def _agg(qs: list[_Q], key) -> dict | None:
    """Mean over the questions that have `key`, with the interval of that mean (see _interval)."""
    have = [q for q in qs if key in q.est]
    if not have:
        return None
    est, iv = _interval([(1.0 / len(have), q, key) for q in have])
    return {"estimate": float(np.clip(est, *_bounds(key))), "ci95": iv, "n_questions": len(have)}


def _raw_mean(qs: list[_Q], key) -> float:
    """The unclipped mean estimate (for ordering populations)."""
    return float(np.mean([q.est[key] for q in qs]))


def _diff(a: list[_Q], ka, b: list[_Q], kb) -> dict:
    """Paired bootstrap (BCa) of mean over b of kb minus mean over a of ka (bias-corrected, unclipped)."""
    terms = [(1.0 / len(b), q, kb) for q in b] + [(-1.0 / len(a), q, ka) for q in a]
    est, iv = _interval(terms, (-np.inf, np.inf))
    return {"estimate": est, "ci95": iv}


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
    ranked = sorted((p for p in pops if pops[p]["n_questions"]),
                    key=lambda p: _raw_mean([inner[v] for v in inner if populations[p].get(v) is not None], ("kl", p)))
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
