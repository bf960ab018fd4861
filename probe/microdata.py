"""Census microdata kept beside a built baseline: the recoded individuals (one row per PUMS person record, one column
per questionnaire variable, 0 = blank / not applicable) and their PWGTP weights, for the whole-questionnaire tests
(probe.individual_tests) and the row-drawing simulator (`sim/individuals=NAME`).

Written by `probe baselines build ... --keep-microdata` as NAME.microdata.npz in the baselines folder: compressed
numpy arrays load in a fraction of a second even for the 3 million rows of a national year, where a CSV would take
a pass over text. `meta` records the source files (with their sha256), the row count and the recodes' origin.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from probe.errors import ProbeError

SUFFIX = ".microdata.npz"


@dataclass(frozen=True)
class Microdata:
    name: str
    variables: list[str]
    codes: np.ndarray  # rows x variables, int8, 0 = blank / not applicable
    weights: np.ndarray  # PWGTP per row
    meta: dict

    def column(self, var: str) -> np.ndarray:
        return self.codes[:, self.variables.index(var)]

    def describe(self) -> str:
        return f"{self.name}: {len(self.weights):,} census records, {len(self.variables)} variables ({self.meta.get('source', '')})"


def folder() -> Path:
    from probe import baselines

    return baselines.user_dir()


def path_for(name: str, directory: Path | None = None) -> Path:
    return (directory or folder()) / f"{name}{SUFFIX}"


def exists(name: str) -> bool:
    return path_for(name).is_file()


def available() -> list[str]:
    d = folder()
    return sorted(p.name[: -len(SUFFIX)] for p in d.glob(f"*{SUFFIX}")) if d.is_dir() else []


def save(name: str, variables: list[str], codes: np.ndarray, weights: np.ndarray, meta: dict,
         directory: Path | None = None) -> Path:
    """Write atomically (a temporary file renamed), so a reader never sees half a table."""
    codes = np.nan_to_num(np.asarray(codes, dtype=float), nan=0.0)
    if codes.shape != (len(weights), len(variables)):
        raise ValueError(f"codes {codes.shape} do not match {len(weights)} weights x {len(variables)} variables")
    p = path_for(name, directory)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp.npz")
    np.savez_compressed(tmp, codes=codes.astype(np.int8), weights=np.asarray(weights, dtype=np.float64),
                        variables=np.array(variables), meta=np.array(json.dumps(meta)))
    tmp.replace(p)
    load_path.cache_clear()
    return p


@lru_cache(maxsize=8)
def load_path(path: str, mtime: float) -> Microdata:
    with np.load(path, allow_pickle=False) as z:
        name = Path(path).name[: -len(SUFFIX)]
        return Microdata(name, [str(v) for v in z["variables"]], z["codes"], z["weights"], json.loads(str(z["meta"])))


def load(name: str) -> Microdata:
    p = Path(name) if name.endswith(SUFFIX) else path_for(name)
    if not p.is_file():
        raise ProbeError(f"no microdata '{name}' (build it with: probe baselines build ... --name {name} "
                         f"--keep-microdata; available: {', '.join(available()) or 'none'})")
    return load_path(str(p), p.stat().st_mtime)
