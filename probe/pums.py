"""Building population baselines from ACS PUMS microdata, and downloading the Census Bureau's person files.

Building follows the paper (Dominguez-Olmedo et al., process_acs.py + load_acs_census_responses):
right-closed bins per question, PWGTP-weighted shares, blanks dropped per variable except `recode.missing`
(FER: blank counts as "No"), and the paper's census skip rules (PAPER_CENSUS_MASKS). The all-rows table keeps
every row of the files (the paper's includes Puerto Rico); the per-state tables leave out ST 72 as the paper does.
`build_from_pums(..., by_state=True)` writes one more table per state, named NAME_ST (e.g. mybuild_06). Files not
in PUMS layout are read through a column map (ColumnSpec per PUMS variable).

`download_pums` fetches the person-file zips folktables uses into cache_dir()/pums/YEAR/. The tables themselves
(the Baseline model, loading, saving) live in probe.baselines.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
import socket
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from probe import paths
from probe.baselines import UNIFORM, Baseline, VariableBaseline, as_questionnaire, save
from probe.errors import ProbeError
from probe.questionnaires import Question, Questionnaire

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]  # (done, total, label); bytes of CSV text or of a download

PUERTO_RICO = 72
NA_TOKENS = frozenset({"", " ", "N", "NA", "NaN", "nan", "."})
# The paper's census skip rules (process_acs.py) are the questionnaire's `ask_when` rules of the questions marked
# `census_mask` (SCH, SCHLR, LANX, ENG, MAR, FER in acs2019): where the rule fails, the variable is blanked. (Its MIL
# rule, `dataset.loc[AGER >= 3, 'MIL'].replace(nan, 4, inplace=True)`, changes a copy and so does nothing: blank MIL
# is dropped, as in the paper's numbers.)


def census_masks(plan: Sequence[Question]) -> list[tuple[str, dict[str, list[int]]]]:
    """(variable, the conditions it needs) for the plan's questions marked census_mask, in form order; conditions
    on variables not in the files are left out (they cannot be checked)."""
    ids = {q.id for q in plan}
    out = []
    for q in plan:
        if q.census_mask and q.ask_when:
            conds = {v: c for v, c in q.ask_when.items() if v in ids}
            if conds:
                out.append((q.id, conds))
    return out


def apply_masks(codes: dict[str, np.ndarray], masks: list[tuple[str, dict[str, list[int]]]]) -> None:
    """Blank (NaN) each masked variable where a condition variable has a code outside its rule, as the paper's
    `dataset.loc[AGER == 1, ...] = nan`: a blank condition variable says nothing and masks nothing."""
    for target, conds in masks:
        skip = np.zeros(len(codes[target]), dtype=bool)
        for var, allowed in conds.items():
            skip |= ~np.isnan(codes[var]) & ~np.isin(codes[var], allowed)
        codes[target][skip] = np.nan


# The files the paper's folktables (ACSDataSource, 1-Year, person) downloads: one zip per state in its
# state_list, which has the 50 states and Puerto Rico but not DC.
PUMS_BASE_URL = "https://www2.census.gov/programs-surveys/acs/data/pums/{year}/1-Year"
PUMS_FILE = "csv_p{state}.zip"
FOLKTABLES_STATES = (
    "al ak az ar ca co ct de fl ga hi id il in ia ks ky la me md ma mi mn ms mo mt ne nv nh nj nm ny nc nd oh ok "
    "or pa ri sc sd tn tx ut vt va wa wv wi wy pr"
).split()


# ------------------------------------------------------------------------------------ building from PUMS


class ColumnSpec(BaseModel):
    """Where a PUMS variable comes from in a non-PUMS file: a column, a value recode, a leading-characters cut."""

    model_config = ConfigDict(extra="forbid")
    column: str
    values: dict[str, float | None] = {}  # source text -> PUMS value (None = blank); unlisted values pass through
    prefix: int | None = Field(default=None, ge=1)  # keep the first N characters (ST from PUMA "06-07502")

    @field_validator("values", mode="before")
    @classmethod
    def _keys(cls, v):
        return {_canon(str(k)): x for k, x in (v or {}).items()}


ColumnMap = Mapping[str, "str | ColumnSpec | Mapping"]


def _canon(text: str) -> str:
    t = text.strip()
    try:
        f = float(t)
    except ValueError:
        return t
    return str(int(f)) if f.is_integer() else t


def _specs(column_map: ColumnMap | None) -> dict[str, ColumnSpec]:
    out = {}
    for var, spec in (column_map or {}).items():
        out[var] = ColumnSpec(column=spec) if isinstance(spec, str) else ColumnSpec.model_validate(spec)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _members(path: Path) -> list[tuple[str, int, Callable[[], io.BufferedIOBase]]]:
    """(label, size, opener) for each CSV in a .csv or .zip file."""
    if not path.is_file():
        raise ProbeError(f"{path}: no such file")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if i.filename.lower().endswith(".csv")]
        if not infos:
            raise ProbeError(f"{path}: the zip holds no .csv file")
        return [(f"{path.name}:{i.filename}", i.file_size, lambda i=i: _open_member(path, i.filename)) for i in infos]
    return [(path.name, path.stat().st_size, lambda: path.open("rb"))]


def _open_member(path: Path, member: str) -> io.BufferedIOBase:
    zf = zipfile.ZipFile(path)
    f = zf.open(member)
    zf.close()  # the open member keeps the file until it is closed
    return f


def _header(path: Path) -> list[list[str]]:
    heads = []
    for label, _, opener in _members(path):
        with opener() as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            try:
                heads.append([h.strip() for h in next(csv.reader(text))])
            except (StopIteration, UnicodeDecodeError, csv.Error):
                raise ProbeError(f"{path}: not a CSV file with a header row") from None
    return heads


def _chunks(path: Path, chunksize: int, wanted: dict[str, ColumnSpec | None]
            ) -> Iterator[tuple[str, dict[str, np.ndarray], int, int]]:
    """(label, {PUMS var: float array, NaN = blank}, rows, bytes read so far in this member) per chunk."""
    names = list(wanted)
    for label, _, opener in _members(path):
        with opener() as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            reader = csv.reader(text)
            try:
                header = [h.strip() for h in next(reader)]
                idx = [header.index(wanted[v].column if wanted[v] else v) for v in names]
                get = itemgetter(*idx, idx[0])  # always a tuple, also for one column
                line, rows = 2, []
                for row in reader:
                    try:
                        rows.append(get(row))
                    except IndexError:
                        raise ProbeError(
                            f"{path}:{reader.line_num}: row has {len(row)} fields, header has {len(header)}"
                        ) from None
                    if len(rows) >= chunksize:
                        yield label, _parse_rows(path, line, header, idx, names, rows, wanted), len(rows), raw.tell()
                        line, rows = line + len(rows), []
                if rows:
                    yield label, _parse_rows(path, line, header, idx, names, rows, wanted), len(rows), raw.tell()
            except (UnicodeDecodeError, csv.Error) as e:
                raise ProbeError(f"{path}: not a readable CSV file ({e})") from None


def _parse_rows(path, line0, header, idx, names, rows, wanted) -> dict[str, np.ndarray]:
    cols = list(zip(*rows))
    return {v: _parse(path, line0, header[i], list(cols[j]), wanted[v]) for j, (v, i) in enumerate(zip(names, idx))}


def _parse(path: Path, line0: int, col: str, texts: list[str], spec: ColumnSpec | None) -> np.ndarray:
    if spec and spec.prefix:
        texts = [t.strip()[: spec.prefix] for t in texts]
    if spec and spec.values:
        mapped = [spec.values.get(_canon(t), t) for t in texts]
        texts = ["" if m is None else str(m) for m in mapped]
    texts = ["nan" if t in NA_TOKENS else t for t in texts]
    try:
        return np.array(texts, dtype=float)
    except ValueError:
        bad = next(n for n, t in enumerate(texts) if not _is_number(t))
        raise ProbeError(f"{path}:{line0 + bad}: column {col}: '{texts[bad]}' is not a number") from None


def _is_number(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


def _recode(values: np.ndarray, q: Question) -> tuple[np.ndarray, int]:
    """Option codes (float, NaN = no answer) and the number of non-blank values that match no option."""
    r = q.recode
    if r.bin_edges is not None:
        edges = np.asarray(r.bin_edges, dtype=float)
        idx = np.searchsorted(edges, values, side="left") - 1  # right-closed: edges[i] < v <= edges[i+1]
        ok = (idx >= 0) & (idx < len(r.labels)) & ~np.isnan(values)
        codes = np.where(ok, np.asarray(r.labels, dtype=float)[np.clip(idx, 0, len(r.labels) - 1)], np.nan)
    else:
        ok = np.isin(values, q.codes)
        codes = np.where(ok, values, np.nan)
    return codes, int(np.sum(~ok & ~np.isnan(values)))


def _lookup(q: Question) -> tuple[int, np.ndarray]:
    """(lowest code, array mapping code - lowest -> form position)."""
    lo, hi = min(q.codes), max(q.codes)
    table = np.full(hi - lo + 1, -1, dtype=np.int64)
    for i, c in enumerate(q.codes):
        table[c - lo] = i
    return lo, table


def _universe(q: Question, where: str, masks: list[str]) -> str:
    r = q.recode
    u = f"{where} with {r.pums_var} not blank" if r.missing is None else where
    if masks and r.missing is None:
        u += f", excluding {' or '.join(masks)} (the paper's census skip rule)"
    u += ", PWGTP-weighted"
    if r.missing is not None:
        also = f" and persons with {' or '.join(masks)}" if masks else ""
        u += f"; blank {r.pums_var}{also} counted as code {r.missing} ({q.text_of(r.missing)}), as the paper"
    return u


def build_from_pums(
    csv_paths: Sequence[str | Path],
    questionnaire: Questionnaire | str,
    name: str,
    by_state: bool = False,
    column_map: ColumnMap | None = None,
    chunksize: int = 100_000,
    progress: Progress | None = None,
    *,
    year: int | None = None,
    save_to: Path | None | bool = None,
    keep_microdata: bool = False,
) -> list[Baseline]:
    """PWGTP-weighted option shares from ACS PUMS person CSVs (.csv, or .zip holding them), streamed in chunks.

    Returns the all-rows table first, then (by_state) one table per ST, Puerto Rico left out, named NAME_ST.
    Questions whose PUMS variable is absent from the files are skipped. The tables are saved to
    data_dir()/baselines/ unless save_to=False (or to the folder save_to names). keep_microdata also saves the
    recoded individuals (the plan's variables, blank = 0, before any `recode.missing` fill) with their PWGTP beside
    the all-rows table as NAME.microdata.npz (probe.microdata).
    """
    qn = as_questionnaire(questionnaire)
    if name == UNIFORM or (paths.BASELINES / f"{name}.yaml").exists():
        raise ProbeError(f"baseline name '{name}' is taken by a shipped or built-in table; choose another --name")
    if not re.match(r"^[a-z0-9_\-]+$", name):
        raise ProbeError(f"baseline name '{name}' must be lowercase letters, digits, '_' or '-'")
    files = [Path(p) for p in csv_paths]
    if not files:
        raise ProbeError("no PUMS file given")
    specs = _specs(column_map)
    heads = {f: _header(f) for f in files}

    def cols_of(f: Path, var: str) -> bool:
        col = specs[var].column if var in specs else var
        return all(col in h for h in heads[f])

    def has(var: str) -> bool:
        return all(cols_of(f, var) for f in files)

    for f in files:
        if not cols_of(f, "PWGTP"):
            raise ProbeError(f"{f}: not a PUMS person file: no PWGTP (person weight) column")
        if by_state and not cols_of(f, "ST"):
            raise ProbeError(f"{f}: no ST column for --by-state (map one with a column map, e.g. from PUMA)")
    plan = [q for q in qn.questions if q.recode is not None and has(q.recode.pums_var)]
    if not plan:
        wanted = ", ".join(q.recode.pums_var for q in qn.questions if q.recode)
        raise ProbeError(f"{files[0]}: none of the PUMS variables {qn.name} reads ({wanted}) is in the file")
    if bad_missing := [q.id for q in plan if q.recode.missing is not None and q.recode.missing not in q.codes]:
        raise ProbeError(f"{qn.name}: recode.missing of {', '.join(bad_missing)} is not an option code")
    if skipped := [q.id for q in qn.questions if q not in plan]:
        log.info("variables not in the PUMS file(s), skipped: %s", ", ".join(skipped))
    masks = census_masks(plan)
    by_id = {q.id: q for q in plan}
    kept_codes: list[np.ndarray] = []
    kept_weights: list[np.ndarray] = []
    needed = {q.recode.pums_var for q in plan} | {"PWGTP"} | ({"ST"} if by_state else set())

    k = {q.id: len(q.codes) for q in plan}
    lut = {q.id: _lookup(q) for q in plan}
    sums: dict[int | None, dict[str, np.ndarray]] = {}
    counts: dict[int | None, dict[str, np.ndarray]] = {}
    outside = dict.fromkeys(k, 0)
    total = sum(size for f in files for _, size, _ in _members(f))
    done_before = 0

    def add(group, qid, p, w):
        s = sums.setdefault(group, {x: np.zeros(n) for x, n in k.items()})
        c = counts.setdefault(group, {x: np.zeros(n, dtype=np.int64) for x, n in k.items()})
        s[qid] += np.bincount(p, weights=w, minlength=k[qid])
        c[qid] += np.bincount(p, minlength=k[qid])

    def add_states(st, qid, p, w):
        keep = ~np.isnan(st) & (st != PUERTO_RICO)
        if not keep.any():
            return
        groups, inv = np.unique(st[keep].astype(int), return_inverse=True)
        flat = inv * k[qid] + p[keep]
        n = len(groups) * k[qid]
        ws = np.bincount(flat, weights=w[keep], minlength=n).reshape(len(groups), k[qid])
        cs = np.bincount(flat, minlength=n).reshape(len(groups), k[qid])
        for j, g in enumerate(groups.tolist()):
            sums.setdefault(g, {x: np.zeros(m) for x, m in k.items()})[qid] += ws[j]
            counts.setdefault(g, {x: np.zeros(m, dtype=np.int64) for x, m in k.items()})[qid] += cs[j]

    for f in files:
        last_label, last_pos = None, 0
        line0 = 2
        for label, cols, n_rows, at in _chunks(f, chunksize, {v: specs.get(v) for v in sorted(needed)}):
            if label != last_label:
                done_before += last_pos
                last_label, last_pos, line0 = label, 0, 2
            w = cols["PWGTP"]
            if np.isnan(w).any():
                raise ProbeError(f"{f}:{line0 + int(np.argmax(np.isnan(w)))}: PWGTP is blank")
            codes = {}
            for q in plan:
                codes[q.id], n_out = _recode(cols[q.recode.pums_var], q)
                outside[q.id] += n_out
            apply_masks(codes, masks)
            if keep_microdata:
                kept_codes.append(np.column_stack([codes[q.id] for q in plan]))
                kept_weights.append(w)
            st = cols.get("ST")
            for q in plan:
                c = codes[q.id]
                if q.recode.missing is not None:
                    c = np.where(np.isnan(c), q.recode.missing, c)
                ok = ~np.isnan(c)
                lo, table = lut[q.id]
                p = table[c[ok].astype(np.int64) - lo]
                add(None, q.id, p, w[ok])
                if st is not None:
                    add_states(st[ok], q.id, p, w[ok])
            last_pos, line0 = at, line0 + n_rows
            if progress:
                progress(min(done_before + at, total), total, label)
        done_before += last_pos

    if None not in sums:
        raise ProbeError(f"{files[0]}: no person records" + (" in any of the files" if len(files) > 1 else ""))
    source = "PUMS file(s): " + ", ".join(f"{f.name} (sha256 {_sha256(f)})" for f in files)
    notes = ["Built with probe.pums.build_from_pums, the paper's method (process_acs.py, "
             "load_acs_census_responses): right-closed bins, PWGTP-weighted, blanks dropped per variable except "
             "FER (blank = No), the questionnaire's skip rules blanking "
             + (", ".join(f"{t} unless {' and '.join(f'{v} in {c}' for v, c in cs.items())}" for t, cs in masks)
                or "nothing") + ". Blank MIL is dropped (the paper's MIL fill-in is a no-op). PINCP without ADJINC. "
             "The all-rows table keeps every row (Puerto Rico too, as the paper's national figures); the state "
             "tables leave out ST 72."]
    if "COWR" in {q.id for q in plan}:
        notes.append("COWR takes PUMS COW as is, as the paper: PUMS codes 5-9 (federal employee, self-employed "
                     "not incorporated, incorporated, unpaid family worker, not worked in 5 years) land on options "
                     "5-9 of the form, whose meanings differ.")
    if specs:
        notes.append("Column map: " + "; ".join(
            f"{v} <- {s.column}" + (f" first {s.prefix} chars" if s.prefix else "")
            + (f" values {s.values}" if s.values else "") for v, s in specs.items()) + ".")
    if bad := {q: n for q, n in outside.items() if n}:
        notes.append(f"Values matching no option, dropped (records): {bad}.")
    if skipped:
        notes.append(f"Not in the file(s): {', '.join(skipped)}.")

    tables = []
    for group in [None, *sorted(g for g in sums if g is not None)]:
        where = "persons in the PUMS file(s)" if group is None else f"persons with ST={group:02d} in the PUMS file(s)"
        variables = {}
        for q in plan:
            s, c = sums[group][q.id], counts[group][q.id]
            if s.sum() <= 0:
                continue
            q_masks = [" or ".join(f"{v} in {{{','.join(map(str, sorted(set(by_id[v].codes) - set(c))))}}}"
                                   for v, c in cs.items()) for t, cs in masks if t == q.id]
            variables[q.id] = VariableBaseline(
                universe=_universe(q, where, q_masks), source=source,
                year=f"ACS {year} 1-year PUMS" if year else "",
                shares={code: float(s[i] / s.sum()) for i, code in enumerate(q.codes)},
                n_records=int(c.sum()), weight_sum=float(s.sum()),
            )
        tables.append(Baseline(
            name=name if group is None else f"{name}_{group:02d}",
            title=f"PUMS build '{name}'" + ("" if group is None else f", state {group:02d}"),
            year=year, notes=" ".join(notes), variables=variables,
        ))
    if save_to is not False:
        folder = None if save_to in (None, True) else Path(save_to)
        for t in tables:
            save(t, folder)
        if keep_microdata:
            from probe import microdata

            microdata.save(name, [q.id for q in plan], np.concatenate(kept_codes), np.concatenate(kept_weights),
                           {"source": source, "year": year, "questionnaire": qn.name, "notes": notes[0]}, folder)
    return tables


# ------------------------------------------------------------------------------------------- download


def pums_files() -> list[str]:
    return [PUMS_FILE.format(state=s) for s in FOLKTABLES_STATES]


def download_pums(
    year: int = 2019,
    dest: Path | None = None,
    *,
    base_url: str | None = None,
    files: Sequence[str] | None = None,
    progress: Progress | None = None,
    timeout: float = 60.0,
) -> list[Path]:
    """Fetch the person-file zips folktables uses (resumable with HTTP Range) and record their sha256 in SHA256SUMS.

    Files already in `dest` (default cache_dir()/pums/YEAR/) are kept. Offline, raises ProbeError saying which
    file to download and where to put it.
    """
    dest = Path(dest) if dest else paths.cache_dir() / "pums" / str(year)
    dest.mkdir(parents=True, exist_ok=True)
    base = (base_url or PUMS_BASE_URL.format(year=year)).rstrip("/")
    names = list(files or pums_files())
    out = []
    for name in names:
        target = dest / name
        if not (target.is_file() and zipfile.is_zipfile(target)):
            _fetch(f"{base}/{name}", target, progress, timeout, len(names))
        out.append(target)
    sums = "".join(f"{_sha256(p)}  {p.name}\n" for p in out)
    (dest / "SHA256SUMS").write_text(sums, encoding="utf-8")
    return out


def _fetch(url: str, target: Path, progress: Progress | None, timeout: float, n_files: int) -> None:
    part = target.with_name(target.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            if r.status != 206:
                start = 0
            total = start + int(r.headers.get("Content-Length") or 0)
            done = start
            with part.open("ab" if start else "wb") as f:
                while chunk := r.read(1 << 20):
                    f.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, max(total, done), target.name)
    except urllib.error.HTTPError as e:
        if e.code != 416:  # 416: the .part file is already whole
            raise ProbeError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as e:
        reason = getattr(e, "reason", None) or e
        others = f" (and the other {n_files - 1} files {PUMS_FILE} of folktables' state list)" if n_files > 1 else ""
        raise ProbeError(
            f"cannot download {url} ({reason}): download it by hand{others} and put it in {target.parent}/"
        ) from None
    if not zipfile.is_zipfile(part):
        part.unlink(missing_ok=True)
        raise ProbeError(f"{url}: the download is not a zip file; run again, or put {target.name} in {target.parent}/")
    part.replace(target)
