"""`probe audit history|diff --format html`: self-contained pages (the report's CSS, a trend plot as base64 PNG)."""

from __future__ import annotations

import base64
import io
from html import escape

from probe.drift import fmt_p
from probe.report_html import CSS

EXTRA_CSS = "tr.sig td{background:#fff0e0;font-weight:bold}td.alert{color:#b00000;font-weight:bold}"


def _f(x, d: int = 3) -> str:
    return '<span class="na">–</span>' if x is None else f"{x:.{d}f}" if isinstance(x, float) else escape(str(x))


def _page(title: str, body: list[str]) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{CSS}{EXTRA_CSS}</style></head><body>\n<h1>{escape(title)}</h1>\n" + "\n".join(body)
            + "\n</body></html>\n")


def trend_figure(rows: list[dict]) -> str:
    """Refusal rate per set, mean A-bias, entropy and divergence per survey, and invalid rate, run by run."""
    from matplotlib.figure import Figure

    series: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        label = f"{r['model']} · " if len({x['model'] for x in rows}) > 1 else ""
        for metric in ("refusal_rate", "a_bias", "entropy", "divergence"):
            for k, v in r[metric].items():
                if v is not None:
                    series.setdefault(f"{label}{metric}[{k}]", []).append((r["run"], v))
        if r["invalid_rate"] is not None:
            series.setdefault(f"{label}invalid_rate", []).append((r["run"], r["invalid_rate"]))
    fig = Figure(figsize=(9, 4), dpi=80)
    ax = fig.add_subplot()
    for name, pts in series.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
    for r in rows:
        if r["alerting"]:
            ax.axvline(r["run"], color="#d62728", alpha=0.25, lw=6)
    ax.set_xlabel("run")
    ax.set_ylabel("value")
    ax.set_title("Audit trend (shaded: alerting runs)")
    if series:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return f'<img alt="audit trend" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def history_html(name: str, rows: list[dict]) -> str:
    sets = sorted({k for r in rows for k in r["refusal_rate"]})
    surveys = sorted({k for r in rows for k in r["a_bias"]})
    head = ["run", "started", "trigger", "state", "model", "version", "fingerprint"] + [f"refusal {s}" for s in sets] + \
        [f"over-refusal {s}" for s in sets] + [f"{m} {s}" for s in surveys for m in ("A-bias", "entropy", "divergence")] + \
        ["invalid", "cost", "alerting"]
    trs = []
    for r in rows:
        cells = [r["run"], r["started_at"][:19], r["trigger"], r["state"], r["model"], r["version"], r["fingerprint"]]
        cells += [r["refusal_rate"].get(s) for s in sets] + [r["over_refusal"].get(s) for s in sets]
        cells += [r[m].get(s) for s in surveys for m in ("a_bias", "entropy", "divergence")]
        cells += [r["invalid_rate"], r["cost"]]
        trs.append("<tr>" + "".join(f"<td>{_f(c)}</td>" for c in cells)
                   + ('<td class="alert">yes</td>' if r["alerting"] else "<td>no</td>") + "</tr>")
    table = "<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>" + "".join(trs) + "</table>"
    return _page(f"probe audit {name}: history", [f"<p class=\"sub\">{len({r['run'] for r in rows})} run(s)</p>",
                                                   trend_figure(rows) if rows else "", table])


def diff_html(name: str, d: dict, found: list[dict]) -> str:
    body = []
    if d["version_changed"]:
        body.append('<div class="warn" role="alert"><b>The model version changed between the runs</b><ul>' + "".join(
            f"<li>{escape(v['model'])}: {escape(v['field'])} {escape(repr(v['a']))} &rarr; {escape(repr(v['b']))}</li>"
            for v in d["version_changed"]) + "</ul></div>")
    if found:
        body.append('<div class="warn" role="alert"><b>Alerting</b><ul>'
                    + "".join(f"<li>{escape(x['message'])}</li>" for x in found) + "</ul></div>")
    c = d["correction"]
    body.append(f"<p class=\"sub\">run {escape(str(d['run_a']))} &rarr; {escape(str(d['run_b']))} · {c['n_tests']} "
                f"tests · {escape(c['method'])} at q = {c['q']} · {len(d['significant'])} significant "
                "(highlighted)</p>")
    head = ["model", "what", "before", "after", "change", "test", "p", "adjusted p"]
    trs = []
    for t in d["tests"]:
        before = t["a"] if t["kind"] == "refusal_rate" else ", ".join(f"{k} {v:.2f}" for k, v in t["a"].items())
        after = t["b"] if t["kind"] == "refusal_rate" else ", ".join(f"{k} {v:.2f}" for k, v in t["b"].items())
        what = f"refusal rate {t['key']}" if t["kind"] == "refusal_rate" else f"answers {t['key']} (TV)"
        cells = [t["model"], what, before, after, t["change"], t["test"], fmt_p(t["p"]), fmt_p(t["p_adjusted"])]
        cls = ' class="sig"' if t["significant"] else ""
        trs.append(f"<tr{cls}>"
                   + "".join(f"<td class=\"l\">{_f(x)}</td>" for x in cells) + "</tr>")
    body.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(trs) + "</table>")
    return _page(f"probe audit {name}: diff", body)
