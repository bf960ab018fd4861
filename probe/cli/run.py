"""`probe run`: plan a campaign, store it, run it in-process or on the fleet, print its id last."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from probe.cli.common import BrokerOpt, DbOpt, broker_url, db_url, err, quiet_logs

# probe.spec (pydantic, yaml) and rich.progress are imported where used: every `probe` command imports this module
# to register `run`, and `probe status` must start fast.

DEFAULT_MODEL = "local/smollm2-135m"


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=err, transient=False)


def run(
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help=f"LiteLLM model id; repeat for several (default {DEFAULT_MODEL}).")] = None,
    survey: Annotated[list[str] | None, typer.Option("--survey", help="Questionnaire name or YAML file (default acs2019 when no --refusals).")] = None,
    refusals: Annotated[list[str] | None, typer.Option("--refusals", help="Refusal prompt set name or JSONL file.")] = None,
    samples: Annotated[int, typer.Option(min=1, help="Samples per (model, item).")] = 10,
    seed: Annotated[int, typer.Option(help="Campaign seed: answer orders and model seeds derive from it.")] = 0,
    ordering: Annotated[str, typer.Option(help="random | fixed | reversed answer order.")] = "random",
    api_base: Annotated[str | None, typer.Option("--api-base", help="Base URL of an OpenAI-compatible server.")] = None,
    api_key_env: Annotated[str | None, typer.Option("--api-key-env", help="Environment variable whose key is sent to --api-base (otherwise a placeholder: no provider key goes to a custom host).")] = None,
    temperature: Annotated[float, typer.Option(min=0, max=2)] = 1.0,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=1)] = None,
    answer_mode: Annotated[str, typer.Option("--answer-mode", help="auto | logprobs | text.")] = "auto",
    mode: Annotated[str, typer.Option("--mode", help="questions (each question alone) | individuals (each sample fills in the whole questionnaire in one conversation, with its skip rules).")] = "questions",
    template: Annotated[str, typer.Option(help="Survey prompt template (paper, acs-context, household, interview, no-system).")] = "paper",
    baseline: Annotated[list[str] | None, typer.Option("--baseline", help="Population baselines the report compares with (default: uniform and us_2019).")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight (per task on the fleet).")] = 32,
    timeout: Annotated[float, typer.Option(help="Seconds per model call before it is retried.")] = 60.0,
    rpm: Annotated[float | None, typer.Option("--rpm", help="Requests per minute per model, across the whole fleet.")] = None,
    tpm: Annotated[float | None, typer.Option("--tpm", help="Tokens per minute per model, across the whole fleet.")] = None,
    max_concurrency: Annotated[int | None, typer.Option("--max-concurrency", min=1, help="Calls in flight per model, across the whole fleet.")] = None,
    price_in: Annotated[float | None, typer.Option("--price-in", help="USD per million input tokens (models LiteLLM does not price).")] = None,
    price_out: Annotated[float | None, typer.Option("--price-out", help="USD per million output tokens.")] = None,
    max_cost: Annotated[float | None, typer.Option("--max-cost", help="Budget in USD: no call starts once committed spend would pass it; the campaign pauses.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Make every call; serve nothing from the response cache.")] = False,
    spec_file: Annotated[str | None, typer.Option("--spec", help="A campaign spec YAML file instead of flags.")] = None,
    db: DbOpt = None,
    broker: BrokerOpt = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="With a broker: enqueue and return at once.")] = False,
    processes: Annotated[int | None, typer.Option(min=1, help="Embedded: processes sharing the work (default 2 for API models, 1 for local).")] = None,
    target_ci: Annotated[float | None, typer.Option("--target-ci", help="Sample in rounds until every cell's 95% anytime-valid interval has this half-width (--samples: the first round per cell).")] = None,
    max_samples: Annotated[int | None, typer.Option("--max-samples", min=1, help="With --target-ci: the most samples per cell (default 400).")] = None,
) -> None:
    """Run a survey and/or refusal campaign; prints the campaign id as the last line of stdout."""
    from pydantic import ValidationError

    from probe import campaigns, dispatch
    from probe.spec import DEFAULT_BASELINES, CampaignSpec, ModelSpec, load_spec_file
    from probe.errors import ProbeError
    from probe.render import TEMPLATES
    from probe.store import open_store

    quiet_logs()
    if spec_file:
        spec = load_spec_file(spec_file)
        if max_cost is not None or no_cache:  # these two also apply to a spec file
            spec = spec.model_copy(update={"max_cost": max_cost or spec.max_cost, "cache": spec.cache and not no_cache})
    else:
        if template not in TEMPLATES:
            raise ProbeError(f"unknown template '{template}' (available: {', '.join(TEMPLATES)})")
        try:
            spec = CampaignSpec(
                models=[ModelSpec(id=m, api_base=api_base, api_key_env=api_key_env, temperature=temperature,
                                  max_tokens=max_tokens, rpm=rpm, tpm=tpm, max_concurrency=max_concurrency,
                                  price_in=price_in, price_out=price_out)
                        for m in (model or [DEFAULT_MODEL])],
                surveys=survey or ([] if refusals else ["acs2019"]), refusals=refusals or [], samples=samples,
                seed=seed, ordering=ordering, template=template, answer_mode=answer_mode, survey_mode=mode,
                baselines=baseline or list(DEFAULT_BASELINES), concurrency=concurrency, timeout_s=timeout,
                target_ci=target_ci, max_samples=max_samples,
                max_cost=max_cost, cache=not no_cache,
            )
        except ValidationError as e:
            x = e.errors()[0]
            flag = {"survey_mode": "mode"}.get(".".join(map(str, x["loc"])), ".".join(map(str, x["loc"])))
            if not flag:  # a rule across flags: its message names them
                raise ProbeError(x["msg"].removeprefix("Value error, ")) from None
            raise ProbeError(f"--{flag.replace('_', '-')}: {x['msg']}") from None
    broker = broker_url(broker)
    if broker:
        dispatch.check_broker(broker)  # before anything is written
        dispatch.check_timeouts(spec)
    if spec.target_ci and no_wait and broker:
        raise ProbeError("--target-ci runs rounds that need the waiting client: drop --no-wait")
    store = open_store(db_url(db))
    if spec.target_ci:
        from probe import adaptive_run

        cid, n = adaptive_run.create(store, spec, "fleet" if broker else "embedded")
    else:
        cid, n = campaigns.create(store, spec, "fleet" if broker else "embedded")
    err.print(f"campaign {cid}: {n} items ({len(spec.models)} model(s), {spec.samples} sample(s) each)")
    drive(store, cid, spec, broker, no_wait=no_wait, processes=processes)


def drive(store, cid: str, spec: CampaignSpec, broker: str | None, no_wait: bool = False,
          processes: int | None = None) -> None:
    """Run a campaign's pending items embedded or on the fleet, showing progress; print its id
    last. Ctrl-C leaves an embedded campaign paused, with the `probe resume` line to continue it (a fleet one
    goes on on the workers). Used by run and resume."""
    from probe import dispatch
    from probe.errors import ProbeError

    n = store.campaign(cid).n_items
    store.set_state(cid, "running", None, mode="fleet" if broker else "embedded")
    enqueued = False

    def run_pending() -> None:
        nonlocal enqueued, n
        n = store.campaign(cid).n_items
        if broker:
            tasks = dispatch.enqueue(broker, cid, store.iter_keys(cid, "pending"),
                                     spec.concurrency, store=store, n_waves=dispatch.waves(spec))
            enqueued = True
            err.print(f"enqueued {tasks} tasks on {dispatch._redact(broker)}")
            if not no_wait:
                _wait_fleet(store, cid, broker, n)
        else:
            from probe import limits, models

            # limits and a budget are held in this process's limiter: one process keeps them exact
            governed = spec.max_cost is not None or any(limits.has_limits(m) for m in spec.models)
            procs = 1 if governed else processes or (
                1 if any(models.is_local(m.id) for m in spec.models) else min(2, os.cpu_count() or 1))
            with _progress() as prog:
                t = prog.add_task("embedded", total=n, failed=0)
                dispatch.run_embedded(store, cid, spec.concurrency,
                                      lambda d, f: prog.update(t, completed=d + f, failed=f), processes=procs)

    try:
        run_pending()
        if spec.target_ci and not no_wait:  # sample until precise: rounds only for the cells still too wide
            from probe import adaptive_run

            res = adaptive_run.run_rounds(store, cid, spec, run_pending, err.print)
            n = store.campaign(cid).n_items
            short = len(res["cells"]) - res["cells_meeting_target"]
            err.print(f"{res['cells_meeting_target']} of {len(res['cells'])} cells within +/-{spec.target_ci:g} after "
                      f"{res['calls']} calls" + (f"; {short} stopped at --max-samples {res['max_samples']}" if short else ""))
    except KeyboardInterrupt:
        if enqueued:  # the fleet goes on with it; only the waiting stopped
            err.print(f"stopped waiting: campaign {cid} goes on on the fleet; follow it with: probe status {cid} "
                      f"--watch (stop it with: probe cancel {cid})")
        elif broker:  # part of it was never enqueued: the watchdog (probe beat) or a resume sends the rest
            err.print(f"interrupted while enqueuing: continue it with: probe resume {cid} --broker "
                      f"{dispatch._redact(broker)}")
        else:
            store.set_state(cid, "paused", "interrupted (Ctrl-C)", only_from=("running",))
            err.print(f"interrupted: campaign {cid} is paused; continue it with: probe resume {cid}")
        print(cid)
        raise SystemExit(130) from None
    except Exception as e:
        if not isinstance(e, ProbeError) and not enqueued:  # a fleet campaign goes on whatever befell its client
            store.set_state(cid, "failed", f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}",
                            only_from=("running",))
            err.print(f"[red]campaign {cid} failed: {type(e).__name__}: {e}[/]; after fixing the cause: "
                      f"probe resume {cid}", highlight=False)
        raise
    p = store.progress(cid)
    state = store.state(cid)
    print(cid)
    if state in ("cancelled", "paused"):
        reason = store.campaign(cid).state_reason
        err.print(f"campaign {cid} is {state}{f' ({reason})' if reason else ''}; `probe resume {cid}` continues it",
                  highlight=False)
        return
    if p.get("failed") == n:
        raise ProbeError(f"all {n} items of campaign {cid} failed, e.g. {store.first_error(cid)}")
    if p.get("failed"):
        err.print(f"[yellow]{p['failed']} of {n} items failed; `probe status {cid}` groups their errors[/]")


def _wait_fleet(store, cid: str, broker: str, n: int) -> None:
    from probe import dispatch

    if dispatch.workers_alive(broker) == 0:
        err.print("[yellow]no worker answered yet; items wait in the queue until `probe worker` runs[/]")

    def stalled(seconds: float) -> None:
        alive = dispatch.workers_alive(broker)
        who = (f"{alive} worker(s) answer but none stored a result" if alive else "no worker answers")
        err.print(f"[yellow]no progress on campaign {cid} for {seconds:.0f} s: {who}. Start one with "
                  f"`probe worker --broker {dispatch._redact(broker)} --db <this store>`; if its messages were lost "
                  f"(Redis restarted), `probe beat` heals that, or `probe resume {cid}`[/]", highlight=False)

    with _progress() as prog:
        t = prog.add_task("fleet", total=n, failed=0)
        dispatch.wait(store, cid, lambda d, f, tot: prog.update(t, completed=d + f, failed=f), on_stall=stalled)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
