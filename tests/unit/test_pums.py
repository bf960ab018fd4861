"""probe.pums: PUMS builds (hand-computed and the NIST excerpt), download, `probe baselines build`."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import socket
import sys
import threading
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from probe import baselines as B
from probe import pums as P
from probe.errors import ProbeError

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
NIST = SHARED / "reference" / "acs" / "pums_sample"
TOL = 1e-9


pytestmark = pytest.mark.usefixtures("isolated_home")


# ----------------------------------------------------------------------------- a PUMS file, by hand

HEADER = "RT,ST,PWGTP,SEX,AGEP,HISP,SCHL,MAR,FER,LANX,ENG"
ROWS = [
    # ST  w    SEX AGEP HISP SCHL MAR FER LANX ENG
    "P,06,10,1,3,01,,5,,,",  # r1 age 3 (AGER 1): MAR masked
    "P,06,20,2,30,02,16,5,1,1,2",  # r2
    "P,06,30,1,45,01,21,1,,2,3",  # r3 LANX 2: ENG masked
    "P,36,40,2,15,03,12,5,1,1,1",  # r4 age 15 (AGER 2): MAR masked, FER masked -> counts as No
    "P,36,50,2,70,01,24,2,,2,",  # r5
    "P,36,5,1,,01,01,,,,",  # r6 AGEP blank: no AGER, no masks
    "P,72,100,2,40,05,20,3,2,1,4",  # r7 Puerto Rico: in the all-rows table, in no state table
    "P,06,7,2,4,01,01,,,1,1",  # r8 age 4: SCHL and LANX masked; ENG kept (LANX is blank, not 2), as the paper
]


def _norm(weights: dict[int, float], codes: list[int]) -> dict[int, float]:
    total = sum(weights.values())
    return {c: weights.get(c, 0.0) / total for c in codes}


EXPECTED_ALL = {
    "SEX": ({1: 45, 2: 217}, [1, 2]),
    "AGER": ({1: 17, 2: 40, 3: 20, 4: 100, 5: 30, 7: 50}, list(range(1, 8))),
    "HISPR": ({1: 160, 2: 102}, [1, 2]),
    "SCHLR": ({1: 5, 2: 40, 3: 20, 4: 130, 5: 50}, [1, 2, 3, 4, 5]),
    "MAR": ({1: 30, 2: 50, 3: 100, 5: 20}, [1, 2, 3, 4, 5]),
    "FER": ({1: 20, 2: 242}, [1, 2]),
    "LANX": ({1: 160, 2: 80}, [1, 2]),
    "ENG": ({1: 47, 2: 20, 4: 100}, [1, 2, 3, 4]),
}
EXPECTED_STATES = {
    6: {
        "SEX": ({1: 40, 2: 27}, [1, 2]),
        "AGER": ({1: 17, 3: 20, 5: 30}, list(range(1, 8))),
        "FER": ({1: 20, 2: 47}, [1, 2]),
        "ENG": ({1: 7, 2: 20}, [1, 2, 3, 4]),
        "MAR": ({1: 30, 5: 20}, [1, 2, 3, 4, 5]),
        "SCHLR": ({3: 20, 4: 30}, [1, 2, 3, 4, 5]),
    },
    36: {
        "SEX": ({1: 5, 2: 90}, [1, 2]),
        "AGER": ({2: 40, 7: 50}, list(range(1, 8))),
        "FER": ({2: 95}, [1, 2]),
        "ENG": ({1: 40}, [1, 2, 3, 4]),
        "MAR": ({2: 50}, [1, 2, 3, 4, 5]),
        "HISPR": ({1: 40, 2: 55}, [1, 2]),
    },
}


@pytest.fixture
def pums_csv(tmp_path) -> Path:
    p = tmp_path / "psam_p_test.csv"
    p.write_text(HEADER + "\n" + "\n".join(ROWS) + "\n", encoding="utf-8")
    return p


def _check(table: B.Baseline, expected: dict) -> None:
    for var, (weights, codes) in expected.items():
        got = table.shares_for(var)
        want = _norm(weights, codes)
        assert got is not None, var
        assert set(got) == set(codes), var
        for c in codes:
            assert got[c] == pytest.approx(want[c], abs=TOL), (var, c)


@pytest.mark.parametrize("chunksize", [3, 100_000])
def test_build_reproduces_hand_computed_shares(pums_csv, qn, chunksize):
    tables = P.build_from_pums([pums_csv], qn, "hand", by_state=True, chunksize=chunksize)
    assert [t.name for t in tables] == ["hand", "hand_06", "hand_36"]  # no hand_72: Puerto Rico left out
    _check(tables[0], EXPECTED_ALL)
    for t, st in zip(tables[1:], (6, 36)):
        _check(t, EXPECTED_STATES[st])
    all_ = tables[0]
    # variables absent from the file are skipped, not invented
    assert "COWR" not in all_.variables and "HICOV" not in all_.variables
    assert all_.variables["SEX"].n_records == 8 and all_.variables["SEX"].weight_sum == 262
    v = all_.variables["SCHLR"]
    assert "AGER in {1}" in v.universe and "PWGTP" in v.universe
    assert "counted as code 2" in all_.variables["FER"].universe
    assert pums_csv.name in v.source and "sha256" in v.source
    assert "ST=36" in tables[2].variables["SEX"].universe


def test_build_saves_and_reloads(pums_csv, qn):
    P.build_from_pums([pums_csv], qn, "hand", by_state=True)
    assert {"hand", "hand_06", "hand_36"} <= set(B.available())
    assert B.origin("hand") == "user"
    again = B.load("hand", qn)
    _check(again, EXPECTED_ALL)
    assert B.load("hand_06", qn).shares_for("SEX")[1] == pytest.approx(40 / 67, abs=TOL)


def test_build_from_zip_and_several_files(pums_csv, tmp_path, qn):
    z = tmp_path / "csv_ptest.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(pums_csv, "psam_p06.csv")
    one = P.build_from_pums([z], qn, "zipped", save_to=False)[0]
    _check(one, EXPECTED_ALL)
    # the same file twice: same shares, double the weight
    two = P.build_from_pums([pums_csv, z], qn, "twice", save_to=False)[0]
    _check(two, EXPECTED_ALL)
    assert two.variables["SEX"].weight_sum == 2 * 262


def test_build_drops_values_matching_no_option(tmp_path, qn):
    p = tmp_path / "odd.csv"
    p.write_text("PWGTP,SEX\n1,1\n3,2\n5,7\n", encoding="utf-8")
    t = P.build_from_pums([p], qn, "odd", save_to=False)[0]
    assert t.shares_for("SEX") == pytest.approx({1: 0.25, 2: 0.75})
    assert "SEX': 1" in t.notes


def test_progress_callback(pums_csv, qn):
    seen = []
    P.build_from_pums([pums_csv], qn, "prog", chunksize=3, progress=lambda d, t, lab: seen.append((d, t, lab)),
                      save_to=False)
    assert len(seen) == 3 and seen[-1][0] == seen[-1][1] == pums_csv.stat().st_size
    assert all(lab == pums_csv.name for _, _, lab in seen)


def test_build_errors_name_the_file(tmp_path, pums_csv, qn):
    with pytest.raises(ProbeError, match="no such file"):
        P.build_from_pums([tmp_path / "missing.csv"], qn, "x")
    nopw = tmp_path / "nopw.csv"
    nopw.write_text("SEX,AGEP\n1,30\n", encoding="utf-8")
    with pytest.raises(ProbeError, match=r"nopw\.csv: not a PUMS person file"):
        P.build_from_pums([nopw], qn, "x")
    bad = tmp_path / "bad.csv"
    bad.write_text("PWGTP,SEX\n1,1\n2,x\n", encoding="utf-8")
    with pytest.raises(ProbeError, match=r"bad\.csv:3: column SEX: 'x' is not a number"):
        P.build_from_pums([bad], qn, "x")
    short = tmp_path / "short.csv"
    short.write_text("PWGTP,SEX,AGEP\n1,1,30\n2,2\n", encoding="utf-8")
    with pytest.raises(ProbeError, match=r"short\.csv:3: row has 2 fields, header has 3"):
        P.build_from_pums([short], qn, "x")
    blankw = tmp_path / "blankw.csv"
    blankw.write_text("PWGTP,SEX\n1,1\n,2\n", encoding="utf-8")
    with pytest.raises(ProbeError, match=r"blankw\.csv:3: PWGTP is blank"):
        P.build_from_pums([blankw], qn, "x")
    nothing = tmp_path / "nothing.csv"
    nothing.write_text("PWGTP,FOO\n1,1\n", encoding="utf-8")
    with pytest.raises(ProbeError, match=r"nothing\.csv: none of the PUMS variables"):
        P.build_from_pums([nothing], qn, "x")
    empty = tmp_path / "empty.csv"
    empty.write_text("PWGTP,SEX\n", encoding="utf-8")
    with pytest.raises(ProbeError, match=r"empty\.csv: no person records"):
        P.build_from_pums([empty], qn, "x")
    with pytest.raises(ProbeError, match="no ST column"):
        P.build_from_pums([bad], qn, "x", by_state=True)
    with pytest.raises(ProbeError, match="taken"):
        P.build_from_pums([pums_csv], qn, "us_2019")
    with pytest.raises(ProbeError, match="taken"):
        P.build_from_pums([pums_csv], qn, "uniform")
    with pytest.raises(ProbeError, match="lowercase"):
        P.build_from_pums([pums_csv], qn, "Bad Name")


# ----------------------------------------------------------------------------- NIST excerpt (real PUMS rows)

NIST_MAP = {
    "HISP": {"column": "HISP", "values": {0: 1, 1: 2, 2: 2, 3: 2, 4: 2}},  # excerpt 0 = not Hispanic; PUMS 1
    # EDU groups SCHL; any SCHL value inside the group's bin gives the same SCHLR
    "SCHL": {"column": "EDU", "values": {1: 1, 2: 2, 3: 2, 4: 2, 5: 16, 6: 16, 7: 18, 8: 18, 9: 18,
                                         10: 22, 11: 22, 12: 22}},
    "MAR": {"column": "MSP", "values": {1: 1, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5}},
    "ST": {"column": "PUMA", "prefix": 2},
}


@pytest.mark.skipif(not (NIST / "national2019.csv").is_file(), reason="../shared reference data absent")
def test_nist_excerpt_matches_marginals(qn):
    marg = json.loads((NIST / "marginals.json").read_text())
    tables = P.build_from_pums([NIST / "national2019.csv"], qn, "nist", by_state=True, column_map=NIST_MAP,
                               chunksize=4000, save_to=False)
    by_name = {t.name: t for t in tables}
    all_ = by_name["nist"]
    expected_vars = set(marg["us_excerpt_all_20_pumas"])
    assert set(all_.variables) == expected_vars  # the 9 questions the excerpt supports, nothing invented
    for var, e in marg["us_excerpt_all_20_pumas"].items():
        got = all_.shares_for(var)
        for code, share in e["shares"].items():
            assert got[int(code)] == pytest.approx(share, abs=1e-6), (var, code)
        assert all_.variables[var].n_records == e["n_records"]
        assert all_.variables[var].weight_sum == pytest.approx(e["weight_sum"])
    assert {f"nist_{int(s):02d}" for s in marg["by_state"]} == set(by_name) - {"nist"}
    for st, shares in marg["by_state"].items():
        t = by_name[f"nist_{int(st):02d}"]
        assert t.variables["SEX"].weight_sum == pytest.approx(marg["by_state_weight_sum"][st])
        for var, sh in shares.items():
            got = t.shares_for(var)
            for code, share in sh.items():
                assert got[int(code)] == pytest.approx(share, abs=1e-6), (st, var, code)


# ----------------------------------------------------------------------------- download


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_offline_says_what_to_fetch_and_where(tmp_path):
    dest = tmp_path / "pums" / "2019"
    with pytest.raises(ProbeError) as e:
        P.download_pums(2019, dest, base_url=f"http://127.0.0.1:{_free_port()}/pums", timeout=5)
    msg = str(e.value)
    assert "\n" not in msg
    assert "csv_pal.zip" in msg and str(dest) in msg and "50 files" in msg


def test_default_download_dir_is_the_cache(monkeypatch, tmp_path):
    with pytest.raises(ProbeError, match=r"cache[/\\]pums[/\\]2019"):
        P.download_pums(2019, base_url=f"http://127.0.0.1:{_free_port()}", files=["csv_pal.zip"], timeout=5)
    assert P.PUMS_BASE_URL.format(year=2019) == "https://www2.census.gov/programs-surveys/acs/data/pums/2019/1-Year"
    assert len(P.pums_files()) == 51 and "csv_ppr.zip" in P.pums_files() and "csv_pdc.zip" not in P.pums_files()


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("psam_p01.csv", HEADER + "\n" + "\n".join(ROWS) + "\n" + "x" * 5000)
    return buf.getvalue()


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = b""
    ranges: list = []

    def do_GET(self):  # noqa: N802
        rng = self.headers.get("Range")
        type(self).ranges.append(rng)
        start = int(rng.split("=")[1].rstrip("-")) if rng else 0
        body = self.payload[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def test_download_resumes_with_range_and_records_sha256(tmp_path):
    data = _zip_bytes()
    _RangeHandler.payload, _RangeHandler.ranges = data, []
    srv = http.server.HTTPServer(("127.0.0.1", 0), _RangeHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        dest = tmp_path / "dl"
        dest.mkdir()
        (dest / "csv_pal.zip.part").write_bytes(data[:1000])
        seen = []
        files = P.download_pums(2019, dest, base_url=f"http://127.0.0.1:{srv.server_port}", files=["csv_pal.zip"],
                                progress=lambda d, t, lab: seen.append((d, t)))
    finally:
        srv.shutdown()
        srv.server_close()
    assert _RangeHandler.ranges == ["bytes=1000-"]
    assert files == [dest / "csv_pal.zip"] and files[0].read_bytes() == data
    assert not (dest / "csv_pal.zip.part").exists()
    assert (dest / "SHA256SUMS").read_text() == f"{hashlib.sha256(data).hexdigest()}  csv_pal.zip\n"
    assert seen[-1] == (len(data), len(data))
    # already there: nothing fetched again
    assert P.download_pums(2019, dest, base_url="http://127.0.0.1:1", files=["csv_pal.zip"]) == files


# ----------------------------------------------------------------------------- CLI


@pytest.fixture
def runner():
    return CliRunner()


def _app():
    from probe.cli.main import app

    return app

def test_cli_build_then_show(runner, pums_csv):
    r = runner.invoke(_app(), ["baselines", "build", "--pums-csv", str(pums_csv), "--name", "mine", "--by-state"])
    assert r.exit_code == 0, r.output
    assert "built mine" in r.output and "2 state tables" in r.output
    r = runner.invoke(_app(), ["baselines", "show", "mine_36", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["SEX"]["Female"] == pytest.approx(90 / 95, abs=TOL)
    r = runner.invoke(_app(), ["baselines", "list"])
    assert "mine_06" in r.output


def test_cli_build_with_column_map(runner, tmp_path):
    csv_ = tmp_path / "other.csv"
    csv_.write_text("weight,gender,PUMA\n1,m,06-001\n3,f,06-002\n4,f,36-001\n", encoding="utf-8")
    cmap = tmp_path / "map.yaml"
    cmap.write_text("PWGTP: weight\nSEX: {column: gender, values: {m: 1, f: 2}}\nST: {column: PUMA, prefix: 2}\n")
    r = runner.invoke(_app(), ["baselines", "build", "--pums-csv", str(csv_), "--name", "mapped",
                               "--column-map", str(cmap), "--by-state"])
    assert r.exit_code == 0, r.output
    assert B.load("mapped").shares_for("SEX") == pytest.approx({1: 0.125, 2: 0.875})
    assert B.load("mapped_06").shares_for("SEX") == pytest.approx({1: 0.25, 2: 0.75})


def test_cli_bad_file_is_one_line_error(runner, tmp_path, monkeypatch, capsys):
    bad = tmp_path / "garbage.csv"
    bad.write_text("hello,world\n1,2\n", encoding="utf-8")
    r = runner.invoke(_app(), ["baselines", "build", "--pums-csv", str(bad), "--name", "g"])
    assert r.exit_code != 0
    assert isinstance(r.exception, ProbeError) and "garbage.csv" in str(r.exception)
    # through the entry point: one line on stderr, exit 2
    from probe.cli import main as cli_main

    monkeypatch.setattr(sys, "argv", ["probe", "baselines", "build", "--pums-csv", str(bad), "--name", "g"])
    with pytest.raises(SystemExit) as e:
        cli_main.main()
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "garbage.csv" in err and err.startswith("error: ")


def test_cli_build_needs_input(runner):
    r = runner.invoke(_app(), ["baselines", "build", "--name", "x"])
    assert r.exit_code != 0 and "--pums-csv" in str(r.exception)
