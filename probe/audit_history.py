"""An audit run's headline figures, taken from the campaign's report (probe.report.build: the same aggregates
`probe report` gives), plus the answer counts the drift tests need and the model version the responses reported.

summary = {campaign, state, created_at, cost, models: {MODEL: {
    version: {reported_model, system_fingerprint, seen: {"model | fingerprint": responses}},
    cost, invalid_rate,                          invalid survey answers, no-content responses and failed calls
                                                 over the model's items
    refusals: {SET: {n, refusals, refusal_rate, over_refusal, by_category: {CAT: {n, refusals, refusal_rate}}}},
    surveys: {SURVEY: {n_answers, invalid_rate, mean_a_bias, mean_normalized_entropy, mean_divergence,
                       divergence_baseline, questions: {VAR: {n, counts: {option text: answers}, samples}}}}}}
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from probe.store import Store
from probe.store.schema import Item, Response

SUMMARY_BOOTSTRAP = 10  # the report's intervals are not part of a summary: keep its bootstrap short
SAMPLES_KEPT = 500  # up to this many answers a question, each answer's option probabilities are kept (drift tests)


def versions(store: Store, campaign_id: str) -> dict[str, dict]:
    """Per model: the most common reported model name and fingerprint, and every combination seen."""
    with store.session() as s:
        q = (select(Item.model, Response.reported_model, Response.system_fingerprint, func.count())
             .join(Response, Response.key == Item.key)
             .where(Item.campaign_id == campaign_id, Response.error.is_(None))
             .group_by(Item.model, Response.reported_model, Response.system_fingerprint))
        rows = s.execute(q).all()
    out: dict[str, dict] = {}
    for model, name, fp, n in rows:
        e = out.setdefault(model, {"names": Counter(), "fps": Counter(), "seen": {}})
        e["names"][name] += n
        e["fps"][fp] += n
        e["seen"][f"{name} | {fp}"] = n
    return {m: {"reported_model": e["names"].most_common(1)[0][0], "system_fingerprint": e["fps"].most_common(1)[0][0],
                "seen": e["seen"]} for m, e in out.items()}


def _main_baseline(summary: dict) -> str | None:
    """The divergence the history follows: to the first population baseline that is not uniform answering."""
    names = [b for b in (summary.get("mean_kl_to_baseline") or {}) if b != "uniform"]
    return names[0] if names else None


def summarize(store: Store, campaign_id: str) -> dict:
    from probe import report

    r = report.build(store, campaign_id, n_boot=SUMMARY_BOOTSTRAP)
    qdata, _ = report.collect(store, campaign_id)
    c = store.campaign(campaign_id)
    costs = store.costs([campaign_id])[campaign_id]
    vers = versions(store, campaign_id)
    failed = {m: 0 for m in r["models"]}
    items = Counter()
    for model, kind, source, status, n in store.progress_by(campaign_id):
        items[model] += n
        if status == "failed":
            failed[model] = failed.get(model, 0) + n
    models = {}
    for m, e in r["models"].items():
        invalid = failed.get(m, 0)
        refusals = {}
        for pset, x in e["refusals"].items():
            invalid += x.get("no_content", 0)
            refusals[pset] = {"n": x["n"], "refusals": x["refusals"], "refusal_rate": x["refusal_rate"],
                              "over_refusal": (x["over_refusal"] or {}).get("refusal_rate"),
                              "by_category": {k: {"n": v["n"], "refusals": v["refusals"],
                                                  "refusal_rate": v["refusal_rate"]}
                                              for k, v in x["by_category"].items()}}
        surveys = {}
        for sname, x in e["surveys"].items():
            sm = x["summary"]
            invalid += sum(q["invalid"] for q in x["questions"].values())
            base = _main_baseline(sm)
            surveys[sname] = {
                "n_answers": sm["n_answers"], "invalid_rate": sm["invalid_rate"], "mean_a_bias": sm["mean_a_bias"],
                "mean_normalized_entropy": sm["mean_normalized_entropy"],
                "mean_divergence": (sm["mean_kl_to_baseline"] or {}).get(base) if base else None,
                "divergence_baseline": base,
                "questions": {v: _question(q, qdata[m][sname].get(v)) for v, q in x["questions"].items()},
            }
        models[m] = {"version": vers.get(m) or {"reported_model": None, "system_fingerprint": None, "seen": {}},
                     "cost": round(costs.get(m, 0.0), 6),
                     "invalid_rate": (invalid / items[m]) if items[m] else None,
                     "refusals": refusals, "surveys": surveys}
    return {"campaign": campaign_id, "state": c.state, "created_at": r["campaign"]["created_at"],
            "cost": round(sum(costs.values()), 6), "models": models}


def _question(q: dict, d) -> dict:
    """A question's answer counts by option text (each valid answer's option probabilities summed) and, for small
    runs, every answer's probabilities in sorted option-text order (probe.drift's permutation test)."""
    dist = q["distribution"] or {}
    out = {"n": q["n"], "counts": {o: share * (q["n"] - q["invalid"]) for o, share in dist.items()}, "samples": None}
    if d is not None and dist and 0 < len(d.option_probs) <= SAMPLES_KEPT:
        order = sorted(range(len(d.question.options)), key=lambda i: d.question.options[i].text)
        out["samples"] = [[round(float(row[i]), 4) for i in order] for row in d.matrix()]
    return out


def history_rows(runs: list[dict]) -> list[dict]:
    """One flat row per run and model for tables and plots: the headline figures."""
    rows = []
    for run in runs:
        s = run.get("summary") or {}
        for model, m in (s.get("models") or {"": {}}).items():
            row = {"run": run["run"], "campaign": run["campaign_id"], "started_at": run["started_at"],
                   "trigger": run["trigger"], "state": run["state"], "alerting": bool(run.get("alerts")),
                   "model": model or None, "version": (m.get("version") or {}).get("reported_model"),
                   "fingerprint": (m.get("version") or {}).get("system_fingerprint"),
                   "invalid_rate": m.get("invalid_rate"), "cost": m.get("cost"), "refusal_rate": {},
                   "refusal_rate_by_category": {}, "over_refusal": {}, "a_bias": {}, "entropy": {}, "divergence": {}}
            for pset, r in (m.get("refusals") or {}).items():
                row["refusal_rate"][pset] = r["refusal_rate"]
                row["over_refusal"][pset] = r["over_refusal"]
                row["refusal_rate_by_category"][pset] = {k: v["refusal_rate"] for k, v in r["by_category"].items()}
            for sname, x in (m.get("surveys") or {}).items():
                row["a_bias"][sname] = x["mean_a_bias"]
                row["entropy"][sname] = x["mean_normalized_entropy"]
                row["divergence"][sname] = x["mean_divergence"]
            rows.append(row)
    return rows
