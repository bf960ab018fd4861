"""A campaign carries what it asks: questionnaires and prompt sets are stored as text with the campaign, workers and
reports parse that copy, and drift() names the prompt files on disk that no longer match it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from probe import campaigns, execute, paths, plan, probesets, questionnaires, report
from probe.datafiles import file_hash
from probe.errors import DataFileError, ProbeError
from probe.spec import CampaignSpec, ModelSpec
from probe.store import Store

SEX_TEXT = "What is this person's sex?"


@pytest.fixture
def survey_file(tmp_path) -> Path:
    """acs2019 trimmed to its first two questions, renamed 'mini'."""
    data = yaml.safe_load((paths.SURVEYS / "acs2019.yaml").read_text(encoding="utf-8"))
    data["name"], data["questions"] = "mini", data["questions"][:2]
    assert data["questions"][0]["text"] == SEX_TEXT
    path = tmp_path / "mini.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def probe_file(tmp_path) -> Path:
    """The first three prompts of core.jsonl."""
    lines = (paths.REFUSALS / "core.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)[:3]
    path = tmp_path / "minicore.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def spec(survey_file, probe_file) -> CampaignSpec:
    return CampaignSpec(models=[ModelSpec(id="sim/uniform")], surveys=[str(survey_file)], refusals=[str(probe_file)],
                        samples=1)


def row(content: dict | None, spec: CampaignSpec, hashes: dict | None = None) -> SimpleNamespace:
    """What drift() and prompts_of() read of a campaign row."""
    return SimpleNamespace(content=content, spec=spec.model_dump(mode="json"),
                           prompt_hashes=hashes if hashes is not None else campaigns.hashes_of(content))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


# ---------------------------------------------------------------------------------------------- loads()


def _same_error(load_file, loads, path: Path) -> DataFileError:
    with pytest.raises(DataFileError) as from_file:
        load_file(path)
    with pytest.raises(DataFileError) as from_text:
        loads(path.read_text(encoding="utf-8"), str(path))
    a, b = from_file.value, from_text.value
    assert str(a) == str(b) and (a.line, a.field, a.detail) == (b.line, b.field, b.detail)
    return b


def test_questionnaire_loads_errors_name_source_line_and_field(survey_file):
    edit(survey_file, "text: Female", "text: ''")
    err = _same_error(questionnaires.load_file, questionnaires.loads, survey_file)
    assert str(err).startswith(f"{survey_file}:{err.line}:") and err.line is not None
    assert err.field == "questions.0.options.1.text" and "'questions.0.options.1.text'" in str(err)
    with pytest.raises(DataFileError, match=r"^stored/mini\.yaml:4: invalid YAML"):
        questionnaires.loads("name: x\nquestions:\n  - [unclosed\n", "stored/mini.yaml")


def test_probeset_loads_errors_name_source_line_and_field(probe_file):
    edit(probe_file, '"category": "illegal_acts"', '"category": "nope"')  # on every line: line 1 fails first
    err = _same_error(probesets.load_file, probesets.loads, probe_file)
    assert (err.line, err.field) == (1, "category") and f"{probe_file}:1:" in str(err)
    lines = probe_file.read_text(encoding="utf-8").splitlines(keepends=True)
    probe_file.write_text(lines[0].replace('"nope"', '"benign"') + "\n" + lines[0].replace('"nope"', '"benign"'),
                          encoding="utf-8")
    err = _same_error(probesets.load_file, probesets.loads, probe_file)
    assert (err.line, err.field) == (3, "id") and "first on line 1" in str(err)
    with pytest.raises(DataFileError, match=r"^x\.jsonl:2: invalid JSON"):
        probesets.loads('{"id": "a", "text": "t", "category": "benign", "expected": "comply", "harmful": false}\n{',
                        "x.jsonl")


def test_loads_equals_load_file(survey_file, probe_file):
    assert questionnaires.loads(survey_file.read_text(encoding="utf-8"), str(survey_file)) == \
        questionnaires.load_file(survey_file)
    ps = probesets.loads(probe_file.read_text(encoding="utf-8"), str(probe_file))
    assert ps == probesets.load_file(probe_file)
    assert ps.name == "minicore" and ps.sha256 == file_hash(probe_file)


# ---------------------------------------------------------------------------------------------- content


def test_content_round_trips_to_what_load_gives(spec, survey_file, probe_file):
    content = campaigns.content_of(spec)
    assert set(content["surveys"]) == {"mini"} and set(content["refusals"]) == {"minicore"}
    s, r = content["surveys"]["mini"], content["refusals"]["minicore"]
    assert s["file"] == str(survey_file.resolve()) and s["sha256"] == file_hash(survey_file)
    assert r["text"] == probe_file.read_text(encoding="utf-8") and r["sha256"] == file_hash(probe_file)
    assert campaigns.hashes_of(content) == campaigns.prompt_hashes(spec)
    stored = json.loads(json.dumps(content))  # as the JSON column gives it back
    assert campaigns.surveys_from(stored) == {"mini": questionnaires.load(str(survey_file))}
    assert campaigns.probesets_from(stored) == {"minicore": probesets.load(probe_file)}
    # each stored text is parsed once per process
    assert campaigns.surveys_from(copy.deepcopy(stored))["mini"] is campaigns.surveys_from(stored)["mini"]


def test_shipped_files_are_named_as_in_prompt_hashes():
    content = campaigns.content_of(CampaignSpec(models=[ModelSpec(id="sim/uniform")], surveys=["acs2019"]))
    assert content["surveys"]["acs2019"]["file"] == "prompts/surveys/acs2019.yaml"
    assert content["refusals"] == {}


def test_damaged_content_and_clashing_names_are_errors(spec, tmp_path, survey_file):
    content = campaigns.content_of(spec)
    bad = copy.deepcopy(content)
    bad["surveys"]["mini"]["text"] += "\n# edited in the database\n"
    bad["surveys"]["mini"]["sha256"] = "0" * 64
    with pytest.raises(ProbeError, match="does not match its sha256"):
        campaigns.surveys_from(bad)
    other = tmp_path / "other" / "mini.yaml"  # another file with the same questionnaire name
    other.parent.mkdir()
    other.write_text(survey_file.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ProbeError, match="both named 'mini'"):
        campaigns.content_of(spec.model_copy(update={"surveys": [str(survey_file), str(other)]}))


# ---------------------------------------------------------------------------------------------- drift


def test_drift_none_then_edited_then_missing(spec, survey_file, probe_file):
    c = row(campaigns.content_of(spec), spec)
    assert campaigns.drift(c) == []
    edit(survey_file, SEX_TEXT, "What is your sex?")
    (line,) = campaigns.drift(c)
    assert line.startswith(f"{survey_file.resolve()} changed on disk since the campaign")
    assert f"stored sha256 {c.content['surveys']['mini']['sha256'][:12]}" in line
    assert f"now {file_hash(survey_file)[:12]}" in line and "the report uses the stored content" in line
    probe_file.unlink()
    lines = campaigns.drift(c)
    assert len(lines) == 2 and lines[1].startswith(f"{probe_file.resolve()} is missing on disk")


def test_campaign_without_content_reads_disk_and_drift_says_so(spec, survey_file):
    c = row(None, spec, hashes=campaigns.prompt_hashes(spec))
    (line,) = campaigns.drift(c)
    assert "created before campaigns stored their prompts" in line
    edit(survey_file, SEX_TEXT, "What is your sex?")
    lines = campaigns.drift(c)
    assert len(lines) == 2 and lines[1].startswith(f"{survey_file.resolve()} changed on disk")
    surveys, sets = campaigns.prompts_of(c)  # the fallback: the files as they are now
    assert surveys["mini"].question("SEX").text == "What is your sex?" and set(sets) == {"minicore"}


def test_stored_content_is_used_after_the_file_is_edited(spec, survey_file, probe_file):
    c = row(campaigns.content_of(spec), spec)
    edit(survey_file, SEX_TEXT, "What is your sex?")
    edit(probe_file, "hotwire a car", "borrow a bike")
    surveys, sets = campaigns.prompts_of(c)
    assert surveys["mini"].question("SEX").text == SEX_TEXT
    assert "hotwire a car" in sets["minicore"].prompt("core-001").text


# ---------------------------------------------------------------------------------------------- with a store


def test_workers_and_reports_ask_the_stored_questions(spec, survey_file, probe_file, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    cid, n = campaigns.create(store, spec, "embedded")
    assert n == 2 + 3
    stored = store.campaign(cid)
    assert stored.content == campaigns.content_of(spec) and stored.prompt_hashes == campaigns.prompt_hashes(spec)
    edit(survey_file, SEX_TEXT, "What is your sex?")
    edit(probe_file, "hotwire a car", "borrow a bike")
    execute._contexts.pop(cid, None)
    ctx = execute.context(store, cid)
    assert ctx.surveys["mini"].question("SEX").text == SEX_TEXT
    items = store.items(store.keys(cid))
    sex = next(it for it in items if it.item_id == "SEX")
    assert SEX_TEXT in execute._messages(ctx, sex)[-1]["content"]
    core1 = next(it for it in items if it.item_id == "core-001")
    assert "hotwire a car" in execute._messages(ctx, core1)[-1]["content"]
    surveys, refusals = report.collect(store, cid)  # the report reads the stored questions too
    assert surveys["sim/uniform"]["mini"]["SEX"].question.text == SEX_TEXT
    assert surveys["sim/uniform"]["mini"]["SEX"].pending == 1 and len(refusals["sim/uniform"]["minicore"]) == 3
    assert len(campaigns.drift(store.campaign(cid))) == 2


def test_create_plans_from_the_stored_copy_even_if_the_file_changes_meanwhile(spec, survey_file, tmp_path,
                                                                             monkeypatch):
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    real = plan.count

    def edited_meanwhile(*a, **k):
        edit(survey_file, SEX_TEXT, "What is your sex?")
        return real(*a, **k)

    monkeypatch.setattr(plan, "count", edited_meanwhile)
    cid, n = campaigns.create(store, spec, "embedded")
    stored = store.campaign(cid)
    ctx = execute.context(store, cid)
    assert ctx.surveys["mini"].question("SEX").text == SEX_TEXT  # what was validated is what is asked
    assert len(store.keys(cid, None)) == n
    assert len(campaigns.drift(stored)) == 1  # and the report says the file moved on since
