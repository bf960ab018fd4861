"""Moving campaigns between states: start, cancel, resume. The CLI calls these; workers only read the state.

queued -> running -> done | failed, with paused (Ctrl-C, a budget, by hand) and cancelled beside them.
`resume` takes a paused, cancelled, failed or interrupted (still "running", nothing running it) campaign back
to running and enqueues exactly the items not done; it never redoes a done item (tasks skip done items, and
writes are upserts on the item key).
"""

from __future__ import annotations

from probe.errors import ProbeError
from probe.store import Store

RESUMABLE = ("queued", "running", "paused", "cancelled", "failed", "done")


def cancel(store: Store, campaign_id: str) -> None:
    state = store.campaign(campaign_id).state
    if state in ("cancelled", "done", "failed"):
        raise ProbeError(f"campaign {campaign_id} is already {state}; nothing to cancel")
    if not store.set_state(campaign_id, "cancelled", "cancelled by hand", only_from=(state,)):
        raise ProbeError(f"campaign {campaign_id} changed state while cancelling; look again with `probe status`")


def set_budget(store: Store, campaign_id: str, max_cost: float):
    """A new max_cost for the campaign (`probe resume --max-cost`); returns the updated spec."""
    from probe.spec import CampaignSpec

    if max_cost <= 0:
        raise ProbeError(f"--max-cost must be above 0, not {max_cost:g}")
    spent = store.cost_total(campaign_id)
    if max_cost <= spent:
        raise ProbeError(f"--max-cost {max_cost:g}: campaign {campaign_id} has already spent ${spent:,.4f}; "
                         "give a budget above that")
    store.set_spec_fields(campaign_id, max_cost=max_cost)
    return CampaignSpec.model_validate(store.campaign(campaign_id).spec)


def prepare_resume(store: Store, campaign_id: str, retry_failed: bool = False) -> int:
    """Failed items back to pending (transient failures; all with retry_failed) and the campaign to running.
    Returns the number of items to run; raises when there is nothing to resume."""
    c = store.campaign(campaign_id)
    p = store.progress(campaign_id)
    reset = store.reset_failed(campaign_id, everything=retry_failed)
    todo = p.get("pending", 0) + reset
    if todo == 0:
        hint = (f"; {p['failed']} failed items had permanent errors: `probe resume {campaign_id} --retry-failed` "
                "runs them again") if p.get("failed") and not retry_failed else ""
        raise ProbeError(f"campaign {campaign_id} is {c.state}: every item is done or failed, nothing to resume{hint}")
    store.set_state(campaign_id, "running", None)
    return todo
