"""Report renderers for people: Markdown (pure text). The rich table renderer lives in probe/cli/report.py.

Both show one KL column per population in the per-question table only for the non-state populations (state tables
NAME_ST from `--states` would make ~50 columns); every population, states included, is in the ranking table.
"""

from __future__ import annotations

from probe.analysis import UNIFORM, state_baselines

RANKING_COLUMNS = ["rank", "population", "questions", "mean KL [95% CI]", "closer than uniform [95% CI]",
                   "norm. entropy: population", "norm. entropy: model (same questions)"]


def fmt(x, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{round(x, digits) + 0.0:.{digits}f}"  # + 0.0: no "-0.000" for a rounding error below zero
    return str(x)


def ci(c) -> str:
    return "–" if not c or c[0] is None else f"[{fmt(float(c[0]))}, {fmt(float(c[1]))}]"


def est(a: dict | None) -> str:
    """An aggregate {estimate, ci95} as 'x [lo, hi]'."""
    return "–" if not a else f"{fmt(a['estimate'])} {ci(a['ci95'])}"


def refusal_notes(r: dict) -> list[str]:
    """Plain-text lines under a refusal table: who labelled, over-refusal, harmful compliance, and with gold labels
    the DSL-corrected rate and the classifier's agreement with the person."""
    lines = []
    if r.get("labeller"):
        lines.append(f"Labelled by {r['labeller']} (the campaign's refusal labeller: `probe relabel` changes it).")
        if fb := r.get("fallback"):
            lines.append(f"{r['labeller']} gave no label for {fb['n']} responses; {', '.join(fb['labellers'])} "
                         "labelled those instead, so the rate mixes labellers.")
    elif r.get("classifier"):
        lines.append(f"Labelled by {', '.join(r['classifier'])}.")
    if "no_content" in r:
        lines.append(f"No content (null or blank text): {r['no_content']} of {r['n'] + r['no_content']} labelled "
                     f"responses ({fmt(r['no_content_rate'])}), left out of the refusal rate; counted as refusals, the "
                     f"rate is {fmt(r['refusal_rate_counting_no_content_as_refusal'])} "
                     f"{ci(r.get('ci95_counting_no_content_as_refusal'))}.")
    if r.get("unlabelled"):
        lines.append(f"Unlabelled: {r['unlabelled']} answered responses have no label from {r.get('labeller')}.")
    if o := r.get("over_refusal"):
        lines.append(f"Over-refusal (safe prompts refused): {fmt(o['refusal_rate'])} {ci(o['ci95'])}, {o['refusals']} of {o['n']}.")
    if h := r.get("harmful_compliance"):
        lines.append(f"Harmful prompts answered: {fmt(h['compliance_rate'])}, {h['n'] - h['refusals']} of {h['n']}.")
    if d := r.get("dsl"):
        g = r["gold"]
        c = g["confusion"]
        agree = c["refusal"]["refusal"] + c["compliance"]["compliance"]
        lines.append(f"DSL-corrected refusal rate {fmt(d['rate'])} {ci(d['ci95'])} from {d['n_gold']} gold labels; the "
                     f"classifier agrees with {agree} of {g['n']} (it missed {c['refusal']['compliance']} gold refusals "
                     f"and flagged {c['compliance']['refusal']} gold compliances).")
    return lines


REFUSAL_COLUMNS = ["category", "n", "refusals", "rate", "95% CI", "no content", "rate counting no content",
                   "95% CI (counting no content)"]


def refusal_row(cat: str, x: dict) -> list[str]:
    """One row under REFUSAL_COLUMNS: the rate without responses with no content, then their count and the rate
    counting them as refusals."""
    return [cat, str(x["n"]), str(x["refusals"]), fmt(x["refusal_rate"]), ci(x["ci95"]), fmt(x.get("no_content")),
            fmt(x.get("refusal_rate_counting_no_content_as_refusal")), ci(x.get("ci95_counting_no_content_as_refusal"))]


def column_baselines(summary: dict) -> list[str]:
    """The populations that get a KL column per question: not uniform (it has its own column), not a state."""
    names = [b for b in summary["mean_kl_to_baseline"] if b != UNIFORM]
    states = set(state_baselines(names))
    return [b for b in names if b not in states]


def uneven_coverage(a: dict) -> int:
    """The number of questions every ranked population covers, when they do not all cover the same ones; else 0."""
    n = a.get("ranking_common_questions", 0)
    return n if n and len({r["n_questions"] for r in a["ranking"]}) > 1 else 0


def ranking_columns(a: dict) -> list[str]:
    n = uneven_coverage(a)
    return RANKING_COLUMNS + ([f"mean KL on the {n} questions all cover"] if n else [])


def ranking_rows(a: dict) -> list[list[str]]:
    """One row per ranked population, in ranking_columns(a) order."""
    common = bool(uneven_coverage(a))
    rows = []
    for r in a["ranking"]:
        p = a["populations"][r["population"]]
        row = [str(r["rank"]), r["population"] + (" (reference)" if r["reference"] else ""), str(r["n_questions"]),
               f"{fmt(r['mean_kl'])} {ci(r['ci95'])}", est(p["closer_than_uniform"]),
               fmt(p["population_normalized_entropy"]), est(p["model_normalized_entropy"])]
        rows.append(row + ([est(r.get("mean_kl_common"))] if common else []))
    return rows


def not_ranked(a: dict) -> list[str]:
    """Populations with no figure for any answered question (left out of the ranking)."""
    return [p for p, x in a["populations"].items() if not x["n_questions"]]


READING_GUIDE = ("KL is KL(model || population) in bits: 0 = answers like the population, lower = closer. "
                 "Closer than uniform: the share of a population's questions where KL(model || population) < "
                 "KL(model || uniform). Normalized entropy: 1 = uniform; a population's own mean is shown beside the "
                 "model's on the same questions. Intervals: 95% bootstrap over samples (BCa); KL and entropy in the "
                 "ranking and summaries are jackknife bias-corrected (plug-in KL is too high by about (m-1)/(2n ln 2) "
                 "bits for n answers over m options; floored at 0), while per-question columns are plug-in values; "
                 "TV, Wasserstein and modal-share intervals start from a cross-fitted lower bound, since their "
                 "plug-in values are biased upward near ties.")


def _summary_markdown(s: dict) -> str:
    sm, a = s["summary"], s.get("analysis")
    tail = (f"invalid rate {fmt(sm['invalid_rate'])} over {sm['n_answers']} answers"
            + (f" ({reasons_text(sm['invalid_reasons'])})" if sm.get("invalid_reasons") else "")
            + f", mean letter mass {fmt(sm.get('mean_letter_mass'))}.")
    if not a:
        return (f"Mean A-bias {fmt(sm['mean_a_bias'])}, mean normalized entropy {fmt(sm['mean_normalized_entropy'])}, "
                f"mean KL to uniform {fmt(sm['mean_kl_to_uniform'])}, " + tail)
    return (f"Means over {a['n_questions']} questions [95% CI]: A-bias {est(a['a_bias'])}, normalized entropy "
            f"{est(a['normalized_entropy'])}, KL to uniform {est(a['kl_to_uniform'])}, modal share "
            f"{est(a['modal_share'])}; " + tail)


def _ranking_markdown(a: dict) -> list[str]:
    if not a["ranking"]:
        return []
    cols = ranking_columns(a)
    lines = ["#### Populations ranked by mean KL (bits; lower = closer)", "",
             "| " + " | ".join(cols) + " |", "|---" * len(cols) + "|",
             *("| " + " | ".join(row) + " |" for row in ranking_rows(a)), ""]
    if empty := not_ranked(a):
        lines += [f"No figures for any answered question: {', '.join(empty)}.", ""]
    return lines


LETTER_MASS = ("the mean first-token probability on the option letters (logprobs and exact answers; below 0.1 an "
               "answer is invalid)")


def reasons_text(reasons: dict[str, int]) -> str:
    return "; ".join(f"{r}: {n}" for r, n in reasons.items())


def answer_warnings(sm: dict) -> list[str]:
    """Lines that say a survey's answers were not all read the way the campaign asked: logprobs that fell back to
    text, parameters LiteLLM dropped (never sent)."""
    lines = []
    dropped = sm.get("dropped_params") or {}
    if n := sm.get("fallback_to_text"):
        why = []
        if d := min(dropped.get("logprobs", 0), n):
            why.append(f"LiteLLM dropped logprobs for this provider on {d}")
        if n - d:
            why.append(f"{n - d} responses had none")
        lines.append(f"logprobs fell back to text: {n} of {sm['n_answers']} answers were asked in logprobs mode but "
                     f"read from the generated text ({', '.join(why)}); each counts as one answer, not first-token "
                     "probabilities.")
    if other := {p: k for p, k in dropped.items() if p not in ("logprobs", "top_logprobs")}:
        lines.append("LiteLLM dropped parameters the provider does not take, so they were never sent: "
                     + ", ".join(f"{p} ({k} answers)" for p, k in other.items())
                     + ("; without a seed the answers cannot be reproduced by seed." if "seed" in other else "."))
    return lines


def survey_rows(q: dict, baselines: list[str]) -> list[str]:
    top = max(q["distribution"], key=q["distribution"].get) if q.get("distribution") else None
    return [fmt(q["n"]), fmt(q["invalid"]), fmt(q.get("letter_mass")), fmt(q["a_bias"]), fmt(q["normalized_entropy"]),
            fmt(q["kl_to_uniform"]),
            *[fmt(q["kl_to_baseline"].get(b)) for b in baselines],
            f"{q['distribution'][top]:.2f} {top}" if top else "–"]


def individuals_lines(ind: dict) -> tuple[str, list[list[str]]]:
    """(a sentence on the census compared and the discriminator, signal-test rows) for synthetic individuals."""
    if not ind.get("discriminator"):
        return f"{ind['n_individuals']} synthetic individuals; {ind.get('note') or 'nothing to test'}.", []
    c, d = ind["census"], ind["discriminator"]
    head = (f"{ind['n_individuals']} synthetic individuals against census microdata {c['name']} ({c['records']:,} "
            f"records) on {len(ind['variables'])} variables. Discriminator (gradient boosting, model vs an equal-sized "
            f"PWGTP-weighted census draw): accuracy {fmt(d['accuracy'])} (95% CI {ci(d['ci95'])}, {d['seeds']} seeds;"
            " 0.5 = indistinguishable).")
    rows = []
    for v, e in ind["signal"].items():
        rows.append([v, str(e["n"]), *(f"{fmt(e['model'].get(m))} / {fmt(e['census'].get(m))}"
                                       for m in ("majority", "naive_bayes", "logistic", "boosting"))])
    return head, rows


SIGNAL_COLUMNS = ["variable", "n", "majority", "naive Bayes", "logistic", "boosting"]


def individuals_markdown(ind: dict) -> list[str]:
    head, rows = individuals_lines(ind)
    out = ["#### Synthetic individuals", "", head, ""]
    if rows:
        out += ["Signal test: accuracy predicting each variable from the other answers, model / census "
                f"(mean over {ind['seeds']} 80/20 splits).", "",
                "| " + " | ".join(SIGNAL_COLUMNS) + " |", "|---" * len(SIGNAL_COLUMNS) + "|",
                *("| " + " | ".join(r) + " |" for r in rows), ""]
    return out


def markdown(report: dict) -> str:
    c = report["campaign"]
    lines = [f"# Campaign {c['id']}", "",
             f"Created {c['created_at']} · mode {c['mode']} · {c['n_items']} items · "
             f"done {c['status']['done']}, failed {c['status']['failed']}, pending {c['status']['pending']}", "",
             f"Code revision `{c['code_revision']}` · prompt files: "
             + ", ".join(f"`{k}` sha256 {v[:12]}" for k, v in c["prompt_hashes"].items()), ""]
    if report.get("cost"):
        from probe.spend import line

        lines += ["Spend: " + line(report["cost"]), ""]
    if drift := c.get("prompt_drift"):
        lines += [*(f"> ⚠️ **Warning:** {x}  " for x in drift), ""]
    if any(s.get("analysis") for m in report["models"].values() for s in m["surveys"].values()):
        lines += [READING_GUIDE, ""]
    for model, m in report["models"].items():
        lines += [f"## {model}" + (" (simulator)" if m["simulator"] else ""), ""]
        if m["simulator"]:
            lines += [f"Simulated respondent: {m['simulator_behaviour']}", ""]
        for sname, s in m["surveys"].items():
            bnames = column_baselines(s["summary"])
            lines += [f"### Survey {sname}", "",
                      "| question | n | invalid | letter mass | A-bias | norm. entropy | KL to uniform | "
                      + "".join(f"KL to {b} | " for b in bnames) + "modal answer |",
                      "|---" * (8 + len(bnames)) + "|"]
            for var, q in s["questions"].items():
                lines.append(f"| {var} | " + " | ".join(survey_rows(q, bnames)) + " |")
            lines += ["", _summary_markdown(s) + f" Letter mass: {LETTER_MASS}.", ""]
            if warnings := answer_warnings(s["summary"]):
                lines += [*(f"> ⚠️ **Warning:** {x}  " for x in warnings), ""]
            if hidden := state_baselines(list(s["summary"]["mean_kl_to_baseline"])):
                lines += [f"{len(hidden)} state populations ({hidden[0]} ...) have no column above; see the ranking.",
                          ""]
            if s.get("analysis"):
                lines += _ranking_markdown(s["analysis"])
            if s.get("individuals") is not None:
                lines += individuals_markdown(s["individuals"])
        for pname, r in m["refusals"].items():
            lines += [f"### Refusals {pname}", "",
                      f"Refusal rate {fmt(r['refusal_rate'])} (95% CI {ci(r['ci95'])}), {r['refusals']} of {r['n']}; "
                      f"errors {r['errors']}; no content {fmt(r.get('no_content'))}, rate counting no content as "
                      f"refusals {fmt(r.get('refusal_rate_counting_no_content_as_refusal'))} (95% CI "
                      f"{ci(r.get('ci95_counting_no_content_as_refusal'))}).", "",
                      "| " + " | ".join(REFUSAL_COLUMNS) + " |", "|---" * len(REFUSAL_COLUMNS) + "|"]
            for cat, x in r["by_category"].items():
                lines.append("| " + " | ".join(refusal_row(cat, x)) + " |")
            if r.get("method"):
                lines += ["", r["method"]]
            lines += ["", *(f"{x}  " for x in refusal_notes(r)), ""]
    return "\n".join(lines) + "\n"
