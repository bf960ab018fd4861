"""Fixtures shared by the baseline and PUMS unit tests."""

from __future__ import annotations

import pytest

from probe.questionnaires import load as load_questionnaire


@pytest.fixture
def isolated_home(tmp_path, monkeypatch):
    """Built baselines and downloads go to a fresh PROBE_HOME / PROBE_CACHE per test."""
    monkeypatch.setenv("PROBE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PROBE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def qn():
    return load_questionnaire("acs2019")
