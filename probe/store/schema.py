"""The durable record: campaigns, their work items, one response per item, labels per item and labeller."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(ts: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns; they were written in UTC."""
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON, list: JSON}


class Campaign(Base):
    __tablename__ = "campaigns"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    spec: Mapped[dict] = mapped_column(JSON)
    prompt_hashes: Mapped[dict] = mapped_column(JSON)  # file name -> sha256
    code_revision: Mapped[str | None] = mapped_column(String(64))
    package_versions: Mapped[dict] = mapped_column(JSON)
    n_items: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))  # embedded | fleet
    # queued -> running -> done | failed, with paused and cancelled beside them (probe.lifecycle owns moves)
    state: Mapped[str] = mapped_column(String(12), default="queued", server_default="queued")
    state_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # last enqueue to the fleet
    content: Mapped[dict | None] = mapped_column(JSON)  # the questionnaires and prompt sets it asks, as text
    # the refusal labeller the report reads (a labels.labeller_version, e.g. "tfidf:tfidf-8e5b3b39d2c6"); set to the
    # workers' default classifier at creation, moved by `probe relabel`
    refusal_labeller: Mapped[str | None] = mapped_column(String(100))


class Item(Base):
    __tablename__ = "items"
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))  # indexed by the two below
    model: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # survey | refusal
    source: Mapped[str] = mapped_column(String(100))
    item_id: Mapped[str] = mapped_column(String(100))
    sample: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    permutation: Mapped[list | None] = mapped_column(JSON)  # option codes in the order shown
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A fleet task working on a pending item renews this while it runs; the watchdog leaves leased items alone.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(64))  # the task (Celery task id) that holds it
    __table_args__ = (
        Index("ix_items_campaign_status", "campaign_id", "status"),
        Index("ix_items_campaign_progress", "campaign_id", "model", "kind", "source", "status"),  # covers status
    )


class Response(Base):
    __tablename__ = "responses"
    key: Mapped[str] = mapped_column(ForeignKey("items.key"), primary_key=True)
    messages: Mapped[list] = mapped_column(JSON)
    params: Mapped[dict] = mapped_column(JSON)  # model parameters sent (never keys)
    raw_text: Mapped[str | None] = mapped_column(Text)
    top_logprobs: Mapped[list | None] = mapped_column(JSON)  # first-token [[token, logprob], ...]
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    usage: Mapped[dict | None] = mapped_column(JSON)
    cost: Mapped[float | None] = mapped_column(Float)
    latency_s: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String(16))  # transient | permanent
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    # the version the provider says answered: the response's `model` field and system_fingerprint (None if not given)
    reported_model: Mapped[str | None] = mapped_column(String(200))
    system_fingerprint: Mapped[str | None] = mapped_column(String(200))
    # served from the response cache (no call made; cost 0, the original cost stays in the cache row)
    cached: Mapped[bool | None] = mapped_column(Boolean)


class Label(Base):
    __tablename__ = "labels"
    key: Mapped[str] = mapped_column(ForeignKey("items.key"), primary_key=True)
    labeller: Mapped[str] = mapped_column(String(64), primary_key=True)  # "answers" | classifier name | "gold"
    # part of the key: each refusal labeller's labels stay beside the others' ("answers" and "gold": one row per
    # item, replaced whole by the store)
    labeller_version: Mapped[str] = mapped_column(String(100), primary_key=True)
    # refusal | partial | compliance | no_content | answered | invalid; None: this labeller gave none (see fallback)
    label: Mapped[str | None] = mapped_column(String(16))
    option_code: Mapped[int | None] = mapped_column(Integer)
    option_probs: Mapped[dict | None] = mapped_column(JSON)  # code (str) -> probability, de-permuted
    letter_probs: Mapped[list | None] = mapped_column(JSON)  # per position shown
    p_refusal: Mapped[float | None] = mapped_column(Float)
    letter_mass: Mapped[float | None] = mapped_column(Float)  # survey: first-token probability on option letters
    reason: Mapped[str | None] = mapped_column(Text)  # why a label is invalid / no_content / missing
    fallback: Mapped[str | None] = mapped_column(String(100))  # the labeller_version whose label stands in for this one
    turns: Mapped[list | None] = mapped_column(JSON)  # an individual's turns in order (probe.individuals)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Audit(Base):
    """A periodic audit: a campaign spec run on a schedule (every_s seconds, or a cron expression, in UTC)."""

    __tablename__ = "audits"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    spec: Mapped[dict] = mapped_column(JSON)  # probe.audits.AuditSpec: the campaign spec, alert rules, webhook
    every_s: Mapped[float | None] = mapped_column(Float)
    cron: Mapped[str | None] = mapped_column(String(100))
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # beat claims a due audit by moving this forward in one conditional UPDATE: one firing per due time, whatever
    # the number of beat replicas, and one catch-up run however many periods were missed
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditRun(Base):
    """One run of an audit: a normal campaign, its headline figures once finished, and whether it alerted."""

    __tablename__ = "audit_runs"
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    audit: Mapped[str] = mapped_column(String(100), index=True)  # no foreign key: deleting an audit keeps its runs' campaigns
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | catch-up | manual
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the schedule slot it fired for
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # summary written (once)
    summary: Mapped[dict | None] = mapped_column(JSON)  # probe.audit_history.summarize
    alerts: Mapped[list | None] = mapped_column(JSON)  # rules that fired against the previous run
    webhook: Mapped[dict | None] = mapped_column(JSON)  # delivery: {status, attempts, error}
class CachedResponse(Base):
    """The response cache, shared by the whole fleet: one answer per exact request (probe.cache.key: model,
    api_base, every sent parameter, the messages). Only answers with content are kept, never errors."""

    __tablename__ = "response_cache"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), index=True)
    completion: Mapped[dict] = mapped_column(JSON)  # raw_text, top_logprobs, finish_reason, usage, letter_probs
    cost: Mapped[float | None] = mapped_column(Float)  # what the call cost when it was made
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
