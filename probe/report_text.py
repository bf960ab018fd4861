"""Report renderers for people: Markdown (pure text). The rich table renderer lives in probe/cli/report.py."""

from __future__ import annotations


def fmt(x, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def ci(c) -> str:
    return "–" if not c or c[0] is None else f"[{c[0]:.3f}, {c[1]:.3f}]"


def survey_rows(q: dict, baselines: list[str]) -> list[str]:
    top = max(q["distribution"], key=q["distribution"].get) if q.get("distribution") else None
    return [fmt(q["n"]), fmt(q["invalid"]), fmt(q["a_bias"]), fmt(q["normalized_entropy"]), fmt(q["kl_to_uniform"]),
            *[fmt(q["kl_to_baseline"].get(b)) for b in baselines],
            f"{top} ({q['distribution'][top]:.2f})" if top else "–"]


def markdown(report: dict) -> str:
    c = report["campaign"]
    lines = [f"# Campaign {c['id']}", "",
             f"Created {c['created_at']} · mode {c['mode']} · {c['n_items']} items · "
             f"done {c['status']['done']}, failed {c['status']['failed']}, pending {c['status']['pending']}", "",
             f"Code revision `{c['code_revision']}` · prompt files: "
             + ", ".join(f"`{k}` sha256 {v[:12]}" for k, v in c["prompt_hashes"].items()), ""]
    for model, m in report["models"].items():
        lines += [f"## {model}" + (" (simulator)" if m["simulator"] else ""), ""]
        if m["simulator"]:
            lines += [f"Simulated respondent: {m['simulator_behaviour']}", ""]
        for sname, s in m["surveys"].items():
            bnames = [b for b in s["summary"]["mean_kl_to_baseline"] if b != "uniform"]
            lines += [f"### Survey {sname}", "",
                      "| question | n | invalid | A-bias | norm. entropy | KL to uniform | "
                      + "".join(f"KL to {b} | " for b in bnames) + "modal answer |",
                      "|---" * (7 + len(bnames)) + "|"]
            for var, q in s["questions"].items():
                lines.append(f"| {var} | " + " | ".join(survey_rows(q, bnames)) + " |")
            sm = s["summary"]
            lines += ["", f"Mean A-bias {fmt(sm['mean_a_bias'])}, mean normalized entropy "
                          f"{fmt(sm['mean_normalized_entropy'])}, mean KL to uniform {fmt(sm['mean_kl_to_uniform'])}, "
                          f"invalid rate {fmt(sm['invalid_rate'])} over {sm['n_answers']} answers.", ""]
        for pname, r in m["refusals"].items():
            lines += [f"### Refusals {pname}", "",
                      f"Refusal rate {fmt(r['refusal_rate'])} (95% CI {ci(r['ci95'])}), {r['refusals']} of {r['n']}; "
                      f"errors {r['errors']}.", "", "| category | n | refusals | rate | 95% CI |", "|---|---|---|---|---|"]
            for cat, x in r["by_category"].items():
                lines.append(f"| {cat} | {x['n']} | {x['refusals']} | {fmt(x['refusal_rate'])} | {ci(x['ci95'])} |")
            lines.append("")
    return "\n".join(lines) + "\n"
