"""`probe prompts`: list and validate questionnaires and prompt sets."""

from __future__ import annotations

from typing import Annotated

import typer

from probe.cli.common import out

prompts_app = typer.Typer(help="List and validate questionnaires and refusal prompt sets.", no_args_is_help=True)


@prompts_app.command("validate")
def validate(files: Annotated[list[str], typer.Argument(help="Questionnaire .yaml or prompt-set .jsonl files.")]) -> None:
    """Check files; a bad one gets one line naming file, line and field, and a non-zero exit."""
    from probe import probesets, questionnaires

    for f in files:
        if f.endswith(".jsonl"):
            ps = probesets.load_file(f)
            out.print(f"ok {f}: prompt set '{ps.name}', {len(ps.prompts)} prompts")
        else:
            q = questionnaires.load_file(f)
            out.print(f"ok {f}: questionnaire '{q.name}', {len(q.questions)} questions")


@prompts_app.command("list")
def list_() -> None:
    """Shipped questionnaires and prompt sets."""
    from probe import probesets, questionnaires

    for name in questionnaires.available():
        out.print(f"survey   {name}: {len(questionnaires.load(name).questions)} questions")
    for name in probesets.available():
        out.print(f"refusals {name}: {len(probesets.load(name).prompts)} prompts")


def register(app: typer.Typer) -> None:
    app.add_typer(prompts_app, name="prompts")
