"""The whole-questionnaire tests of synthetic individuals against census microdata (the paper's Section 5,
signal_test.py and discriminator_test.py), with scikit-learn.

Data: one row per individual, one column per variable, 0 = blank (not asked, not applicable, invalid), as the paper
fills NaN with 0. Both sides go through the questionnaire's skip rules (`apply_skip_rules`): the model's individuals
were asked by them, and census rows are blanked where the form would not have asked, so a blank means the same on
both sides and neither test can tell the sources apart by the form's logic alone. Only variables the census table
has (not all blank) are compared.

- Signal test: for each variable with a `signal` split in the questionnaire, y = (code >= split) over the rows
  where it was answered, predicted from the other variables (less those the form's skip rules tie to it, and the
  split's own `drop` list) by categorical naive Bayes, logistic regression (one-hot) and gradient boosting
  (HistGradientBoostingClassifier), each over `n_seeds` random 80/20 splits; beside the majority-class rate: the
  accuracy on the test rows of always predicting the training rows' majority class (the paper takes the test rows'
  own majority share, which on a balanced target sits above 0.5 by the split's noise alone). The same on an equal-sized PWGTP-weighted draw of census rows. Data with the census's signal scores
  like the census; answers drawn independently per question score at the majority rate.
- Discriminator test: gradient boosting telling the model's individuals (1) from an equal-sized PWGTP-weighted
  draw of census individuals (0), fresh draw and 80/20 split per seed; accuracy with a t interval over seeds.
  0.5 means indistinguishable.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from probe.microdata import Microdata
from probe.questionnaires import Questionnaire

N_SEEDS = 5
METHODS = ("majority", "naive_bayes", "logistic", "boosting")


def variables_for(questionnaire: Questionnaire, md: Microdata) -> list[str]:
    """The questionnaire's variables the census table has with at least one answer, in form order."""
    return [q.id for q in questionnaire.questions if q.id in md.variables and (md.column(q.id) != 0).any()]


def to_matrix(rows: list[dict], variables: list[str]) -> np.ndarray:
    """{VAR: code or None} per individual -> int matrix, 0 = blank."""
    return np.array([[r.get(v) or 0 for v in variables] for r in rows], dtype=np.int64).reshape(len(rows), len(variables))


def apply_skip_rules(questionnaire: Questionnaire, x: np.ndarray, variables: list[str]) -> np.ndarray:
    """Blank, in form order, each variable whose ask_when rule fails on the row (a blank condition fails, as in
    the form); conditions on variables not in `variables` cannot be checked and are left out."""
    x = x.copy()
    col = {v: i for i, v in enumerate(variables)}
    for q in questionnaire.questions:
        if q.id not in col or not q.ask_when:
            continue
        asked = np.ones(len(x), dtype=bool)
        for var, codes in q.ask_when.items():
            if var in col:
                asked &= np.isin(x[:, col[var]], codes)
        x[~asked, col[q.id]] = 0
    return x


def census_draw(md: Microdata, variables: list[str], n: int, seed: int) -> np.ndarray:
    """n census rows drawn with replacement, PWGTP-weighted (the paper's sample(weights=PWGTP))."""
    rng = np.random.default_rng(seed)
    cum = np.cumsum(md.weights)
    idx = np.searchsorted(cum, rng.random(n) * cum[-1], side="right")
    return md.codes[idx][:, [md.variables.index(v) for v in variables]].astype(np.int64)


def dropped_predictors(questionnaire: Questionnaire, target: str) -> set[str]:
    q = questionnaire.question(target)
    tied = {p.id for p in questionnaire.questions if p.ask_when and target in p.ask_when}
    return tied | set(q.signal.drop if q.signal else [])


def _models(seed: int, n_features: int):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import CategoricalNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    return {
        "naive_bayes": CategoricalNB(min_categories=np.full(n_features, 32)),
        "logistic": make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression(max_iter=500)),
        "boosting": _boosting(seed),
    }


def _boosting(seed: int):
    """Gradient boosting with early stopping on a held-out tenth: without it, 100 rounds on a few thousand rows fit
    noise and score below the majority rate on data with no signal (and take ten times longer)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(early_stopping=True, random_state=seed)


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.random.default_rng(seed).permutation(n)
    m = int(n * 0.8)
    return ids[:m], ids[m:]


def _fit_score(model, x_tr, y_tr, x_te, y_te) -> float:
    counts = np.bincount(y_tr, minlength=2)
    if counts.min() < 5:  # (almost) one class: nothing to learn (and too few to hold out for early stopping)
        return float(np.mean(y_te == int(np.argmax(counts))))
    if len(y_tr) < 200 and hasattr(model, "early_stopping"):  # a tenth held out would hold too few of each class
        model.set_params(early_stopping=False, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on tiny campaigns
        model.fit(x_tr, y_tr)
        return float(np.mean(model.predict(x_te) == y_te))


def signal_test(questionnaire: Questionnaire, x: np.ndarray, variables: list[str], n_seeds: int = N_SEEDS) -> dict:
    """{VAR: {n, majority, naive_bayes, logistic, boosting}}: mean test accuracy over the seeds' splits (and
    `boosting_sd`); variables with fewer than 10 answered rows get n only."""
    out = {}
    for v in variables:
        q = questionnaire.question(v)
        if q.signal is None:
            continue
        j = variables.index(v)
        rows = x[:, j] != 0
        drop = dropped_predictors(questionnaire, v) | {v}
        feats = [i for i, u in enumerate(variables) if u not in drop]
        xs, ys = x[rows][:, feats], (x[rows, j] >= q.signal.split).astype(int)
        entry: dict = {"n": int(rows.sum()), "predictors": [variables[i] for i in feats]}
        if entry["n"] < 10 or not feats:
            out[v] = entry
            continue
        acc: dict[str, list[float]] = {m: [] for m in METHODS}
        for s in range(n_seeds):
            tr, te = _split(len(ys), s)
            acc["majority"].append(float(np.mean(ys[te] == int(ys[tr].mean() >= 0.5))))
            for name, model in _models(s, len(feats)).items():
                acc[name].append(_fit_score(model, xs[tr], ys[tr], xs[te], ys[te]))
        entry |= {m: float(np.mean(a)) for m, a in acc.items()}
        entry["boosting_sd"] = float(np.std(acc["boosting"], ddof=1)) if n_seeds > 1 else None
        out[v] = entry
    return out


def _t_interval(values: list[float]) -> list[float | None]:
    if len(values) < 2:
        return [None, None]
    from scipy import stats

    m, se = float(np.mean(values)), float(np.std(values, ddof=1) / math.sqrt(len(values)))
    h = float(stats.t.ppf(0.975, len(values) - 1)) * se
    return [m - h, m + h]


def discriminator_test(x_model: np.ndarray, md: Microdata, variables: list[str], questionnaire: Questionnaire,
                       n_seeds: int = N_SEEDS) -> dict:
    """{accuracy, ci95, per_seed, n_model, n_census}: gradient boosting, model individuals vs census draws."""
    n = len(x_model)
    accs = []
    for s in range(n_seeds):
        census = apply_skip_rules(questionnaire, census_draw(md, variables, n, 1000 + s), variables)
        xs = np.vstack([x_model, census])
        ys = np.r_[np.ones(n, dtype=int), np.zeros(n, dtype=int)]
        tr, te = _split(len(ys), s)
        accs.append(_fit_score(_boosting(s), xs[tr], ys[tr], xs[te], ys[te]))
    return {"accuracy": float(np.mean(accs)), "ci95": _t_interval(accs), "per_seed": accs,
            "n_model": n, "n_census": n, "seeds": n_seeds}


def run(questionnaire: Questionnaire, rows: list[dict], md: Microdata, n_seeds: int = N_SEEDS) -> dict:
    """Both tests for model individuals `rows` ({VAR: code or None}) against the census table `md`.

    One OpenMP thread: these fits are small (milliseconds each), and gradient boosting's thread pool on a machine
    whose cores are busy spins for seconds per fit (100x slower on a loaded 2-core box)."""
    import sklearn.ensemble  # noqa: F401 - loads the OpenMP runtime first: threadpoolctl limits only loaded ones
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _run(questionnaire, rows, md, n_seeds)


def _run(questionnaire: Questionnaire, rows: list[dict], md: Microdata, n_seeds: int) -> dict:
    variables = variables_for(questionnaire, md)
    x = apply_skip_rules(questionnaire, to_matrix(rows, variables), variables)
    census = apply_skip_rules(questionnaire, census_draw(md, variables, len(rows), 0), variables)
    model_sig = signal_test(questionnaire, x, variables, n_seeds)
    census_sig = signal_test(questionnaire, census, variables, n_seeds)
    signal = {v: {"n": model_sig[v]["n"], "predictors": model_sig[v]["predictors"],
                  "model": {m: model_sig[v].get(m) for m in METHODS},
                  "census": {m: census_sig[v].get(m) for m in METHODS}} for v in model_sig}
    return {"census": {"name": md.name, "records": int(len(md.weights)), "source": md.meta.get("source"),
                       "year": md.meta.get("year")},
            "variables": variables, "n_individuals": len(rows), "seeds": n_seeds, "signal": signal,
            "discriminator": discriminator_test(x, md, variables, questionnaire, n_seeds) if rows else None}
