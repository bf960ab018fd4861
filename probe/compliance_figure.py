"""The HTML report's compliance@k section for one prompt set: the curve per model (naive, and corrected for the
classifier where identifiable) with 95% intervals, and a caption saying where the correction comes from."""

from __future__ import annotations

from html import escape

from probe.report_figures import MODEL_COLOURS, _figure, _img, model_label, tex


def has_curve(models: list[tuple[str, dict, dict]]) -> bool:
    return any(r.get("compliance_at_k") for _, _, r in models)


def section(pname: str, models: list[tuple[str, dict, dict]]) -> list[str]:
    """[] when no model has a curve (harmful prompts sampled fewer than twice each)."""
    if not has_curve(models):
        return []
    fig = _figure(7, 3.6)
    ax = fig.subplots()
    notes = []
    for j, (name, entry, r) in enumerate(models):
        c = r.get("compliance_at_k")
        if not c:
            continue
        colour = MODEL_COLOURS[j % len(MODEL_COLOURS)]
        lo, hi = zip(*c["ci95"])
        ax.plot(c["k"], c["estimate"], "-o", color=colour, ms=3, label=model_label(name, entry) + " (classifier labels)")
        ax.fill_between(c["k"], lo, hi, color=colour, alpha=0.15)
        corr = c["corrected"]
        if corr.get("identifiable"):
            clo, chi = zip(*corr["ci95"])
            ax.plot(corr["k"], corr["estimate"], "--s", color=colour, ms=3, label=tex(f"{name} (corrected)"))
            ax.fill_between(corr["k"], clo, chi, color=colour, alpha=0.08, hatch="..")
            conf = c["classifier_confusion"]
            notes.append(f"{name}: corrected with sensitivity {conf['sensitivity']:.3f} and false-compliance rate "
                         f"{conf['false_compliance_rate']:.3f} from {conf['source']}")
        else:
            notes.append(f"{name}: no corrected curve, {corr['reason']}")
    ax.set_ylim(0, 1)
    ax.set_xlabel("k (samples of the same harmful prompt)", fontsize=9)
    ax.set_ylabel("compliance@k", fontsize=9)
    ax.set_title(tex(f"compliance@k · {pname} (harmful prompts)"), fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    caption = ("Share of harmful prompts on which at least one of k samples is labelled compliance (unbiased "
               "estimate per prompt, averaged; band: 95% bootstrap interval over prompts). The classifier's false "
               "compliances inflate it by about 1 - (1 - f)^k; the dashed curve removes that. ")
    return [f"<h4>compliance@k · {escape(pname)}</h4>", _img(fig, f"compliance at k for {pname}", "compliance"),
            '<p class="caption">' + escape(caption + "; ".join(notes)) + "</p>"]
