"""The report's figures, drawn with matplotlib on an Agg canvas (no pyplot, no global state) and returned as
<img> tags with base64 PNG data, for probe.report_html.

matplotlib is imported inside the functions that draw, so importing this module and the CLI stay fast.
Figures: `overview_figure` (A-bias and normalized entropy across models), `ranking_figure` (populations ranked by
divergence for one model), `question_figure` (model vs populations vs uniform for one question), `refusal_figure`
(refusal rates by category for one prompt set).
"""

from __future__ import annotations

import base64
import io
from html import escape

MODEL_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
POP_COLOURS = ["#4d4d4d", "#8c8c8c", "#bdbdbd"]
DPI = 80


def short(text: str, n: int = 34) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def tex(text: str) -> str:
    """Text for matplotlib, which reads '$...$' as math ("$12,490 and $52,000")."""
    return text.replace("$", r"\$")


def model_label(name: str, m: dict, n: int = 38) -> str:
    return tex(short(name, n)) + (" [simulator]" if m["simulator"] else "")


def _png(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(fig, alt: str, kind: str) -> str:
    return f'<img data-figure="{kind}" alt="{escape(alt)}" src="data:image/png;base64,{_png(fig)}">'


def _figure(w: float, h: float, labels: list[str] | None = None, fontsize: float = 8):
    """A Figure on no global state; with `labels` (the y tick labels) fixed margins sized to them, which is
    much faster than a layout engine, else constrained layout."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    if labels is None:
        fig.set_layout_engine("constrained")
    else:
        left = (0.2 + 0.6 * fontsize / 72 * max(map(len, labels), default=1)) / w
        fig.subplots_adjust(left=min(left, 0.6), right=0.97, top=1 - 0.32 / h, bottom=0.55 / h)
    return fig


def _err(vals: list, cis: list) -> list[list[float]]:
    lo = [max(0.0, v - c[0]) if v is not None and c else 0.0 for v, c in zip(vals, cis)]
    hi = [max(0.0, c[1] - v) if v is not None and c else 0.0 for v, c in zip(vals, cis)]
    return [lo, hi]


def overview_figure(rows: list[tuple[str, dict, dict]], pops: dict[str, float]) -> str:
    """rows: (model, model entry, survey analysis); pops: population -> mean normalized entropy."""
    n = len(rows)
    fig = _figure(11, 1.2 + 0.45 * n)
    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    y = list(range(n))[::-1]
    labels = [model_label(name, m) for name, m, _ in rows]
    colours = [MODEL_COLOURS[i % len(MODEL_COLOURS)] for i in range(n)]
    hatches = ["//" if m["simulator"] else "" for _, m, _ in rows]
    for ax, key, title in ((ax1, "a_bias", "A-bias (share at A − 1/k)"),
                           (ax2, "normalized_entropy", "Normalized entropy (1 = uniform)")):
        vals = [(a[key] or {}).get("estimate") for _, _, a in rows]
        cis = [(a[key] or {}).get("ci95") for _, _, a in rows]
        bars = ax.barh(y, [v or 0.0 for v in vals], xerr=_err(vals, cis), color=colours, capsize=3,
                       edgecolor="#333", linewidth=0.5)
        for b, h in zip(bars, hatches):
            b.set_hatch(h)
        ax.set_title(title, fontsize=11)
        ax.grid(axis="x", alpha=0.3)
    ax1.axvline(0, color="black", linewidth=0.8)
    ax2.axvline(1, color="black", linestyle="--", linewidth=1, label="uniform")
    for i, (p, v) in enumerate(pops.items()):
        ax2.axvline(v, color=POP_COLOURS[i % len(POP_COLOURS)], linestyle=":", linewidth=2, label=tex(p))
    ax2.set_xlim(0, 1.05)
    ax2.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax1.set_yticks(y, labels, fontsize=9)
    return _img(fig, "A-bias and normalized entropy across models", "overview")


def ranking_figure(model: str, ranking: list[dict]) -> str:
    n = len(ranking)
    fig = _figure(7.5, 1.0 + 0.3 * n)
    ax = fig.subplots()
    y = list(range(n))[::-1]
    vals = [r["mean_kl"] for r in ranking]
    colours = ["#e0a030" if r["reference"] else "#4c72b0" for r in ranking]
    ax.barh(y, vals, xerr=_err(vals, [r["ci95"] for r in ranking]), color=colours, capsize=2)
    ax.set_yticks(y, [tex(f"{r['population']} ({r['n_questions']} q)") for r in ranking], fontsize=9)
    ax.set_xlabel("mean KL(model || population), bits — lower = closer", fontsize=9)
    ax.set_title(tex(short(model, 70)), fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _img(fig, f"populations ranked by divergence for {model}", "ranking")


def question_figure(var: str, options: list[str], series: list[tuple[str, list[float], str, str]]) -> str:
    """series: (label, shares in option order, colour, hatch); uniform drawn as a dashed line at 1/k."""
    k, m = len(options), max(1, len(series))
    labels = [tex(short(o, 32)) for o in options]
    fig = _figure(5.2, 0.9 + max(k, 1) * (0.16 * m + 0.12), labels)
    ax = fig.subplots()
    if not k:
        ax.text(0.5, 0.5, "no valid answers and no population figures", ha="center", va="center", color="#b00")
        ax.set_title(var, fontsize=10)
        return _img(fig, f"no answers for {var}", "question")
    height = 0.8 / m
    for j, (label, shares, colour, hatch) in enumerate(series):
        pos = [k - 1 - i + 0.4 - height * (j + 0.5) for i in range(k)]
        ax.barh(pos, shares, height=height, color=colour, hatch=hatch, edgecolor="#333", linewidth=0.3, label=tex(label))
    ax.axvline(1.0 / k, color="black", linestyle="--", linewidth=1)
    ax.set_yticks([k - 1 - i for i in range(k)], labels, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of answers (dashed: uniform 1/k)", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title(var, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _img(fig, f"answer shares for {var}", "question")


def refusal_figure(pname: str, models: list[tuple[str, dict, dict]]) -> str:
    cats = sorted({c for _, _, r in models for c in r["by_category"]})
    groups = ["all prompts", *cats]
    n, m = len(groups), len(models)
    fig = _figure(8, 1.0 + n * (0.22 * m + 0.15))
    ax = fig.subplots()
    height = 0.8 / m
    for j, (name, entry, r) in enumerate(models):
        stats = [r, *[r["by_category"].get(c) for c in cats]]
        vals = [s["refusal_rate"] if s else None for s in stats]
        cis = [s["ci95"] if s else None for s in stats]
        pos = [n - 1 - i + 0.4 - height * (j + 0.5) for i in range(n)]
        ax.barh(pos, [v or 0.0 for v in vals], height=height, xerr=_err(vals, cis), capsize=2,
                color=MODEL_COLOURS[j % len(MODEL_COLOURS)], hatch="//" if entry["simulator"] else "",
                edgecolor="#333", linewidth=0.3, label=model_label(name, entry))
    ax.set_yticks([n - 1 - i for i in range(n)], [tex(g) for g in groups], fontsize=9)
    ax.set_xlim(0, 1)
    ax.set_xlabel("refusal rate (refusal or partial), 95% Wilson interval", fontsize=9)
    ax.set_title(tex(f"refusals · {pname}"), fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return _img(fig, f"refusal rates for {pname}", "refusals")


def individuals_figure(model: str, ind: dict) -> str:
    """Synthetic individuals: per variable, the signal test's best learner on the model's individuals and on the
    census beside the majority-class rate; and the discriminator's accuracy with its interval against 0.5."""
    sig = ind["signal"]
    vars_ = [v for v, e in sig.items() if e["model"].get("majority") is not None]
    n = len(vars_)
    fig = _figure(11, 1.4 + 0.32 * max(n, 1))
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[3, 1])
    y = list(range(n))[::-1]
    best = [max(sig[v]["model"][m] for m in ("naive_bayes", "logistic", "boosting")) for v in vars_]
    census = [max((sig[v]["census"][m] or 0) for m in ("naive_bayes", "logistic", "boosting")) for v in vars_]
    ax1.barh([i + 0.2 for i in y], best, 0.4, color=MODEL_COLOURS[0], label=f"{tex(short(model, 30))} (best learner)")
    ax1.barh([i - 0.2 for i in y], census, 0.4, color=POP_COLOURS[1], label="census (best learner)")
    ax1.scatter([sig[v]["model"]["majority"] for v in vars_], [i + 0.2 for i in y], marker="|", s=120, c="k",
                label="majority class", zorder=3)
    ax1.scatter([sig[v]["census"]["majority"] or 0 for v in vars_], [i - 0.2 for i in y], marker="|", s=120, c="k",
                zorder=3)
    ax1.set_yticks(y, vars_)
    ax1.set_xlim(0.4, 1.0)
    ax1.set_xlabel("signal test: accuracy predicting the variable from the other answers")
    ax1.legend(fontsize=7, loc="lower right")
    d = ind["discriminator"]
    lo, hi = d["ci95"] if d["ci95"][0] is not None else (d["accuracy"], d["accuracy"])
    ax2.errorbar([0], [d["accuracy"]], yerr=[[d["accuracy"] - lo], [hi - d["accuracy"]]], fmt="o",
                 color=MODEL_COLOURS[0], capsize=6)
    ax2.axhline(0.5, color="k", lw=0.8, ls="--")
    ax2.set_ylim(0.4, 1.0)
    ax2.set_xticks([])
    ax2.set_title("discriminator accuracy\n(0.5 = indistinguishable)", fontsize=8)
    return _img(fig, f"{model}: signal and discriminator tests", "individuals")
