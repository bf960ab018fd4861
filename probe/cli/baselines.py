"""`probe baselines`: list, show and build population baselines (ACS PUMS microdata)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from probe.cli.common import err, out

baselines_app = typer.Typer(
    help="Population baselines: list and show them, or build one from ACS PUMS person files.", no_args_is_help=True
)

SurveyOpt = Annotated[str, typer.Option("--survey", help="Questionnaire the baseline is read against.")]


class Format(str, Enum):
    table = "table"
    json = "json"


@baselines_app.command("list")
def list_(survey: SurveyOpt = "acs2019") -> None:
    """Every baseline: built in, shipped, and built by you."""
    from rich.table import Table

    from probe import baselines

    t = Table("name", "origin", "variables", "partial", "title")
    for name in baselines.available():
        b = baselines.load(name, survey)
        full = sum(v.complete for v in b.variables.values())
        t.add_row(name, baselines.origin(name), str(full), str(len(b.variables) - full), b.title)
    out.print(t)


@baselines_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Baseline name (see `probe baselines list`) or a table's YAML path.")],
    survey: SurveyOpt = "acs2019",
    format: Annotated[Format, typer.Option("--format", "-f", help="table, or json: {VAR: {option_text: share}}.")] = Format.table,
) -> None:
    """Shares per question option, with each figure's universe and source."""
    from probe import baselines, questionnaires

    qn = questionnaires.load(survey)
    b = baselines.load(name, qn)
    if format is Format.json:
        typer.echo(json.dumps(baselines.to_text_json(b, qn), indent=2, ensure_ascii=False))
        return
    from rich.table import Table

    t = Table("variable", "option", "share", title=f"{b.name}: {b.title}" if b.title else b.name)
    sources: list[str] = []
    for q in qn.questions:
        v = b.variables.get(q.id)
        if v is None:
            t.add_row(q.id, "[dim]no baseline[/dim]", "", end_section=True)
            continue
        shares = b.shares_for(q.id) or v.shares
        rows = [(q.text_of(c), shares[c]) for c in q.codes if c in shares]
        rows += [(" + ".join(q.text_of(int(c)) for c in k.split("+")), s) for k, s in v.combined.items()]
        for i, (text, s) in enumerate(rows):
            t.add_row(q.id if i == 0 else "", text, f"{s:.4f}")
        if v.source not in sources:
            sources.append(v.source)
        meta = f"{v.universe}{'; ' + v.year if v.year else ''} [{sources.index(v.source) + 1}]"
        partial = " [yellow]partial: codes published only together[/yellow]" if v.combined else ""
        t.add_row("", f"[dim]{meta}[/dim]{partial}", "", end_section=True)
    out.print(t)
    for i, src in enumerate(sources, 1):
        out.print(f"[{i}] {src}", markup=False, highlight=False)
    if b.notes:
        out.print(b.notes, markup=False, highlight=False)


@baselines_app.command("build")
def build(
    pums_csv: Annotated[
        list[Path] | None, typer.Option("--pums-csv", help="ACS PUMS person CSV (or zip of CSVs); repeatable.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Name of the table(s) to write (default with --year: pumsYEAR).")] = None,
    year: Annotated[int | None, typer.Option("--year", help="Download the Census Bureau person files of this year (folktables' list) and build from them.")] = None,
    by_state: Annotated[bool, typer.Option("--by-state", help="Also one table per state (NAME_ST), Puerto Rico left out.")] = False,
    survey: SurveyOpt = "acs2019",
    column_map: Annotated[Path | None, typer.Option("--column-map", help="YAML {PUMS_VAR: column | {column, values, prefix}} for files not in PUMS layout.")] = None,
    chunksize: Annotated[int, typer.Option("--chunksize", min=1000, help="Rows per chunk.")] = 100_000,
    keep_microdata: Annotated[bool, typer.Option("--keep-microdata", help="Also keep the recoded individuals (the questionnaire's variables and PWGTP) as NAME.microdata.npz, for the signal and discriminator tests and sim/individuals=NAME.")] = False,
) -> None:
    """Build PWGTP-weighted shares from PUMS microdata, as the paper does, and save them under the data dir."""
    import yaml
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from probe import baselines, pums, questionnaires
    from probe.errors import ProbeError

    if not pums_csv and year is None:
        raise ProbeError("give --pums-csv FILE (one or more) or --year YEAR")
    if name is None:
        if pums_csv:
            raise ProbeError("--name is required with --pums-csv")
        name = f"pums{year}"
    cmap = None
    if column_map is not None:
        if not column_map.is_file():
            raise ProbeError(f"{column_map}: no such file")
        cmap = yaml.safe_load(column_map.read_text(encoding="utf-8"))
        if not isinstance(cmap, dict):
            raise ProbeError(f"{column_map}: a column map is a mapping of PUMS variable -> column")
    qn = questionnaires.load(survey)

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        files = list(pums_csv or [])
        if year is not None and not files:
            task = bar.add_task("download", total=None)

            def dl(done: int, total: int, label: str) -> None:
                bar.update(task, completed=done, total=total or None, description=f"download {label}")

            files = pums.download_pums(year, progress=dl)
            bar.remove_task(task)
        task = bar.add_task("read", total=None)

        def rd(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, description=f"read {label}")

        tables = pums.build_from_pums(
            files, qn, name, by_state=by_state, column_map=cmap, chunksize=chunksize, progress=rd, year=year,
            keep_microdata=keep_microdata,
        )
    where = baselines.user_dir()
    main = tables[0]
    out.print(
        f"built {main.name}: {len(main.variables)} of {len(qn.questions)} questions"
        + (f", and {len(tables) - 1} state tables ({tables[1].name} ...)" if len(tables) > 1 else "")
        + f"; saved in {where}"
    )
    if keep_microdata:
        from probe import microdata

        out.print(f"kept microdata {microdata.load(name).describe()}")
    if missing := [q.id for q in qn.questions if q.id not in main.variables]:
        out.print(f"not in the file(s): {', '.join(missing)}")


def register(app: typer.Typer) -> None:
    app.add_typer(baselines_app, name="baselines")
