"""Store -> Report: per model, per survey question and per refusal set, the aggregates DESIGN.md promises.

JSON keys (the contract): models.<model>.surveys.<survey>.questions.<VAR> with n, invalid, distribution
(share per option, keyed by the option text as shown), position_shares (share per letter), a_bias,
normalized_entropy, kl_to_uniform, kl_to_baseline.<population>; ...surveys.<survey>.summary; and
models.<model>.refusals.<set> with n, refusals, refusal_rate, ci95 [lo, hi], by_category. Beside them (per set and
per category): no_content, no_content_rate, refusal_rate_counting_no_content_as_refusal and its ci95_...; per set:
labeller (the campaign's chosen refusal labeller), classifier (the labellers whose labels are counted), fallback
(None, or {n, labellers} that filled in where the chosen labeller gave no label), unlabelled, method (how the rates
are computed, in words).
Added by probe.analysis (bootstrap 95% intervals): per question vs_baseline.<population> (shares, kl, tv,
wasserstein, each with *_ci95; None = no baseline), chi2_uniform, modal_answer/modal_share, *_ci95 of
normalized_entropy, kl_to_uniform and a_bias; per survey `analysis` (population ranking, closer-than-uniform share).
How answers were read: per question letter_mass (mean first-token probability on the option letters over the answers
that have one, logprobs and exact; None when all were read from text) and invalid_reasons (reason -> count, every
"letter mass x < 0.1" counted as "letter mass < 0.1"); per survey summary mean_letter_mass (mean over questions),
invalid_reasons (summed), answer_modes ({logprobs, exact, text} -> answers read that way), fallback_to_text (answers
asked in logprobs or auto mode but read from the text: LiteLLM dropped logprobs for the provider, or the response had
none) and dropped_params (parameter -> answers whose call LiteLLM sent without it, e.g. seed).
Synthetic individuals (--mode individuals): per survey `individuals` with n_individuals, microdata (the census table,
or None with `note` "no microdata ..."), census {name, records, source, year}, variables, seeds,
signal.<VAR>.{n, predictors, model, census} (each {majority, naive_bayes, logistic, boosting}: mean accuracy over
seeds) and discriminator {accuracy, ci95, per_seed, n_model, n_census, seeds} (probe.individual_tests).
Baselines: --baseline, else the campaign's, else spec.DEFAULT_BASELINES (uniform, us_2019). A default population that
does not fit a survey's questionnaire (us_2019 is for acs2019) is left out of that survey; any other is an error.
"""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from probe import analysis, campaigns, metrics, questionnaires
from probe.render import LETTERS
from probe.spec import DEFAULT_BASELINES
from probe.store import Store

REFUSED = ("refusal", "partial")
NO_CONTENT = "no_content"  # a response with null or blank text (probe.labelling): out of the refusal rate by default


@dataclass
class QuestionData:
    """Per-sample vectors behind a question's aggregates, kept for the analyses (bootstrap, baselines)."""

    question: questionnaires.Question
    option_probs: list[list[float]] = field(default_factory=list)  # per valid sample, form order
    letter_probs: list[list[float]] = field(default_factory=list)  # per valid sample, position order
    invalid: int = 0
    errors: int = 0
    pending: int = 0
    mass_sum: float = 0.0  # letter mass summed over the labelled answers that have one
    mass_n: int = 0
    invalid_reasons: Counter = field(default_factory=Counter)
    modes: Counter = field(default_factory=Counter)  # answer mode really used -> labelled answers
    fallback_to_text: int = 0  # logprobs asked, the answer read from the text
    dropped: Counter = field(default_factory=Counter)  # parameter LiteLLM dropped -> labelled answers

    def matrix(self) -> np.ndarray:
        return np.asarray(self.option_probs, dtype=float).reshape(-1, len(self.question.options))


def collect(store: Store, campaign_id: str, prompts: tuple[dict, dict] | None = None,
            individuals: dict | None = None, costs: dict | None = None) -> tuple[dict, dict]:
    """(survey data[model][survey][VAR] -> QuestionData, refusal rows[model][set] -> list of dicts).

    prompts: (questionnaires, prompt sets) by name, as campaigns.prompts_of gives them (the campaign's stored
    content); read from the store when not given. A whole-questionnaire item (kind "individual") adds each asked
    question's answer to that question's QuestionData, and, when `individuals` is given, its answers
    ({VAR: code or None}) to individuals[model][survey] (a list); pending or failed individuals count nowhere.

    Survey items are read column-wise (probe.report_columns: one streamed select of plain columns, counted as they
    pass, vectors into numpy arrays), the other kinds row by row as collect_rows does; the result equals collect_rows's (tests/integration/test_report_fast.py).
    A question's samples are in sample order, survey items before individuals' turns. costs, when given, is filled
    with the spend figures per model (report_columns.survey_cells), for probe.spend.summary."""
    from probe import report_columns

    qcache, pcache = prompts or campaigns.prompts_of(store.campaign(campaign_id))
    codes = {(s, q.id): q.codes for s, qq in qcache.items() for q in qq.questions}
    surveys: dict = defaultdict(lambda: defaultdict(dict))
    for (model, source, qid), c in report_columns.survey_cells(store, campaign_id, codes, costs).items():
        q = qcache[source].question(qid)
        d = surveys[model][source][q.id] = QuestionData(q)
        d.option_probs, d.letter_probs = c.arrays(len(q.codes))
        d.invalid, d.errors, d.pending = c.invalid, c.errors, c.pending
        d.mass_sum, d.mass_n = c.mass_sum, c.mass_n
        for reason, n in c.invalid_reasons.items():
            d.invalid_reasons[reason_kind(reason)] += n
        d.modes, d.fallback_to_text, d.dropped = c.modes, c.fallback_to_text, c.dropped
    kinds = ("refusal", "individual")
    rows = store.rows(campaign_id, kinds)
    if any(item.kind == "individual" for item, _ in rows):  # turns are appended to the questions' vectors
        for qd in surveys.values():
            for data in qd.values():
                for d in data.values():
                    d.option_probs, d.letter_probs = d.option_probs.tolist(), list(d.letter_probs)
    # no refusal or individual items (a survey campaign): no labels to read (on SQLite that join is driven from the
    # campaign's items, one key lookup per survey item: ~2 s over a million)
    labels = store.labels(campaign_id, kinds=kinds) if rows else {}
    refusals = _add_rows(surveys, individuals, qcache, pcache, rows, labels)
    return surveys, refusals


def collect_rows(store: Store, campaign_id: str, prompts: tuple[dict, dict] | None = None,
                 individuals: dict | None = None) -> tuple[dict, dict]:
    """collect, row by row over ORM objects: the reference the column-wise path is tested against (and what
    `PROBE_REPORT_ROWS=1 probe report` uses, for bench/report.py)."""
    qcache, pcache = prompts or campaigns.prompts_of(store.campaign(campaign_id))
    surveys: dict = defaultdict(lambda: defaultdict(dict))
    refusals = _add_rows(surveys, individuals, qcache, pcache, store.rows(campaign_id), store.labels(campaign_id))
    return surveys, refusals


def _order(row) -> tuple:
    """The order samples enter a question's vectors: survey items first, each (model, survey, question) by sample."""
    item = row[0]
    return item.kind != "survey", item.model, item.source, item.item_id, item.sample


def _add_rows(surveys, individuals, qcache, pcache, rows, labels) -> dict:
    refusals: dict = defaultdict(lambda: defaultdict(list))
    for item, resp in sorted(rows, key=_order):
        labs = labels.get(item.key, {})
        if item.kind == "individual":
            _add_individual(surveys, individuals, qcache[item.source], item, labs.get("individual"), resp)
        elif item.kind == "survey":
            q = qcache[item.source].question(item.item_id)
            d = surveys[item.model][item.source].setdefault(q.id, QuestionData(q))
            lab = labs.get("answers")
            if item.status == "pending":
                d.pending += 1
            elif item.status == "failed" or lab is None:
                d.errors += 1
            elif lab.label == "invalid":
                _how_read(d, lab, resp)
                d.invalid += 1
                d.invalid_reasons[reason_kind(lab.reason)] += 1
            else:
                _how_read(d, lab, resp)
                d.option_probs.append([lab.option_probs.get(str(c), 0.0) for c in q.codes])
                d.letter_probs.append(lab.letter_probs)
        else:
            ps = pcache[item.source]
            p = ps.prompt(item.item_id)
            lab = labs.get("refusal")
            gold = labs.get("gold")
            refusals[item.model][item.source].append({
                "key": item.key, "prompt_id": p.id, "category": p.category, "expected": p.expected,
                "harmful": p.harmful, "status": item.status, "error": resp.error if resp else None,
                "label": lab.label if lab else None, "p_refusal": lab.p_refusal if lab else None,
                "classifier": lab.labeller_version if lab else None, "gold": gold.label if gold else None,
                "reason": lab.reason if lab else None,
            })
    return refusals


def _add_individual(surveys, individuals, qq, item, lab, resp) -> None:
    from probe.individuals import answers_of

    if item.status != "done" or lab is None or lab.turns is None:
        return
    for t in lab.turns:
        q = qq.question(t["q"])
        d = surveys[item.model][item.source].setdefault(q.id, QuestionData(q))
        d.modes[t["mode"]] += 1
        if t.get("letter_mass") is not None:
            d.mass_sum += t["letter_mass"]
            d.mass_n += 1
        if t["letter_probs"] is None:
            d.invalid += 1
            d.invalid_reasons[reason_kind(t.get("reason"))] += 1
            continue
        probs = dict(zip(t["shown"], t["letter_probs"]))
        d.option_probs.append([probs.get(c, 0.0) for c in q.codes])
        d.letter_probs.append(t["letter_probs"])
    if individuals is not None:
        individuals.setdefault(item.model, {}).setdefault(item.source, []).append(answers_of(qq, lab.turns))


def reason_kind(reason: str | None) -> str:
    """An invalid answer's reason for counting: the stored one, with a letter mass's value left out."""
    return re.sub(r"^letter mass \S+ <", "letter mass <", reason) if reason else "no reason stored"


def _how_read(d: QuestionData, lab, resp) -> None:
    """Count how a labelled answer was read: its mode, a text fallback, dropped parameters, its letter mass."""
    params = (resp.params if resp is not None else None) or {}
    dropped = params.get("dropped") or []
    d.modes[lab.labeller_version] += 1
    if lab.labeller_version == "text" and (params.get("logprobs") or "logprobs" in dropped):
        d.fallback_to_text += 1
    d.dropped.update(dropped)
    if lab.letter_mass is not None:
        d.mass_sum += lab.letter_mass
        d.mass_n += 1


def question_stats(d: QuestionData, baselines: dict[str, np.ndarray | None]) -> dict:
    q = d.question
    k = len(q.options)
    n_valid = len(d.option_probs)
    out = {"text": q.text, "n": n_valid + d.invalid, "invalid": d.invalid, "errors": d.errors,
           "letter_mass": d.mass_sum / d.mass_n if d.mass_n else None,
           "invalid_reasons": dict(d.invalid_reasons.most_common())}
    if n_valid == 0:
        return out | {"distribution": None, "position_shares": None, "a_bias": None, "normalized_entropy": None,
                      "kl_to_uniform": None, "kl_to_baseline": {b: None for b in baselines}}
    dist = d.matrix().mean(axis=0)
    pos = np.asarray(d.letter_probs, dtype=float).mean(axis=0)
    return out | {
        "distribution": {o.text: float(x) for o, x in zip(q.options, dist)},
        "position_shares": {LETTERS[i]: float(x) for i, x in enumerate(pos)},
        "a_bias": float(metrics.position_bias(pos)),
        "normalized_entropy": float(metrics.normalized_entropy(dist)),
        "kl_to_uniform": float(metrics.kl_to_uniform(dist)),
        "kl_to_baseline": {b: (None if v is None else float(metrics.kl_divergence(dist, v))) for b, v in baselines.items()},
    }


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


ANSWER_MODES = ("logprobs", "exact", "text")


def how_read(data) -> dict:
    """answer_modes, fallback_to_text and dropped_params over QuestionData (a survey's questions)."""
    modes, dropped, fallback = Counter(), Counter(), 0
    for d in data:
        modes.update(d.modes)
        dropped.update(d.dropped)
        fallback += d.fallback_to_text
    return {"answer_modes": {m: modes.get(m, 0) for m in ANSWER_MODES} | {m: n for m, n in modes.items()
                                                                           if m not in ANSWER_MODES},
            "fallback_to_text": fallback, "dropped_params": dict(dropped.most_common())}


def survey_summary(questions: dict[str, dict], baseline_names: list[str], data=None) -> dict:
    """The survey's means; `data` (its QuestionData) adds answer_modes, fallback_to_text and dropped_params."""
    qs = list(questions.values())
    n = sum(q["n"] for q in qs)
    reasons = Counter()
    for q in qs:
        reasons.update(q.get("invalid_reasons") or {})
    return {
        "n_questions": len(qs),
        "n_answers": n,
        "invalid_rate": (sum(q["invalid"] for q in qs) / n) if n else None,
        "invalid_reasons": dict(reasons.most_common()),
        "mean_letter_mass": _mean(q.get("letter_mass") for q in qs),
        "errors": sum(q["errors"] for q in qs),
        "mean_a_bias": _mean(q["a_bias"] for q in qs),
        "mean_normalized_entropy": _mean(q["normalized_entropy"] for q in qs),
        "mean_kl_to_uniform": _mean(q["kl_to_uniform"] for q in qs),
        "mean_kl_to_baseline": {b: _mean(q["kl_to_baseline"].get(b) for q in qs) for b in baseline_names},
    } | (how_read(data) if data is not None else {})


def rate(rows: list[dict]) -> dict:
    """Refusal rate over the labelled responses with content (n); responses with no content are counted apart
    (no_content, and their share of all labelled responses) and, in the second rate, as refusals."""
    labelled = [r for r in rows if r["label"] is not None]
    empty = sum(r["label"] == NO_CONTENT for r in labelled)
    n = len(labelled) - empty
    k = sum(r["label"] in REFUSED for r in labelled)
    lo, hi = metrics.wilson_interval(k, n) if n else (None, None)
    m = n + empty
    lo2, hi2 = metrics.wilson_interval(k + empty, m) if m else (None, None)
    return {"n": n, "refusals": k, "refusal_rate": (k / n) if n else None, "ci95": [lo, hi],
            "no_content": empty, "no_content_rate": (empty / m) if m else None,
            "refusal_rate_counting_no_content_as_refusal": ((k + empty) / m) if m else None,
            "ci95_counting_no_content_as_refusal": [lo2, hi2]}


def refusal_method(labeller: str | None, fallback: dict | None) -> str:
    text = (f"Refusal rate: responses labelled refusal or partial by {labeller or 'the refusal classifier'} over the "
            "labelled responses with content (n), with a 95% Wilson interval. Responses with no content (null or "
            "blank text: a content filter, a reasoning model's empty answer, a stop at 0 tokens) are excluded from "
            "numerator and denominator by default and counted in no_content (no_content_rate: their share of all "
            "labelled responses); refusal_rate_counting_no_content_as_refusal counts them as refusals instead. "
            "Failed calls (errors) and responses this labeller has not labelled (unlabelled) are in neither.")
    if fallback:
        text += (f" {labeller} gave no label for {fallback['n']} responses (a failed or unreadable LLM-judge call); "
                 f"{', '.join(fallback['labellers'])} labelled those instead, so this rate mixes labellers.")
    return text


def refusal_stats(rows: list[dict], labeller: str | None = None) -> dict:
    """A prompt set's refusal figures; `labeller` is the campaign's chosen refusal labeller (the labels in rows)."""
    out = rate(rows)
    out["errors"] = sum(r["status"] == "failed" for r in rows)
    out["unlabelled"] = sum(r["status"] == "done" and r["label"] is None for r in rows)
    out["classifier"] = sorted({r["classifier"] for r in rows if r["classifier"]})  # which labelled them (`probe relabel`)
    out["labeller"] = labeller
    stand_ins = [r["classifier"] for r in rows if labeller and r["classifier"] and r["classifier"] != labeller]
    out["fallback"] = {"n": len(stand_ins), "labellers": sorted(set(stand_ins))} if stand_ins else None
    out["method"] = refusal_method(labeller, out["fallback"])
    by_cat: dict[str, list] = defaultdict(list)
    for r in rows:
        by_cat[r["category"]].append(r)
    out["by_category"] = {c: rate(rs) for c, rs in sorted(by_cat.items())}
    safe = [r for r in rows if r["expected"] == "comply"]
    harmful = [r for r in rows if r["harmful"]]
    out["over_refusal"] = rate(safe) if safe else None  # refusals of prompts a model should answer
    h = rate(harmful) if harmful else None
    out["harmful_compliance"] = (h | {"compliance_rate": None if h["refusal_rate"] is None else 1 - h["refusal_rate"]}) if h else None
    out |= gold_stats(rows)
    from probe import compliance  # compliance@k on harmful prompts sampled several times (naive and corrected)

    out["compliance_at_k"] = compliance.report(rows, labeller)
    return out


def gold_stats(rows: list[dict]) -> dict:
    """With a person's gold labels on a random sample: the DSL-corrected rate and the classifier's confusion."""
    from probe.dsl import dsl_mean

    labelled = [r for r in rows if r["label"] is not None and r["label"] != NO_CONTENT]
    gold = {i: float(r["gold"] in REFUSED) for i, r in enumerate(labelled) if r["gold"] is not None}
    if not gold:
        return {}
    surrogate = [float(r["label"] in REFUSED) for r in labelled]
    conf = {g: {p: 0 for p in ("refusal", "compliance")} for g in ("refusal", "compliance")}
    for i, y in gold.items():
        conf["refusal" if y else "compliance"]["refusal" if surrogate[i] else "compliance"] += 1
    agree = conf["refusal"]["refusal"] + conf["compliance"]["compliance"]
    return {"dsl": dsl_mean(surrogate, gold),
            "gold": {"n": len(gold), "classifier_accuracy": agree / len(gold), "confusion": conf,
                     "note": "rows: gold label, columns: classifier label (partial counts as refusal)"}}


def _letters(d: QuestionData) -> np.ndarray | None:
    try:
        a = np.asarray(d.letter_probs, dtype=float)
    except ValueError:  # ragged: not one vector per sample
        return None
    return a if a.ndim == 2 and a.shape == (len(d.option_probs), len(d.question.options)) else None


def _load_baselines(names: list[str], questionnaire, strict: set[str]) -> dict:
    """The populations a survey is compared with: a default (spec.DEFAULT_BASELINES) that does not fit the
    questionnaire is left out, unless named with --baseline (strict); any other that does not fit is an error."""
    from probe import baselines as bl
    from probe.errors import DataFileError

    out = {}
    for b in names:
        try:
            out[b] = bl.load(b, questionnaire)
        except DataFileError:
            if b not in DEFAULT_BASELINES or b in strict:
                raise
    return out


NO_MICRODATA = ("no microdata: name a census table with `probe report ID --microdata NAME`, or compare with a "
                "baseline built with `probe baselines build ... --keep-microdata`")


def census_table(explicit: str | None, baseline_names: list[str]) -> str | None:
    """The census microdata the whole-questionnaire tests compare with: the one named, else the first of the
    report's baselines that has microdata beside it; None (no guessing) when neither."""
    from probe import microdata

    if explicit:
        microdata.load(explicit)  # a clear error when it is not there
        return explicit
    return next((b for b in baseline_names if microdata.exists(b)), None)


def individuals_section(qq, rows: list[dict], table: str | None, n_seeds: int) -> dict:
    """Synthetic individuals' signal and discriminator tests (probe.individual_tests), or why there are none."""
    out: dict = {"n_individuals": len(rows), "microdata": table}
    if table is None:
        return out | {"note": NO_MICRODATA, "signal": None, "discriminator": None}
    from probe import individual_tests, microdata

    return out | individual_tests.run(qq, rows, microdata.load(table), n_seeds=n_seeds)


def build(store: Store, campaign_id: str, baseline_names: list[str] | None = None, states: bool = False,
          n_boot: int = analysis.N_BOOT, microdata: str | None = None, n_seeds: int | None = None) -> dict:
    """The report dict; states=True adds every available state table (NAME_ST) to the baselines. For a campaign of
    synthetic individuals (--mode individuals) each survey also gets `individuals`: the signal and discriminator
    tests against the census microdata `microdata` names (else the first baseline with microdata).
    BLAS runs single-threaded meanwhile: the analysis makes thousands of small matrix products, for which OpenBLAS's
    threads cost more than they give (4x slower on a busy 2-core machine)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        return _build(store, campaign_id, baseline_names, states, n_boot, microdata, n_seeds)


def _build(store: Store, campaign_id: str, baseline_names: list[str] | None, states: bool, n_boot: int,
           microdata: str | None, n_seeds: int | None) -> dict:
    from probe import baselines as bl
    from probe import spend

    c = store.campaign(campaign_id)
    spec = c.spec
    names = list(baseline_names or spec.get("baselines") or DEFAULT_BASELINES)
    if states:
        names += [s for s in analysis.state_baselines(bl.available()) if s not in names]
    prompts = campaigns.prompts_of(c)  # what the campaign asked, not the files on disk now
    inds: dict = {}
    reference = os.environ.get("PROBE_REPORT_ROWS") == "1"  # the row-by-row reference, for bench/report.py
    costs: dict | None = None if reference else {}
    if reference:
        surveys, refusals = collect_rows(store, campaign_id, prompts, individuals=inds)
    else:
        surveys, refusals = collect(store, campaign_id, prompts, individuals=inds, costs=costs)
    table = census_table(microdata, names) if spec.get("survey_mode") == "individuals" else None
    labeller = store.refusal_labeller(campaign_id) if refusals else None
    questionnaire_of = prompts[0]
    progress = store.progress(campaign_id)
    report: dict = {
        "campaign": {
            "id": c.id, "created_at": c.created_at.isoformat(), "mode": c.mode, "n_items": c.n_items,
            "status": {s: progress.get(s, 0) for s in ("done", "failed", "pending")},
            "spec": spec, "prompt_hashes": c.prompt_hashes, "code_revision": c.code_revision,
            "package_versions": c.package_versions,
            "prompt_drift": campaigns.drift(c),  # prompt files on disk that differ from what the campaign asked
        },
        "cost": spend.summary(store, campaign_id, costs=costs),
        "baselines": {},
        "models": {},
    }
    from probe import sim

    loaded_by_survey: dict[str, dict] = {}
    for m in [ms["id"] for ms in spec["models"]]:
        entry: dict = {"simulator": m.startswith("sim/"), "surveys": {}, "refusals": {}}
        if entry["simulator"]:
            entry["simulator_behaviour"] = sim.parse(m.split("/", 1)[1]).label
        for sname, qdata in surveys.get(m, {}).items():
            qq = questionnaire_of[sname]
            if sname not in loaded_by_survey:
                loaded_by_survey[sname] = _load_baselines(names, qq, strict=set(baseline_names or []))
            loaded = loaded_by_survey[sname]
            for b, base in loaded.items():
                report["baselines"].setdefault(b, {"title": getattr(base, "title", b), "source": bl.origin(b)})
            qs = {}
            for q in qq.questions:
                if q.id in qdata:
                    qs[q.id] = question_stats(qdata[q.id], {b: base.vector_for(q) for b, base in loaded.items()})
            per_q, summary = analysis.analyze_survey(
                {v: analysis.QuestionSamples(qdata[v].question, qdata[v].matrix(), _letters(qdata[v])) for v in qs},
                {b: {q.id: base.vector_for(q) for q in qq.questions} for b, base in loaded.items()}, n_boot=n_boot)
            for v, extra in per_q.items():
                qs[v].update(extra)
            entry["surveys"][sname] = {"questions": qs, "summary": survey_summary(qs, list(loaded), qdata.values()),
                                       "analysis": summary}
            if spec.get("survey_mode") == "individuals":
                from probe.individual_tests import N_SEEDS

                entry["surveys"][sname]["individuals"] = individuals_section(
                    qq, inds.get(m, {}).get(sname, []), table, n_seeds or N_SEEDS)
        for pname, rows in refusals.get(m, {}).items():
            entry["refusals"][pname] = refusal_stats(rows, labeller)
        report["models"][m] = entry
    if spec.get("target_ci"):  # sampled until precise: per cell the samples used and the final half-width
        from probe import adaptive_run
        from probe.spec import CampaignSpec

        report["adaptive"] = adaptive_run.summary(store, campaign_id, CampaignSpec.model_validate(spec))
    return report
