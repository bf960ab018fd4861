"""Where probe keeps its files: the repo's data folders and the user's data and cache dirs."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ROOT / "prompts"
SURVEYS = PROMPTS / "surveys"
REFUSALS = PROMPTS / "refusal"
BASELINES = PROMPTS / "baselines"


def data_dir() -> Path:
    d = Path(os.environ.get("PROBE_HOME") or platformdirs.user_data_dir("probe"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def cache_dir() -> Path:
    d = Path(os.environ.get("PROBE_CACHE") or platformdirs.user_cache_dir("probe"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def default_db_url() -> str:
    return f"sqlite:///{data_dir() / 'probe.db'}"
