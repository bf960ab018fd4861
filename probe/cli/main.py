"""The `probe` command: one Typer sub-app or command group per file in probe/cli/, registered here explicitly."""

from __future__ import annotations

import importlib
import sys

import typer

from probe.errors import ProbeError

app = typer.Typer(
    name="probe",
    help="Survey and refusal-probe language models, at fleet scale.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module defines register(app); kept as an explicit list (DESIGN style 4).
COMMAND_MODULES = [
    "probe.cli.run",
    "probe.cli.report",
    "probe.cli.worker",
    "probe.cli.prompts",
    "probe.cli.baselines",
    "probe.cli.classify",
    "probe.cli.classifier",
    "probe.cli.label",
    "probe.cli.compare",
    "probe.cli.campaigns",
    "probe.cli.db",
    "probe.cli.beat",
    "probe.cli.audit",
    "probe.cli.cache",
]

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    try:
        app()
    except ProbeError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
