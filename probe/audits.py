"""Periodic model audits: a campaign spec run on a schedule kept in the store, each run a normal campaign.

`tick` is what `probe beat` fires every PROBE_AUDIT_TICK_S seconds (on a worker): it claims each due audit with one
conditional UPDATE of next_run_at (so beat replicas never fire one twice), moves next_run_at to the next slot after
now (so periods missed while beat was down give one catch-up run, not one per period), skips an audit whose last
run is still going, and starts a run. It also finishes runs whose campaign ended: their summary, alerts against the
previous run, and the webhook. Embedded `probe audit run` does the same in-process.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import delete, select, update

from probe import alerts
from probe.errors import ProbeError
from probe.spec import CampaignSpec
from probe.store import Store
from probe.store.schema import Audit, AuditRun, Campaign, aware, utcnow

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")  # a run in these states is still going: the next is not started beside it
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(pattern=r"^https?://")
    # the environment variable holding the HMAC key; the body is signed (X-Probe-Signature), the key never sent
    secret_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    attempts: int = Field(4, ge=1, le=10)


def _rule(text: str) -> str:
    alerts.parse(text)  # ValueError says what is wrong; pydantic names the file, line and alerts.N
    return text


class AuditSpec(CampaignSpec):
    """A campaign spec plus what makes it an audit. The response cache is off unless the spec says `cache: true`:
    a cached answer would hide drift. Runs reuse `seed`, so answer orders match run to run."""

    cache: bool = False
    alerts: list[Annotated[str, AfterValidator(_rule)]] = []
    webhook: Webhook | None = None
    fdr_q: float = Field(0.05, gt=0, lt=1)

    def campaign(self) -> CampaignSpec:
        return CampaignSpec.model_validate(self.model_dump(exclude={"alerts", "webhook", "fdr_q"}))

    def rules(self) -> list[alerts.Rule]:
        return [alerts.parse(r) for r in self.alerts]


def load_spec(path: str) -> AuditSpec:
    from probe.datafiles import load_yaml

    return load_yaml(path, AuditSpec)


# -- schedules ------------------------------------------------------------------------------------------------------
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_every(text: str) -> float:
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smhd])\s*", text or "")
    if not m or float(m[1]) <= 0:
        raise ProbeError(f"--every: '{text}' is not a period such as 30s, 15m, 24h or 7d")
    return float(m[1]) * _UNITS[m[2]]


_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


def _cron_field(text: str, lo: int, hi: int) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        base, _, step = part.partition("/")
        a, b = (lo, hi) if base == "*" else (int(base.split("-")[0]), int(base.split("-")[-1]))
        if not (lo <= a <= b <= hi) or (step and int(step) < 1):
            raise ValueError(part)
        out.update(range(a, b + 1, int(step) if step else 1))
    return out


def parse_cron(expr: str) -> tuple[set[int], ...]:
    """Five fields (minute hour day-of-month month day-of-week, Sunday 0), in UTC: *, lists, ranges, steps."""
    fields = (expr or "").split()
    if len(fields) != 5:
        raise ProbeError(f"--cron: '{expr}' needs 5 fields: minute hour day-of-month month day-of-week")
    try:
        sets = tuple(_cron_field(f.replace("7", "0") if i == 4 else f, *r)
                     for i, (f, r) in enumerate(zip(fields, _CRON_RANGES)))
    except ValueError as e:
        raise ProbeError(f"--cron: '{expr}': cannot read '{e}'") from None
    return sets + (fields[2] != "*", fields[4] != "*")


def next_cron(expr: str, after: datetime) -> datetime:
    minute, hour, dom, month, dow, dom_set, dow_set = parse_cron(expr)
    t = after.astimezone(timezone.utc).replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(366 * 5):
        day_ok = (t.day in dom) if not dow_set else ((t.isoweekday() % 7) in dow) if not dom_set else (
            t.day in dom or (t.isoweekday() % 7) in dow)  # cron: with both restricted, either matches
        if t.month in month and day_ok:
            for h in sorted(x for x in hour if x >= t.hour):
                for mi in sorted(x for x in minute if h > t.hour or x >= t.minute):
                    return t.replace(hour=h, minute=mi)
        t = (t + timedelta(days=1)).replace(hour=0, minute=0)
    raise ProbeError(f"--cron: '{expr}' never fires")


def next_slot(a: Audit, now: datetime) -> datetime:
    """The first scheduled time after now, on the audit's grid (missed slots are skipped, not queued)."""
    if a.cron:
        return next_cron(a.cron, now)
    base = aware(a.next_run_at) if a.next_run_at else now
    if base > now:
        return base
    periods = int((now - base).total_seconds() // a.every_s) + 1
    return base + timedelta(seconds=periods * a.every_s)


# -- the audits table ---------------------------------------------------------------------------------------------
def get(store: Store, name: str) -> Audit:
    with store.session() as s:
        a = s.get(Audit, name)
        if a is None:
            names = s.scalars(select(Audit.name).order_by(Audit.name).limit(10)).all()
            raise ProbeError(f"no audit '{name}'" + (f" (audits: {', '.join(names)})" if names else " (none yet)"))
        return a


def create(store: Store, name: str, spec: AuditSpec, every: str | None, cron: str | None,
           start: datetime | None = None) -> Audit:
    if not _NAME.match(name):
        raise ProbeError(f"audit name '{name}': letters, digits, '.', '_' and '-' only (up to 100)")
    if bool(every) == bool(cron):
        raise ProbeError("give exactly one of --every (e.g. 24h) and --cron (e.g. \"0 3 * * *\")")
    every_s = parse_every(every) if every else None
    if cron:
        parse_cron(cron)
    from probe import campaigns

    campaigns.validate(spec.campaign())  # prompt files and models, before anything is written
    now = utcnow()
    first = start or (now if every_s else next_cron(cron, now))
    with store.session.begin() as s:
        if s.get(Audit, name) is not None:
            raise ProbeError(f"audit '{name}' exists; `probe audit delete {name}` first")
        s.add(Audit(name=name, spec=spec.model_dump(mode="json"), every_s=every_s, cron=cron, paused=False,
                    next_run_at=first, created_at=now))
    return get(store, name)


def all_audits(store: Store) -> list[Audit]:
    with store.session() as s:
        return list(s.scalars(select(Audit).order_by(Audit.name)))


def set_paused(store: Store, name: str, paused: bool) -> None:
    a = get(store, name)
    values = {"paused": paused}
    if not paused and a.every_s and a.next_run_at and aware(a.next_run_at) < utcnow():
        values["next_run_at"] = next_slot(a, utcnow())  # resuming is not a backlog: the next slot from now
    with store.session.begin() as s:
        s.execute(update(Audit).where(Audit.name == name).values(**values))


def delete_audit(store: Store, name: str) -> int:
    """Delete the schedule and its run records (the runs' campaigns stay); returns the number of runs."""
    get(store, name)
    with store.session.begin() as s:
        n = s.execute(delete(AuditRun).where(AuditRun.audit == name)).rowcount
        s.execute(delete(Audit).where(Audit.name == name))
    return n


def runs(store: Store, name: str) -> list[dict]:
    """The audit's runs, oldest first, numbered from 1, with their campaign's state."""
    with store.session() as s:
        q = (select(AuditRun, Campaign.state, Campaign.state_reason).join(Campaign, Campaign.id == AuditRun.campaign_id)
             .where(AuditRun.audit == name).order_by(AuditRun.started_at, AuditRun.campaign_id))
        rows = s.execute(q).all()
    return [{"run": i, "campaign_id": r.campaign_id, "trigger": r.trigger, "state": state, "state_reason": reason,
             "due_at": aware(r.due_at).isoformat() if r.due_at else None,
             "started_at": aware(r.started_at).isoformat(),
             "finished_at": aware(r.finished_at).isoformat() if r.finished_at else None,
             "summary": r.summary, "alerts": r.alerts, "webhook": r.webhook}
            for i, (r, state, reason) in enumerate(rows, 1)]


def active_run(store: Store, name: str) -> str | None:
    with store.session() as s:
        return s.scalar(select(AuditRun.campaign_id).join(Campaign, Campaign.id == AuditRun.campaign_id)
                        .where(AuditRun.audit == name, Campaign.state.in_(ACTIVE)).limit(1))


# -- running --------------------------------------------------------------------------------------------------------
def start_run(store: Store, a: Audit, broker: str | None, trigger: str, due_at: datetime | None = None) -> str:
    """Create the run's campaign and its audit_runs row; with a broker, enqueue it to the fleet (the caller runs an
    embedded one). Returns the campaign id."""
    from probe import campaigns, dispatch

    spec = AuditSpec.model_validate(a.spec).campaign()
    cid, _ = campaigns.create(store, spec, "fleet" if broker else "embedded")
    with store.session.begin() as s:
        s.add(AuditRun(campaign_id=cid, audit=a.name, trigger=trigger, due_at=due_at, started_at=utcnow()))
    if broker:
        store.set_state(cid, "running", None, mode="fleet")
        dispatch.enqueue(broker, cid, store.iter_keys(cid, "pending"), spec.concurrency, store=store)
    log.info("audit %s: run %s started (%s)", a.name, cid, trigger)
    return cid


def claim_due(store: Store, now: datetime | None = None) -> list[tuple[Audit, datetime]]:
    """The audits due now that this caller won: (audit, the slot it fired for)."""
    now = now or utcnow()
    with store.session() as s:
        due = list(s.scalars(select(Audit).where(Audit.paused.is_(False), Audit.next_run_at <= now)))
    won = []
    for a in due:
        with store.session.begin() as s:
            moved = s.execute(update(Audit).where(Audit.name == a.name, Audit.paused.is_(False),
                                                  Audit.next_run_at <= now)
                              .values(next_run_at=next_slot(a, now))).rowcount
        if moved:
            won.append((a, aware(a.next_run_at)))
    return won


def tick(store: Store, broker: str | None, now: datetime | None = None) -> dict:
    """One pass: finish ended runs, then start the due audits' runs. Returns what it did."""
    now = now or utcnow()
    done = finish_ended(store)
    started, skipped = [], []
    for a, slot in claim_due(store, now):
        if (running := active_run(store, a.name)) is not None:
            log.warning("audit %s: run %s is still going; the run due at %s is skipped", a.name, running, slot)
            skipped.append(a.name)
            continue
        period = a.every_s or 0
        trigger = "catch-up" if period and (now - slot).total_seconds() >= period else "schedule"
        try:
            started.append(start_run(store, a, broker, trigger, due_at=slot))
        except Exception:
            log.exception("audit %s: could not start the run due at %s", a.name, slot)
    return {"finished": done, "started": started, "skipped": skipped}


def finish_ended(store: Store) -> list[str]:
    with store.session() as s:
        ids = list(s.scalars(select(AuditRun.campaign_id).join(Campaign, Campaign.id == AuditRun.campaign_id)
                             .where(AuditRun.finished_at.is_(None), Campaign.state.in_(("done", "failed")))))
    out = []
    for cid in ids:
        try:
            if finish(store, cid):
                out.append(cid)
        except Exception:
            log.exception("audit run %s: could not write its summary", cid)
    return out


def previous_summary(store: Store, name: str, campaign_id: str) -> dict | None:
    """The summary of the last finished, done run before this one."""
    prev = None
    for r in runs(store, name):
        if r["campaign_id"] == campaign_id:
            return prev
        if r["state"] == "done" and r["summary"]:
            prev = r["summary"]
    return prev


def finish(store: Store, campaign_id: str) -> bool:
    """Write an ended run's summary and alerts once (a conditional UPDATE: of several callers one wins), then send
    its webhook when it alerts. True if this call wrote it."""
    from probe import audit_history, drift, webhook

    with store.session() as s:
        run = s.get(AuditRun, campaign_id)
        state = s.scalar(select(Campaign.state).where(Campaign.id == campaign_id))
    if run is None or run.finished_at is not None or state not in ("done", "failed"):
        return False
    a = get(store, run.audit)
    spec = AuditSpec.model_validate(a.spec)
    summary = audit_history.summarize(store, campaign_id)
    prev = previous_summary(store, a.name, campaign_id) if summary["state"] == "done" else None
    found: list[dict] = []
    d = None
    if prev is not None:
        d = drift.diff(prev, summary, spec.fdr_q)
        found = alerts.evaluate(spec.rules(), d, prev, summary)
    with store.session.begin() as s:
        won = s.execute(update(AuditRun).where(AuditRun.campaign_id == campaign_id, AuditRun.finished_at.is_(None))
                        .values(finished_at=utcnow(), summary=summary, alerts=found)).rowcount
    if not won:
        return False
    if found and spec.webhook:
        result = webhook.deliver(spec.webhook, webhook.payload(a.name, campaign_id, prev, d, found))
        with store.session.begin() as s:
            s.execute(update(AuditRun).where(AuditRun.campaign_id == campaign_id).values(webhook=result))
    return True
