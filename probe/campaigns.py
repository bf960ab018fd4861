"""Create a campaign: validate everything first, then write the campaign and all its items in one go."""

from __future__ import annotations

import secrets
import subprocess
from datetime import datetime, timezone
from importlib import metadata

from probe import paths, plan, probesets, questionnaires
from probe.datafiles import file_hash
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


def prompt_hashes(spec: CampaignSpec) -> dict[str, str]:
    files = [questionnaires.resolve(s) for s in spec.surveys] + [probesets.resolve(r) for r in spec.refusals]
    return {str(f.relative_to(paths.ROOT) if f.is_relative_to(paths.ROOT) else f): file_hash(f) for f in files}


def surveys_of(spec: CampaignSpec) -> dict[str, questionnaires.Questionnaire]:
    """The campaign's questionnaires by name (items store the name; the spec may name a file)."""
    return {q.name: q for q in map(questionnaires.load, spec.surveys)}


def probesets_of(spec: CampaignSpec) -> dict[str, probesets.ProbeSet]:
    return {p.name: p for p in map(probesets.load, spec.refusals)}


def validate(spec: CampaignSpec) -> None:
    """Everything that can be checked before anything is written: files load, models are reachable in principle."""
    from probe import models

    for s in spec.surveys:
        questionnaires.load(s)
    for r in spec.refusals:
        probesets.load(r)
    for m in spec.models:
        models.check(m)


def create(store: Store, spec: CampaignSpec, mode: str) -> tuple[str, int]:
    validate(spec)
    cid = new_id()
    items = plan.expand(spec, cid)
    store.create_campaign(
        {"id": cid, "spec": spec.model_dump(mode="json"), "prompt_hashes": prompt_hashes(spec),
         "code_revision": code_revision(), "package_versions": package_versions(), "n_items": len(items),
         "mode": mode},
        items,
    )
    return cid, len(items)
