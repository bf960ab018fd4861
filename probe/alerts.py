"""Alert rules of an audit spec, checked on a diff of two runs (probe.drift) and the newer run's figures.

Grammar (one rule a string):
  METRIC[SEL] changes by > X [and is significant]   the change from the earlier run (|b - a|; for distribution the
  METRIC[SEL] changes and is significant            total variation distance) exceeds X and/or the test says so
  METRIC[SEL] > X   (or <, >=, <=)                  the newer run's figure
  version changed                                   the reported model name or system fingerprint changed
  any significant change                            any test of the diff is significant after the FDR correction
METRIC: refusal_rate[SET or SET/CATEGORY], over_refusal[SET], distribution[SURVEY or SURVEY.VAR] (changes only),
invalid_rate, a_bias[SURVEY], entropy[SURVEY], divergence[SURVEY], cost. SEL `*` or no SEL: every one.
Only refusal_rate and distribution have a significance test.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

METRICS = ("refusal_rate", "over_refusal", "distribution", "invalid_rate", "a_bias", "entropy", "divergence", "cost")
TESTED = ("refusal_rate", "distribution")
_OPS = {">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le}
_NUM = r"[0-9]*\.?[0-9]+"
_RULE = re.compile(
    rf"^(?P<metric>[a-z_]+)(?:\[(?P<sel>[^\]]+)\])?\s+(?:"
    rf"changes(?:\s+by\s*>\s*(?P<by>{_NUM}))?(?P<sig>\s+and\s+is\s+significant)?"
    rf"|(?P<op>>=|<=|>|<)\s*(?P<value>{_NUM}))$")


@dataclass(frozen=True)
class Rule:
    text: str
    kind: str  # change | level | version | any
    metric: str | None = None
    sel: str | None = None
    by: float | None = None
    significant: bool = False
    op: str | None = None
    value: float | None = None


def parse(text: str) -> Rule:
    """A rule from its text; ValueError says what is wrong."""
    t = " ".join(text.split())
    if t == "version changed":
        return Rule(t, "version")
    if t == "any significant change":
        return Rule(t, "any")
    m = _RULE.match(t)
    if not m:
        raise ValueError(f"cannot read alert rule '{text}' (e.g. 'refusal_rate[core] changes by > 0.05 and is "
                         "significant', 'invalid_rate > 0.1', 'version changed')")
    metric, sel = m["metric"], (m["sel"] or "*").strip()
    if metric not in METRICS:
        raise ValueError(f"unknown metric '{metric}' in alert rule '{text}' (known: {', '.join(METRICS)})")
    if m["op"]:
        if metric == "distribution":
            raise ValueError(f"'{text}': distribution has no level; use 'distribution[...] changes by > X'")
        return Rule(t, "level", metric, sel, op=m["op"], value=float(m["value"]))
    if m["by"] is None and not m["sig"]:
        raise ValueError(f"'{text}': say 'changes by > X', 'changes and is significant' or both")
    if m["sig"] and metric not in TESTED:
        raise ValueError(f"'{text}': only {' and '.join(TESTED)} have a significance test")
    return Rule(t, "change", metric, sel, by=None if m["by"] is None else float(m["by"]), significant=bool(m["sig"]))


def _matches(sel: str, key: str | None) -> bool:
    if sel == "*" or key is None:
        return True
    return key == sel or key.startswith(sel + ".")  # a survey selects its questions


def figures(model_summary: dict) -> dict[tuple[str, str | None], float]:
    """(metric, key) -> value for one model of a run summary (probe.audit_history.summarize)."""
    out: dict[tuple[str, str | None], float] = {}
    for pset, r in (model_summary.get("refusals") or {}).items():
        if r.get("refusal_rate") is not None:
            out[("refusal_rate", pset)] = r["refusal_rate"]
        for cat, c in (r.get("by_category") or {}).items():
            if c.get("refusal_rate") is not None:
                out[("refusal_rate", f"{pset}/{cat}")] = c["refusal_rate"]
        if r.get("over_refusal") is not None:
            out[("over_refusal", pset)] = r["over_refusal"]
    for survey, s in (model_summary.get("surveys") or {}).items():
        for metric, field in (("a_bias", "mean_a_bias"), ("entropy", "mean_normalized_entropy"),
                              ("divergence", "mean_divergence")):
            if s.get(field) is not None:
                out[(metric, survey)] = s[field]
    for metric in ("invalid_rate", "cost"):
        if model_summary.get(metric) is not None:
            out[(metric, None)] = model_summary[metric]
    return out


def _set_level(rule: Rule, key: str | None) -> bool:
    # refusal_rate[*] and refusal_rate[SET] look at whole sets; categories only when named (SET/CATEGORY)
    if rule.metric == "refusal_rate" and key and "/" in key:
        return rule.sel == key
    return _matches(rule.sel, key)


def evaluate(rules: list[Rule], d: dict, a: dict, b: dict) -> list[dict]:
    """The alerts the newer run b raises against run a: [{rule, model, key, message}] (one per match)."""
    out = []
    for rule in rules:
        if rule.kind == "version":
            out += [{"rule": rule.text, "model": v["model"], "key": v["field"],
                     "message": f"{v['model']}: {v['field']} changed from {v['a']!r} to {v['b']!r}"}
                    for v in d["version_changed"]]
        elif rule.kind == "any":
            out += [{"rule": rule.text, "model": t["model"], "key": t["key"],
                     "message": f"{t['model']}: {t['key']} changed significantly ({t['test']}, "
                                f"adjusted p {t['p_adjusted']:.2g})"} for t in d["significant"]]
        elif rule.kind == "level":
            for model, ms in (b.get("models") or {}).items():
                for (metric, key), value in figures(ms).items():
                    if metric == rule.metric and _set_level(rule, key) and _OPS[rule.op](value, rule.value):
                        out.append({"rule": rule.text, "model": model, "key": key,
                                    "message": f"{model}: {metric}{f'[{key}]' if key else ''} = {value:.4g} "
                                               f"{rule.op} {rule.value:g}"})
        elif rule.metric in TESTED:
            kind = "refusal_rate" if rule.metric == "refusal_rate" else "distribution"
            for t in d["tests"]:
                if t["kind"] != kind or not _set_level(rule, t["key"]):
                    continue
                if rule.by is not None and not abs(t["change"]) > rule.by:
                    continue
                if rule.significant and not t["significant"]:
                    continue
                what = (f"{t['a']:.3f} -> {t['b']:.3f}" if kind == "refusal_rate"
                        else f"total variation {t['change']:.3f}")
                out.append({"rule": rule.text, "model": t["model"], "key": t["key"],
                            "message": f"{t['model']}: {rule.metric}[{t['key']}] {what} ({t['test']}, adjusted p "
                                       f"{t['p_adjusted']:.2g})"})
        else:
            for model in sorted(set(a.get("models") or {}) & set(b.get("models") or {})):
                fa, fb = figures(a["models"][model]), figures(b["models"][model])
                for (metric, key), vb in fb.items():
                    va = fa.get((metric, key))
                    if metric == rule.metric and va is not None and _set_level(rule, key) and abs(vb - va) > rule.by:
                        out.append({"rule": rule.text, "model": model, "key": key,
                                    "message": f"{model}: {metric}{f'[{key}]' if key else ''} {va:.4g} -> {vb:.4g}"})
    return out
