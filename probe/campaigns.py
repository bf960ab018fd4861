"""Create a campaign: validate everything first, then write the campaign and all its items in one go.

A campaign stores the questionnaires and prompt sets it asks (`content`); workers and reports parse that, and
`drift` tells when the files on disk no longer match it.
"""

from __future__ import annotations

import secrets
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from probe import paths, plan, probesets, questionnaires
from probe.datafiles import file_hash, read_text, text_hash
from probe.errors import ProbeError
from probe.spec import CampaignSpec
from probe.store import Store

PACKAGES = ("probe", "litellm", "celery", "kombu", "redis", "sqlalchemy", "scikit-learn", "transformers", "torch",
            "sentence-transformers", "numpy", "scipy")


def new_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def code_revision() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(paths.ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        rev = out.stdout.strip()
        if out.returncode == 0 and rev:
            dirty = subprocess.run(["git", "-C", str(paths.ROOT), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def package_versions() -> dict[str, str]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


def file_key(path: Path) -> str:
    """How a prompt file is named in prompt_hashes and content: relative to the repo when inside it, else absolute."""
    f = Path(path).resolve()
    return str(f.relative_to(paths.ROOT) if f.is_relative_to(paths.ROOT) else f)


def prompt_hashes(spec: CampaignSpec) -> dict[str, str]:
    files = [questionnaires.resolve(s) for s in spec.surveys] + [probesets.resolve(r) for r in spec.refusals]
    return {file_key(f): file_hash(f) for f in files}


# -- what a campaign asks, stored with it ------------------------------------------------------------------------
# content = {"surveys": {NAME: {"file", "sha256", "text"}}, "refusals": {NAME: {...}}}; NAME is what items store
# in Item.source (a questionnaire's `name`, a prompt set's file stem). Workers and reports parse these texts, never
# the files on disk, so a worker on another machine or an edited file cannot change what a campaign asks.

KINDS = ("surveys", "refusals")
_PARSERS = {"surveys": questionnaires.loads, "refusals": probesets.loads}
_RESOLVE = {"surveys": questionnaires.resolve, "refusals": probesets.resolve}
_parsed: dict[tuple[str, str, str], Any] = {}  # (kind, file, sha256) -> Questionnaire | ProbeSet, per process
_PARSED_MAX = 64


def _parse(kind: str, entry: dict, source: str | None = None):
    """The parsed questionnaire or prompt set of one stored entry; each (file, sha256) is parsed once per process.
    source: the file name errors give (default: the stored one)."""
    key = (kind, entry["file"], entry["sha256"])
    obj = _parsed.get(key)
    if obj is None:
        if text_hash(entry["text"]) != entry["sha256"]:
            raise ProbeError(f"the campaign's stored copy of {entry['file']} does not match its sha256 "
                             f"{entry['sha256'][:12]}…: the stored content is damaged")
        obj = _PARSERS[kind](entry["text"], source or entry["file"])
        if len(_parsed) >= _PARSED_MAX:
            _parsed.pop(next(iter(_parsed)))
        _parsed[key] = obj
    return obj


def content_of(spec: CampaignSpec) -> dict:
    """The text, file name and sha256 of every questionnaire and prompt set the spec names, by the name items
    store; parsing each one validates it (errors name file, line and field)."""
    content: dict[str, dict] = {kind: {} for kind in KINDS}
    for kind, names in (("surveys", spec.surveys), ("refusals", spec.refusals)):
        for n in names:
            path = _RESOLVE[kind](n)
            text = read_text(path)
            entry = {"file": file_key(path), "sha256": text_hash(text), "text": text}
            name = _parse(kind, entry, str(path)).name  # errors name the file as the spec gave it
            if (prev := content[kind].get(name)) and prev["file"] != entry["file"]:
                raise ProbeError(f"{prev['file']} and {entry['file']} are both named '{name}': a campaign's "
                                 f"{kind} need distinct names")
            content[kind][name] = entry
    return content


def hashes_of(content: dict) -> dict[str, str]:
    """prompt_hashes as the stored content gives them."""
    return {e["file"]: e["sha256"] for kind in KINDS for e in content.get(kind, {}).values()}


def _from(kind: str, content: dict) -> dict:
    out = {}
    for name, entry in content.get(kind, {}).items():
        obj = _parse(kind, entry)
        if obj.name != name:
            raise ProbeError(f"the campaign stores {entry['file']} as '{name}' but it is named '{obj.name}'")
        out[name] = obj
    return out


def surveys_from(content: dict) -> dict[str, questionnaires.Questionnaire]:
    """The campaign's questionnaires by name, parsed from its stored content."""
    return _from("surveys", content)


def probesets_from(content: dict) -> dict[str, probesets.ProbeSet]:
    """The campaign's prompt sets by name, parsed from its stored content."""
    return _from("refusals", content)


def surveys_of(spec: CampaignSpec) -> dict[str, questionnaires.Questionnaire]:
    """The questionnaires on disk by name (items store the name; the spec may name a file): for campaigns created
    before campaigns stored their content."""
    return {q.name: q for q in map(questionnaires.load, spec.surveys)}


def probesets_of(spec: CampaignSpec) -> dict[str, probesets.ProbeSet]:
    return {p.name: p for p in map(probesets.load, spec.refusals)}


def prompts_of(campaign) -> tuple[dict[str, questionnaires.Questionnaire], dict[str, probesets.ProbeSet]]:
    """(questionnaires, prompt sets) by name that a campaign row asks: its stored content, or for a campaign
    created before content was stored, the files on disk now (drift() says so)."""
    content = getattr(campaign, "content", None)
    if content is not None:
        return surveys_from(content), probesets_from(content)
    spec = CampaignSpec.model_validate(campaign.spec)
    return surveys_of(spec), probesets_of(spec)


def _on_disk(file: str) -> Path | None:
    p = Path(file)
    for cand in ([p] if p.is_absolute() else [paths.ROOT / p, p]):  # keys are repo-relative (older ones cwd-relative)
        if cand.is_file():
            return cand
    return None


def _differs(file: str, stored: str, consequence: str) -> list[str]:
    path = _on_disk(file)
    if path is None:
        return [f"{file} is missing on disk (stored sha256 {stored[:12]}…); {consequence}"]
    now = file_hash(path)
    if now == stored:
        return []
    return [f"{file} changed on disk since the campaign (stored sha256 {stored[:12]}…, now {now[:12]}…); "
            f"{consequence}"]


def drift(campaign) -> list[str]:
    """One line per prompt file whose copy on disk differs from what the campaign stored (changed or missing);
    [] when none. A campaign without stored content reads the files on disk, and the first line says so."""
    content = getattr(campaign, "content", None)
    if content is None:
        return (["this campaign was created before campaigns stored their prompts: it is reported from the prompt "
                 "files on disk now"]
                + [ln for f, sha in (campaign.prompt_hashes or {}).items()
                   for ln in _differs(f, sha, "the report reads the file on disk, not what the campaign asked")])
    return [ln for kind in KINDS for e in content.get(kind, {}).values()
            for ln in _differs(e["file"], e["sha256"], "the report uses the stored content")]


def validate(spec: CampaignSpec) -> dict:
    """Everything that can be checked before anything is written: files load, models are reachable in principle.
    Returns the campaign's content (content_of)."""
    from probe import models

    content = content_of(spec)
    for m in spec.models:
        models.check(m)
        if spec.max_cost is not None and not models.has_price(m):
            raise ProbeError(f"--max-cost needs a price for model '{m.id}': LiteLLM does not price it; give "
                             "--price-in and --price-out (USD per million tokens, or price_in/price_out in the spec)")
    return content


def _default_labeller() -> str | None:
    """The refusal labeller the workers use (the default classifier's "name:version"); None without classifiers."""
    try:
        from classifiers import registry
    except ImportError:
        return None
    return registry.default_id()


def create(store: Store, spec: CampaignSpec, mode: str) -> tuple[str, int]:
    content = validate(spec)
    cid = new_id()
    surveys, sets = surveys_from(content), probesets_from(content)  # plan from exactly what is stored
    n = plan.count(spec, surveys, sets)
    store.create_campaign(
        {"id": cid, "spec": spec.model_dump(mode="json"), "prompt_hashes": hashes_of(content), "content": content,
         "code_revision": code_revision(), "package_versions": package_versions(), "n_items": n, "mode": mode,
         "refusal_labeller": _default_labeller() if spec.refusals else None},
        plan.iter_items(spec, cid, surveys, sets),
    )
    return cid, n
