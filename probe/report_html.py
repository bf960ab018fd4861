"""Report renderer for people: one self-contained HTML page (inline CSS, figures as base64 PNG, no network).

`html(report)` takes the dict probe.report.build returns; the figures are drawn by probe.report_figures, which
imports matplotlib only when it draws, so importing this module and the CLI stay fast.

Figures, in page order: per survey one overview (A-bias and normalized entropy across models), one divergence
ranking per model that has a ranked population, one chart per question (model vs populations vs uniform); per
refusal set one chart of refusal rates by category. `expected_figures(report)` counts them.
"""

from __future__ import annotations

import json
from html import escape

from probe.analysis import UNIFORM, state_baselines
from probe.report_text import answer_warnings, reasons_text, refusal_notes
from probe.report_figures import (
    MODEL_COLOURS,
    POP_COLOURS,
    model_label,
    overview_figure,
    question_figure,
    ranking_figure,
    refusal_figure,
    short,
)

MAX_POPS_PER_QUESTION = 3

CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1320px;color:#222;
line-height:1.4;padding:0 16px}
h1{font-size:26px;margin-bottom:4px}h2{font-size:21px;border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}
h3{font-size:17px;margin-top:24px}.sub{color:#555;margin-top:0}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}th,td{border:1px solid #ddd;padding:4px 8px;
text-align:right;vertical-align:top}th{background:#f4f4f4}td.l,th.l{text-align:left}
.badge{display:inline-block;background:#b35900;color:#fff;border-radius:3px;padding:0 6px;font-size:11px;
font-weight:bold;letter-spacing:.5px;margin-left:6px;vertical-align:middle}
.caption{color:#444;font-size:13px;max-width:1000px}.guide dt{font-weight:bold;margin-top:6px}.guide dd{margin-left:18px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(400px,1fr));gap:14px}
.card{border:1px solid #e2e2e2;border-radius:4px;padding:8px;background:#fff}.card h4{margin:0 0 2px;font-size:14px}
.card p{margin:2px 0;font-size:12px;color:#444}img{max-width:100%;height:auto}
.legend{position:sticky;top:0;background:#fff;padding:6px 0;z-index:1;border-bottom:1px solid #eee}
.legend span{display:inline-block;margin-right:14px;font-size:13px}
.sw{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle;border:1px solid #777}
pre{background:#f7f7f7;padding:8px;font-size:12px;overflow-x:auto}.na{color:#999}
.warn{background:#fff8db;border:1px solid #e0b000;border-left:6px solid #e0b000;border-radius:3px;padding:8px 12px;
margin:12px 0;font-size:14px}.warn ul{margin:4px 0 0;padding-left:20px}
"""

GUIDE = [
    ("Distribution", "The model's answer shares per option: the mean, over samples, of each sample's probabilities "
     "(one answer per sample in text mode; first-token probabilities in logprobs mode)."),
    ("A-bias", "Share of answers at the first shown position (letter A) minus 1/k, k = number of options. 0 = no "
     "position preference; positive = the model favours whatever is shown first."),
    ("Normalized entropy", "Entropy of the answer distribution divided by its maximum log2(k): 1 = uniform (no "
     "preference at all), 0 = always the same option. Populations have their own value for comparison."),
    ("KL divergence", "KL(model || population) in bits (base 2), as in Dominguez-Olmedo et al.: 0 = the model "
     "answers like the population; larger = further away. 'KL to uniform' compares with answering at random."),
    ("Closer than uniform", "Share of a population's questions where the model is closer (in KL) to that "
     "population than to uniform answering. The paper found models usually closer to uniform."),
    ("Modal share", "Share of samples whose most likely answer is the most common one: 1 = every run gives the "
     "same answer (the 'correct answer' effect of Park et al.), about 1/k = no agreement."),
    ("TV, Wasserstein", "Total variation = half the summed absolute difference of shares (0 to 1); Wasserstein = "
     "how far, in option steps, answers must move on ordered scales (age, income)."),
    ("Letter mass", "The first-token probability on the option letters shown, averaged over a question's answers "
     "(logprobs and exact answers; text answers have none). An answer with letter mass below 0.1, or no letter in "
     "the top-k at all, is invalid: the model was not answering with a letter. Low mass beside a high invalid rate "
     "means the model mostly answered in prose."),
    ("Intervals", "[lo, hi] are 95% bootstrap intervals over samples: BCa around bias-corrected KL and entropy "
     "(per-question figures are plug-in values, biased upward for small n); for TV, Wasserstein and modal share, "
     "from a cross-fitted lower bound to the bootstrap upper percentile; 'closer than uniform' from the questions "
     "clearly closer to those possibly closer (refusal rates: Wilson intervals). "
     "'no baseline' means the population has no figure for that question; it is skipped, never guessed."),
    ("Simulator", "A simulated respondent with declared behaviour, used to check the pipeline; not a language model."),
]


def _f(x, d: int = 3) -> str:
    return '<span class="na">–</span>' if x is None else f"{x:.{d}f}" if isinstance(x, float) else escape(str(x))


def _ci(c) -> str:
    return "" if not c or c[0] is None else f' <span class="na">[{c[0]:.3f}, {c[1]:.3f}]</span>'


def _est(a: dict | None) -> str:
    return _f(None) if not a else _f(a["estimate"]) + _ci(a["ci95"])


# ---------------------------------------------------------------------------------------------- sections


def _surveys(report: dict) -> dict[str, list[tuple[str, dict, dict]]]:
    out: dict[str, list] = {}
    for name, m in report["models"].items():
        for sname, s in m["surveys"].items():
            out.setdefault(sname, []).append((name, m, s))
    return out


def _question_pops(rows: list[tuple[str, dict, dict]]) -> list[str]:
    """Populations drawn in the per-question charts: the non-state ones, then the best-ranked states."""
    names = [p for p in rows[0][2]["analysis"]["populations"] if p != UNIFORM]
    states = set(state_baselines(names))
    chosen = [p for p in names if p not in states]
    ranked = [r["population"] for r in rows[0][2]["analysis"]["ranking"] if r["population"] in states]
    return (chosen + ranked)[:MAX_POPS_PER_QUESTION]


def expected_figures(report: dict) -> int:
    n = 0
    for rows in _surveys(report).values():
        n += 1 + len({v for _, _, s in rows for v in s["questions"]})
        n += sum(1 for _, _, s in rows if s.get("analysis", {}).get("ranking"))
        n += sum(1 for _, _, s in rows if (s.get("individuals") or {}).get("discriminator"))
    from probe.compliance_figure import has_curve

    sets: dict[str, list] = {}
    for name, m in report["models"].items():
        for pname, r in m["refusals"].items():
            sets.setdefault(pname, []).append((name, m, r))
    return n + len(sets) + sum(has_curve(models) for models in sets.values())


def _provenance(report: dict) -> list[str]:
    c = report["campaign"]
    st = c["status"]
    hashes = "<br>".join(f"{escape(k)} <code>sha256 {escape(v)}</code>" for k, v in c["prompt_hashes"].items())
    pkgs = ", ".join(f"{escape(k)} {escape(str(v))}" for k, v in (c.get("package_versions") or {}).items())
    base = "<br>".join(f"<b>{escape(b)}</b>: {escape(str(x.get('title', '')))} ({escape(str(x.get('source', '')))})"
                       for b, x in report.get("baselines", {}).items())
    rows = [("Campaign id", escape(c["id"])), ("Created", escape(c["created_at"])), ("Mode", escape(c["mode"])),
            ("Items", f"{c['n_items']} (done {st['done']}, failed {st['failed']}, pending {st['pending']})"),
            ("Code revision", f"<code>{escape(str(c.get('code_revision')))}</code>"), ("Prompt files", hashes),
            ("Package versions", pkgs), ("Baselines", base or _f(None))]
    if report.get("cost"):
        from probe.spend import line

        rows.insert(4, ("Spend", escape(line(report["cost"]))))
    sp = c["spec"]
    design = " · ".join(f"{k.replace('_', ' ')} " + escape(", ".join(sp[k]) if isinstance(sp[k], list) else str(sp[k]))
                        for k in ("samples", "ordering", "answer_mode", "template", "seed", "surveys", "refusals")
                        if sp.get(k) not in (None, [])) or _f(None)
    rows.insert(4, ("Design", design))
    spec = escape(json.dumps(sp, indent=2, default=str))
    return (["<h2>Provenance</h2><table>"] + [f'<tr><th class="l">{k}</th><td class="l">{v}</td></tr>' for k, v in rows]
            + [f'<tr><th class="l">Spec</th><td class="l"><details><summary>campaign spec (JSON)</summary><pre>{spec}'
               "</pre></details></td></tr></table>"])


def _overview(sname: str, rows: list[tuple[str, dict, dict]]) -> list[str]:
    an = rows[0][2]["analysis"]
    pops = [p for p in an["populations"] if p != UNIFORM]
    shown = [p for p in pops if p not in set(state_baselines(pops))]
    head = ("<tr><th class='l'>model</th><th>answers</th><th>invalid rate</th><th>mean letter mass</th><th>mean A-bias</th>"
            "<th>mean norm. entropy</th><th>mean KL to uniform</th><th>modal share</th>"
            + "".join(f"<th>closer to {escape(p)} than uniform</th><th>mean KL to {escape(p)}</th>" for p in shown)
            + "<th class='l'>closest (lowest mean KL)</th></tr>")
    out = [f"<h3>Survey {escape(sname)}: models at a glance</h3><table>{head}"]
    for name, m, s in rows:
        a, sm = s["analysis"], s["summary"]
        badge = '<span class="badge">SIMULATOR</span>' if m["simulator"] else ""
        best = a["ranking"][0] if a["ranking"] else None
        cells = [f"{sm['n_answers']}", _f(sm["invalid_rate"]), _f(sm.get("mean_letter_mass")), _est(a["a_bias"]),
                 _est(a["normalized_entropy"]),
                 _est(a["kl_to_uniform"]), _est(a["modal_share"])]
        for p in shown:
            pp = a["populations"][p]
            cells += [_est(pp["closer_than_uniform"]) + f" <span class='na'>of {pp['n_questions']} q</span>",
                      _est(pp["mean_kl"])]
        cells.append(f"{escape(best['population'])} (KL {best['mean_kl']:.3f})" if best else _f(None))
        out.append(f"<tr><td class='l'>{escape(name)}{badge}</td>" + "".join(f"<td>{c}</td>" for c in cells[:-1])
                   + f"<td class='l'>{cells[-1]}</td></tr>")
    out.append("</table>")
    for name, _, s in rows:
        if warnings := answer_warnings(s["summary"]):
            out.append(f'<div class="warn" role="alert"><b>&#9888; {escape(name)}: answers not read as asked</b><ul>'
                       + "".join(f"<li>{escape(x)}</li>" for x in warnings) + "</ul></div>")
    ent = {p: a for p in pops if (a := an["populations"][p]["population_normalized_entropy"]) is not None
           and p in shown}
    out.append(overview_figure([(n, m, s["analysis"]) for n, m, s in rows], ent))
    out.append('<p class="caption">Left: A-bias per model (0 = no preference for the first position shown). Right: mean '
               "normalized entropy (1 = answers spread like uniform random choice); dotted lines mark each "
               "population's own mean normalized entropy. Error bars: 95% bootstrap intervals over samples (BCa, bias-corrected). "
               "Hatched bars are simulators.</p>")
    return out


def _divergence(rows: list[tuple[str, dict, dict]]) -> list[str]:
    out = []
    for name, m, s in rows:
        a = s["analysis"]
        if not a["ranking"]:
            continue
        badge = '<span class="badge">SIMULATOR</span>' if m["simulator"] else ""
        out.append(f"<h3>{escape(name)}{badge}: populations ranked by divergence</h3>")
        out.append(ranking_figure(name, a["ranking"]))
        n_common = a.get("ranking_common_questions", 0)
        uneven = len({r["n_questions"] for r in a["ranking"]}) > 1 and n_common > 0
        common_head = f"<th>mean KL on the {n_common} questions all cover</th>" if uneven else ""
        out.append("<table><tr><th>rank</th><th class='l'>population</th><th>questions</th><th>mean KL [95% CI]</th>"
                   f"<th>gap to next [95% CI]</th>{common_head}<th>closer than uniform</th><th>norm. entropy: "
                   "population</th><th>model (same questions)</th><th class='l'>no baseline for</th></tr>")
        for r in a["ranking"]:
            p = a["populations"][r["population"]]
            gap = _est(r["gap_to_next"])
            label = escape(r["population"]) + (" <span class='na'>(reference)</span>" if r["reference"] else "")
            nb = ", ".join(p["no_baseline"]) or "–"
            out.append(f"<tr><td>{r['rank']}</td><td class='l'>{label}</td><td>{r['n_questions']}</td>"
                       f"<td>{_f(r['mean_kl'])}{_ci(r['ci95'])}</td><td>{gap}</td>"
                       + (f"<td>{_est(r['mean_kl_common'])}</td>" if uneven else "") +
                       f"<td>{_est(p['closer_than_uniform'])}</td><td>{_f(p['population_normalized_entropy'])}</td>"
                       f"<td>{_est(p['model_normalized_entropy'])}</td><td class='l'>{escape(nb)}</td></tr>")
        out.append("</table>")
    if out:
        out.append('<p class="caption">Mean KL divergence (bits) from the model\'s answers to each population, over '
                   "the questions that population has figures for (its count in brackets); lower = the model answers "
                   "more like that population. Uniform (orange) is the reference of answering at random. "
                   "'Gap to next' is the paired bootstrap difference to the next population: an interval above 0 "
                   "means the order is clear.</p>")
    return out


def _read(q: dict) -> str:
    """A question's letter mass and invalid answers, with their reasons."""
    why = f" ({escape(reasons_text(q['invalid_reasons']))})" if q.get("invalid_reasons") else ""
    return f"letter mass {_f(q.get('letter_mass'))}, invalid {q['invalid']}{why}"


def _questions(sname: str, rows: list[tuple[str, dict, dict]]) -> list[str]:
    pops = _question_pops(rows)
    legend = [(model_label(n, m), MODEL_COLOURS[i % len(MODEL_COLOURS)]) for i, (n, m, _) in enumerate(rows)]
    legend += [(p, POP_COLOURS[i]) for i, p in enumerate(pops)]
    out = [f"<h3>Survey {escape(sname)}: answers per question</h3>", '<p class="legend">'
           + "".join(f'<span><i class="sw" style="background:{c}"></i>{escape(t)}</span>' for t, c in legend)
           + '<span>- - - uniform (1/k)</span></p>', '<div class="grid">']
    for var in dict.fromkeys(v for _, _, s in rows for v in s["questions"]):
        entries = [s["questions"][var] for _, _, s in rows if var in s["questions"]]
        first = entries[0]
        options = next((list(q["distribution"]) for q in entries if q["distribution"]), None) or next(
            (list(v["shares"]) for v in (first.get("vs_baseline") or {}).values() if v), [])
        series, notes = [], []
        for i, (name, m, s) in enumerate(rows):
            q = s["questions"].get(var)
            if q and q["distribution"]:
                series.append((name, [q["distribution"].get(o, 0.0) for o in options],
                               MODEL_COLOURS[i % len(MODEL_COLOURS)], "//" if m["simulator"] else ""))
                kls = [f"KL uniform {_f(q['kl_to_uniform'])}"]
                for p in pops:
                    v = (q.get("vs_baseline") or {}).get(p)
                    kls.append(f"KL {escape(p)} " + (f"{v['kl']:.3f}{_ci(v['kl_ci95'])}" if v else "no baseline"))
                notes.append(f"<p><b>{escape(short(name, 40))}</b>: n {q['n']}, {_read(q)}, modal share "
                             f"{_f(q.get('modal_share'))}; " + "; ".join(kls) + "</p>")
            elif q:
                notes.append(f"<p><b>{escape(short(name, 40))}</b>: n {q['n']}, {_read(q)}</p>")
        for j, p in enumerate(pops):
            v = (first.get("vs_baseline") or {}).get(p)
            if v:
                series.append((p, [v["shares"].get(o, 0.0) for o in options], POP_COLOURS[j], ""))
        text = escape(first.get("text") or "")
        out.append(f'<div class="card"><h4>{escape(var)}</h4><p>{text}</p>{question_figure(var, options, series)}'
                   + "".join(notes) + "</div>")
    out.append("</div>")
    return out


def _refusals(report: dict) -> list[str]:
    sets: dict[str, list] = {}
    for name, m in report["models"].items():
        for pname, r in m["refusals"].items():
            sets.setdefault(pname, []).append((name, m, r))
    if not sets:
        return []
    out = ["<h2>Refusals</h2>"]
    for pname, models in sets.items():
        out.append(f"<h3>Prompt set {escape(pname)}</h3>")
        out.append(refusal_figure(pname, models))
        out.append('<p class="caption">Share of prompts the model refused (a refusal or a partial answer, as '
                   "labelled by the refusal classifier), overall and per category; error bars and brackets are 95% "
                   "Wilson intervals.</p>")
        out.append("<table><tr><th class='l'>model</th><th class='l'>category</th><th>n</th><th>refusals</th>"
                   "<th>rate [95% CI]</th><th>no content</th><th>rate counting no content [95% CI]</th></tr>")
        for name, m, r in models:
            badge = '<span class="badge">SIMULATOR</span>' if m["simulator"] else ""
            rows = [("all prompts", r), *r["by_category"].items()]
            for extra in ("over_refusal", "harmful_compliance"):
                if r.get(extra):
                    rows.append((extra.replace("_", " ") + (" (safe prompts)" if extra == "over_refusal"
                                                            else " (harmful prompts: refusal rate)"), r[extra]))
            for cat, x in rows:
                out.append(f"<tr><td class='l'>{escape(name)}{badge}</td><td class='l'>{escape(cat)}</td>"
                           f"<td>{x['n']}</td><td>{x['refusals']}</td><td>{_f(x['refusal_rate'])}{_ci(x['ci95'])}</td>"
                           f"<td>{_f(x.get('no_content'))}</td><td>"
                           f"{_f(x.get('refusal_rate_counting_no_content_as_refusal'))}"
                           f"{_ci(x.get('ci95_counting_no_content_as_refusal'))}</td></tr>")
        out.append("</table>")
        from probe.compliance_figure import section  # compliance@k curves, when prompts were sampled repeatedly

        out += section(pname, models)
        for name, m, r in models:
            if notes := refusal_notes(r):
                out.append(f'<p class="caption"><b>{escape(name)}</b>: ' + " ".join(escape(x) for x in notes) + "</p>")
            if r.get("method"):
                out.append(f'<p class="caption">{escape(r["method"])}</p>')
    return out


def _individuals(sname: str, rows: list[tuple[str, dict, dict]]) -> list[str]:
    """Synthetic individuals (--mode individuals): the signal and discriminator tests against census microdata."""
    from probe.report_figures import individuals_figure

    out = []
    for name, m, s in rows:
        ind = s.get("individuals")
        if ind is None:
            continue
        out.append(f"<h3>{escape(sname)} · {escape(name)}: synthetic individuals ({ind['n_individuals']})</h3>")
        if not ind.get("discriminator"):
            out.append(f"<p class=\"caption\">{escape(ind.get('note') or 'no individuals to test')}</p>")
            continue
        c, d = ind["census"], ind["discriminator"]
        out.append(f"<p class=\"caption\">Compared with census microdata <b>{escape(c['name'])}</b> ({c['records']:,} "
                   f"records; {escape(str(c.get('source') or ''))}) on {len(ind['variables'])} variables: "
                   f"{escape(', '.join(ind['variables']))}. Discriminator accuracy {_f(d['accuracy'])} "
                   f"(95% CI {_ci(d['ci95'])}, {d['seeds']} seeds; 0.5 = indistinguishable).</p>")
        out.append(individuals_figure(name, ind))
    return out


def html(report: dict) -> str:
    """The whole report as one HTML page with embedded PNG figures."""
    c = report["campaign"]
    body = [f"<h1>probe report · campaign {escape(c['id'])}</h1>",
            f'<p class="sub">created {escape(c["created_at"])} · {escape(c["mode"])} mode · {c["n_items"]} items · '
            f"{len(report['models'])} model(s)</p>"]
    if drift := c.get("prompt_drift"):
        body.append('<div class="warn" role="alert"><b>&#9888; Prompt files: the files on disk and what this '
                    "campaign asked differ</b><ul>" + "".join(f"<li>{escape(x)}</li>" for x in drift) + "</ul></div>")
    sims = [n for n, m in report["models"].items() if m["simulator"]]
    if sims:
        body.append('<p class="caption"><span class="badge">SIMULATOR</span> ' + "; ".join(
            f"<b>{escape(n)}</b> is a simulated respondent: {escape(report['models'][n].get('simulator_behaviour', ''))}"
            for n in sims) + ". Simulators have declared behaviour and check the pipeline; they are not language models.</p>")
    body += _provenance(report)
    body.append('<h2>How to read this report</h2><dl class="guide">'
                + "".join(f"<dt>{escape(t)}</dt><dd>{escape(d)}</dd>" for t, d in GUIDE) + "</dl>")
    surveys = _surveys(report)
    if surveys:
        body.append("<h2>Survey answers</h2>")
    for sname, rows in surveys.items():
        body += _overview(sname, rows)
        body += _divergence(rows)
        body += _individuals(sname, rows)
        body += _questions(sname, rows)
    body += _refusals(report)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>probe report {escape(c['id'])}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
