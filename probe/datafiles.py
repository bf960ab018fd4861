"""Load YAML and JSONL data files into pydantic models, with errors that name file, line and field."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from probe.errors import DataFileError

M = TypeVar("M", bound=BaseModel)


def file_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _node_line(node: yaml.Node | None, loc: tuple) -> int | None:
    """Follow a pydantic error location through the YAML node tree; return the deepest line found (1-based)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        else:
            nxt = None
        if nxt is None:
            break
        node, line = nxt, nxt.start_mark.line + 1
    return line


def _field(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def read_text(path: str | Path) -> str:
    """A data file's text, byte for byte (no newline translation: its sha256 is the file's)."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "no such file")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataFileError(path, f"not UTF-8 text (byte {e.start})") from None


def text_hash(text: str) -> str:
    """The sha256 of text as stored (UTF-8): equal to file_hash of the file read_text read it from."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_yaml(text: str, source: str | Path, model: type[M]) -> M:
    """Validate YAML text; errors name source (a file name), line and field."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise DataFileError(source, f"invalid YAML: {problem}", line=mark.line + 1 if mark else None) from None
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        raise DataFileError(source, _message(err), line=_node_line(node, err["loc"]),
                            field=_field(err["loc"])) from None


def load_yaml(path: str | Path, model: type[M]) -> M:
    return parse_yaml(read_text(path), path, model)


def _message(err: dict) -> str:
    if err["type"] == "string_type" and isinstance(err.get("input"), bool):  # YAML 1.1 reads Yes/No/On/Off as booleans
        return f"{err['msg']} (got {err['input']}: put the text in quotes, e.g. \"Yes\")"
    return err["msg"]


def _objects(lines, source: str | Path) -> list[tuple[int, dict]]:
    out = []
    for n, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            raise DataFileError(source, f"invalid JSON: {e.msg}", line=n) from None
        if not isinstance(data, dict):
            raise DataFileError(source, "expected a JSON object", line=n)
        out.append((n, data))
    return out


def jsonl_objects(text: str, source: str | Path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line of JSONL text; a bad line names source and line."""
    return _objects(io.StringIO(text, newline=None), source)  # the lines a file opened as text gives


def read_jsonl_objects(path: str | Path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line; a line that is not a JSON object names file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "no such file")
    with path.open(encoding="utf-8") as f:  # streamed: response files can be large
        return _objects(f, path)


def parse_jsonl(text: str, source: str | Path, model: type[M]) -> list[tuple[int, M]]:
    """(line number, record) per non-blank line of JSONL text, each validated; errors name source, line and field."""
    out = []
    for n, data in jsonl_objects(text, source):
        try:
            out.append((n, model.model_validate(data)))
        except ValidationError as e:
            err = e.errors()[0]
            raise DataFileError(source, err["msg"], line=n, field=_field(err["loc"])) from None
    return out


def load_jsonl(path: str | Path, model: type[M]) -> list[M]:
    return [row for _, row in parse_jsonl(read_text(path), path, model)]
