"""Load YAML and JSONL data files into pydantic models, with errors that name file, line and field."""

from __future__ import annotations

import hashlib
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


def load_yaml(path: str | Path, model: type[M]) -> M:
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "no such file")
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise DataFileError(path, f"invalid YAML: {problem}", line=mark.line + 1 if mark else None) from None
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        raise DataFileError(path, _message(err), line=_node_line(node, err["loc"]), field=_field(err["loc"])) from None


def _message(err: dict) -> str:
    if err["type"] == "string_type" and isinstance(err.get("input"), bool):  # YAML 1.1 reads Yes/No/On/Off as booleans
        return f"{err['msg']} (got {err['input']}: put the text in quotes, e.g. \"Yes\")"
    return err["msg"]


def read_jsonl_objects(path: str | Path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line; a line that is not a JSON object names file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "no such file")
    out = []
    with path.open(encoding="utf-8") as f:
        for n, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as e:
                raise DataFileError(path, f"invalid JSON: {e.msg}", line=n) from None
            if not isinstance(data, dict):
                raise DataFileError(path, "expected a JSON object", line=n)
            out.append((n, data))
    return out


def load_jsonl(path: str | Path, model: type[M]) -> list[M]:
    out = []
    for n, data in read_jsonl_objects(path):
        try:
            out.append(model.model_validate(data))
        except ValidationError as e:
            err = e.errors()[0]
            raise DataFileError(path, err["msg"], line=n, field=_field(err["loc"])) from None
    return out
