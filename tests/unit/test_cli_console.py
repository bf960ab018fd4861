"""The CLI's consoles follow COLUMNS at each print, not its value when the CLI was first imported."""

from __future__ import annotations

from probe.cli import common


def test_console_width_follows_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = common._console()  # built while COLUMNS=200, as `common.out` is when the CLI is imported then
    monkeypatch.setenv("COLUMNS", "250")
    assert out.width == 250
    monkeypatch.setenv("COLUMNS", "90")
    assert out.width == 90
