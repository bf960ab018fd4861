"""Explicit registry of refusal classifiers: name -> factory (DESIGN style 4).

    from classifiers import registry
    clf = registry.get()            # the default (shipped TF-IDF artifact)
    clf = registry.get("embedding") # or a name from registry.NAMES, or a path to an artifact folder
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DEFAULT = "tfidf"


def load_artifact(path: str | Path):
    """Load a classifier from an artifact folder (model.joblib + meta.json written by classifiers.train), wrapped so
    that persona-split responses are labelled from their segments (classifiers.segment)."""
    from classifiers.segment import segmenting

    return segmenting(_load_fitted(path))


def _load_fitted(path: str | Path):
    from classifiers.artifact import load_model

    path = Path(path)
    meta_path, model_path = path / "meta.json", path / "model.joblib"
    if not meta_path.is_file() or not model_path.is_file():
        raise FileNotFoundError(f"{path}: not a classifier artifact (needs model.joblib and meta.json)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    kind = meta.get("kind")
    model = load_model(model_path)
    if kind == "tfidf":
        from classifiers.tfidf import TfidfClassifier

        return TfidfClassifier(model, meta)
    if kind == "embedding":
        from classifiers.embedding import EmbeddingClassifier

        return EmbeddingClassifier(model, meta)
    raise ValueError(f"{meta_path}: unknown classifier kind {kind!r}")


def _tfidf():
    return load_artifact(ARTIFACTS / "tfidf")


def _embedding():
    return load_artifact(ARTIFACTS / "embedding")


# name -> factory. The LLM judge needs a completion function, so it is built with classifiers.judge.JudgeClassifier.
FACTORIES: dict[str, Callable[[], object]] = {
    "tfidf": _tfidf,
    "embedding": _embedding,
}
NAMES: tuple[str, ...] = tuple(FACTORIES)


@lru_cache(maxsize=8)
def _cached(name: str):
    return FACTORIES[name]()


def judge(model_id: str, api_base: str | None = None, api_key_env: str | None = None):
    """An LLM judge over any LiteLLM model (`judge:openai/gpt-4o-mini`); the call goes through probe.models.
    `api_base` points it at an OpenAI-compatible server of your own, which gets the key in the environment variable
    named `api_key_env` (else a placeholder, never a provider's key)."""
    from classifiers.judge import JudgeClassifier
    from probe import models

    # unknown provider or missing key: fail now
    models.check(models.ModelSpec(id=model_id, api_base=api_base, api_key_env=api_key_env))
    return JudgeClassifier(lambda convs: models.complete_texts(model_id, convs, api_base=api_base,
                                                               api_key_env=api_key_env), model_id=model_id)


def default_id() -> str:
    """"name:version" of the default classifier (what workers label with), from its artifact's meta.json: no model
    is loaded."""
    meta = json.loads((ARTIFACTS / DEFAULT / "meta.json").read_text(encoding="utf-8"))
    return f"{meta['kind']}:{meta['version']}"


def get(name: str | None = None, api_base: str | None = None, api_key_env: str | None = None):
    """The classifier called `name` (default: DEFAULT), `judge:MODEL`, or an artifact folder path. Cached, except
    judges. `api_base` and `api_key_env` apply to judges only."""
    name = name or DEFAULT
    if name.startswith("judge:"):
        return judge(name.split(":", 1)[1], api_base=api_base, api_key_env=api_key_env)
    if api_base is not None:
        raise ValueError("an API base applies only to judge:MODEL classifiers")
    if api_key_env is not None:
        raise ValueError("an API key variable applies only to judge:MODEL classifiers")
    if name in FACTORIES:
        return _cached(name)
    p = Path(name)
    if p.is_dir():
        return load_artifact(p)
    raise KeyError(f"unknown classifier {name!r}; known: {', '.join(NAMES)} (or pass an artifact folder)")
