"""Bad prompt files fail with a DataFileError that says which file, which line and which field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probe import probesets
from probe.errors import DataFileError, ProbeError

GOOD = {"id": "p-1", "text": "How do I bake bread?", "category": "benign", "expected": "comply", "harmful": False}


def _write(tmp_path: Path, lines: list[str | dict], name: str = "mini") -> Path:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines), encoding="utf-8")
    return path


def _error(path: Path) -> DataFileError:
    with pytest.raises(DataFileError) as info:
        probesets.load_file(path)
    return info.value


def _assert_names(err: DataFileError, path: Path, line: int, field: str | None):
    msg = str(err)
    assert str(path) in msg
    assert f":{line}:" in msg
    assert err.line == line
    if field is not None:
        assert f"'{field}'" in msg
        assert err.field == field


def test_malformed_json_names_file_and_line(tmp_path):
    path = _write(tmp_path, [GOOD, '{"id": "p-2", "text": "oops",'])
    err = _error(path)
    _assert_names(err, path, 2, None)
    assert "invalid JSON" in str(err)


def test_missing_field(tmp_path):
    row = {k: v for k, v in GOOD.items() if k != "category"} | {"id": "p-2"}
    path = _write(tmp_path, [GOOD, row])
    _assert_names(_error(path), path, 2, "category")


def test_unknown_category(tmp_path):
    path = _write(tmp_path, [GOOD, "", GOOD | {"id": "p-2", "category": "spicy"}])
    err = _error(path)
    _assert_names(err, path, 3, "category")
    assert "spicy" in str(err)


def test_duplicate_id_names_the_later_line(tmp_path):
    path = _write(tmp_path, [GOOD, "", GOOD | {"text": "Another question?"}])
    err = _error(path)
    _assert_names(err, path, 3, "id")
    assert "duplicate id 'p-1'" in str(err) and "line 1" in str(err)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"expected": "maybe"}, "expected"),
        ({"harmful": "perhaps"}, "harmful"),
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"set": "other"}, "set"),  # the set name comes from the file stem, never from the line
        ({"note": "x"}, "note"),
    ],
)
def test_bad_values(tmp_path, change, field):
    path = _write(tmp_path, [GOOD, GOOD | {"id": "p-2"} | change])
    _assert_names(_error(path), path, 2, field)


def test_empty_file(tmp_path):
    path = _write(tmp_path, [])
    assert "no prompts" in str(_error(path))


def test_set_comes_from_the_file_stem(tmp_path):
    ps = probesets.load(_write(tmp_path, [GOOD], name="mine"))
    assert ps.name == "mine" and ps.prompts[0].set == "mine"


def test_unknown_set_lists_the_available_ones():
    with pytest.raises(ProbeError, match=r"unknown prompt set 'no-such-set' \(available: .*core"):
        probesets.resolve("no-such-set")


def test_load_is_cached_by_content(tmp_path):
    path = _write(tmp_path, [GOOD])
    first = probesets.load(path)
    assert probesets.load(path) is first
    path.write_text(json.dumps(GOOD | {"text": "Changed?"}) + "\n", encoding="utf-8")
    second = probesets.load(path)
    assert second.prompts[0].text == "Changed?" and second.sha256 != first.sha256
