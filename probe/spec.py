"""What a campaign asks for: models (a LiteLLM id plus parameters) and the prompt files to send them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from probe.datafiles import load_yaml

Ordering = Literal["random", "fixed", "reversed"]
AnswerMode = Literal["auto", "logprobs", "text"]
# questions: each (question, sample) is its own one-question conversation; individuals: each sample is one synthetic
# individual filling in the whole questionnaire in one conversation, with the form's skip rules (the paper's Section 5)
SurveyMode = Literal["questions", "individuals"]
# The populations a report compares with unless told otherwise: answering at random, and the US population (the
# paper's question is whether a model answers like the population). A default that does not fit a questionnaire
# (us_2019 is for acs2019) is left out of that survey's comparisons; one named on purpose that does not fit is an error.
DEFAULT_BASELINES = ("uniform", "us_2019")


class ModelSpec(BaseModel):
    """One model as LiteLLM reaches it. API keys are never part of a spec: they come from the environment."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, description="LiteLLM model id, e.g. openai/gpt-4o-mini, local/smollm2-135m")
    api_base: str | None = None
    # The environment variable whose value is sent as the key to a custom api_base. Without it a custom
    # api_base gets a placeholder, never a provider's key (OPENAI_API_KEY must not leak to another host).
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    temperature: float = Field(1.0, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    top_logprobs: int = Field(20, ge=0, le=20)
    # Limits that hold across the whole fleet (one shared limiter in Redis; embedded: in-process), per model and
    # api_base: requests and tokens per minute, calls in flight.
    rpm: float | None = Field(None, gt=0)
    tpm: float | None = Field(None, gt=0)
    max_concurrency: int | None = Field(None, ge=1)
    # USD per million input / output tokens, for models LiteLLM does not price (self-hosted, the test server);
    # when given they are used instead of LiteLLM's cost tables.
    price_in: float | None = Field(None, ge=0)
    price_out: float | None = Field(None, ge=0)

    def survey_max_tokens(self, mode: AnswerMode) -> int:
        return self.max_tokens or (1 if mode == "logprobs" else 8)

    def refusal_max_tokens(self) -> int:
        return self.max_tokens or 256


class CampaignSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[ModelSpec] = Field(min_length=1)
    surveys: list[str] = []
    refusals: list[str] = []
    samples: int = Field(10, ge=1, le=100_000)
    seed: int = 0
    ordering: Ordering = "random"
    template: str = "paper"
    answer_mode: AnswerMode = "auto"
    survey_mode: SurveyMode = "questions"
    baselines: list[str] = list(DEFAULT_BASELINES)
    concurrency: int = Field(32, ge=1, le=1024)
    timeout_s: float = Field(60.0, gt=0)
    num_retries: int = Field(4, ge=0, le=20)
    # Whether responses may come from the response cache (identical model, api_base, parameters and messages); audit
    # runs turn it off unless their spec says `cache: true`, since a cached answer would hide drift.
    cache: bool = True
    # Sample until precise (probe.adaptive_run): rounds until every cell's 95% anytime-valid interval has at most
    # this half-width or the cell has max_samples samples; `samples` is then the first round's per cell.
    target_ci: float | None = Field(None, gt=0, lt=0.5)
    max_samples: int | None = Field(None, ge=1, le=100_000)
    # No call starts once committed spend (done plus in flight) would pass this many USD: the campaign is paused.
    max_cost: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _something(self):
        if not self.surveys and not self.refusals:
            raise ValueError("a campaign needs at least one --survey or --refusals set")
        if self.survey_mode == "individuals" and not self.surveys:
            raise ValueError("--mode individuals needs a --survey")
        return self

    @field_validator("template")
    @classmethod
    def _known_template(cls, v: str) -> str:
        from probe.render import TEMPLATES

        if v not in TEMPLATES:
            raise ValueError(f"unknown template '{v}' (available: {', '.join(TEMPLATES)})")
        return v


def load_spec_file(path: str | Path) -> CampaignSpec:
    return load_yaml(path, CampaignSpec)
