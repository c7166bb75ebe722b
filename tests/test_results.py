"""The results format: the writer, the validator, and every committed ``results/*.json``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from softseg import results
from conftest import ROOT

ROW = {"table": "Table 1", "row": "S rho=0.01", "column": "e0 l=10", "ours": 0.021, "paper": 0.022}


def _record(**changes):
    record = {"name": "demo", "preset": "fast", "device": "cpu", "created": "2026-11-23T10:00:00+00:00",
              "command": "python -m softseg reproduce demo", "rows": [dict(ROW)]}
    record.update(changes)
    return record


@pytest.mark.parametrize("path", sorted((ROOT / "results").glob("*.json")), ids=lambda p: p.stem)
def test_committed_results_are_valid(path: Path) -> None:
    record = json.loads(path.read_text())
    results.validate_results(record, source=str(path))
    assert record["name"] == path.stem


def test_load_results_reads_committed_folder() -> None:
    records = results.load_results()
    assert [r["name"] for r in records] == sorted(p.stem for p in (ROOT / "results").glob("*.json"))


def test_write_then_load_roundtrip(tmp_path: Path) -> None:
    rows = [dict(ROW, ours=np.float32(0.5)), dict(ROW, column="e1 l=10", ours=torch.tensor(0.25), paper=None)]
    path = results.write_results("demo", rows, preset="full", device="cpu", command="cmd", directory=tmp_path)
    assert path == tmp_path / "demo.json"
    assert [p.name for p in tmp_path.iterdir()] == ["demo.json"]  # no temp file left behind
    (record,) = results.load_results(tmp_path)
    assert record["rows"][0]["ours"] == 0.5 and record["rows"][1]["paper"] is None
    assert dt.datetime.fromisoformat(record["created"]).tzinfo is not None


def test_write_rejects_bad_rows_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"rows\[0\]: key 'ours': expected a finite number or null, got nan"):
        results.write_results("demo", [dict(ROW, ours=float("nan"))], preset="fast", device="cpu",
                              command="cmd", directory=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (_record(preset="medium"), r"key 'preset': expected one of \('fast', 'full'\), got 'medium'"),
        ({k: v for k, v in _record().items() if k != "device"}, r"missing keys \['device'\]"),
        (_record(extra=1), r"unexpected keys \['extra'\]"),
        (_record(created="yesterday"), r"key 'created': expected an ISO 8601 time"),
        (_record(created="2026-11-23T10:00:00"), r"key 'created': expected a time zone"),
        (_record(rows=[{"table": "T"}]), r"rows\[0\]: expected keys"),
        (_record(rows=[dict(ROW, paper="0.1")]), r"rows\[0\]: key 'paper': expected a finite number or null"),
        (_record(rows=[dict(ROW, ours=True)]), r"rows\[0\]: key 'ours': expected a finite number or null"),
        (_record(rows=[dict(ROW, row="")]), r"rows\[0\]: key 'row': expected a non-empty string"),
        (_record(rows=[dict(ROW), dict(ROW)]), r"rows\[1\]: duplicate cell"),
        (_record(rows="none"), r"key 'rows': expected list, got str"),
    ],
)
def test_validate_rejects(record, message) -> None:
    with pytest.raises(ValueError, match=message):
        results.validate_results(record)


def test_load_rejects_name_that_is_not_the_stem(tmp_path: Path) -> None:
    (tmp_path / "other.json").write_text(json.dumps(_record()))
    with pytest.raises(ValueError, match="expected the file stem 'other'"):
        results.load_results(tmp_path)


def test_load_missing_folder_is_empty(tmp_path: Path) -> None:
    assert results.load_results(tmp_path / "absent") == []


def test_status_table_puts_presets_side_by_side() -> None:
    fast = _record(rows=[dict(ROW, ours=0.03)])
    full = _record(preset="full", rows=[dict(ROW, ours=0.021)])
    (cell,) = results.status_table([fast, full])
    assert cell == {"source": "demo", "table": "Table 1", "row": "S rho=0.01", "column": "e0 l=10",
                    "paper": 0.022, "fast": 0.03, "full": 0.021, "tolerance": None, "note": None,
                    "compared": "full", "verdict": "not compared"}
    md = results.format_markdown_table([cell], ["row", "paper", "fast"])
    assert md.splitlines()[2] == "| S rho=0.01 | 0.022 | 0.03 |"
    assert "—" in results.format_markdown_table([dict(cell, fast=None)], ["fast"])


def test_optional_tolerance_and_note_are_validated_and_carried(tmp_path) -> None:
    row = dict(ROW, ours=0.021, tolerance=0.002, note="soft-dice-table1")
    path = results.write_results("demo", [row], preset="full", device="cpu", command="c", directory=tmp_path)
    (record,) = results.load_results(tmp_path)
    assert path.stem == "demo"
    (cell,) = results.status_table([record])
    assert cell["tolerance"] == 0.002 and cell["note"] == "soft-dice-table1"
    with pytest.raises(ValueError, match="'tolerance': expected a finite number >= 0"):
        results.validate_results(_record(rows=[dict(ROW, tolerance=-1.0)]))
    with pytest.raises(ValueError, match="'note': expected a non-empty string"):
        results.validate_results(_record(rows=[dict(ROW, note="")]))
    with pytest.raises(ValueError, match="optionally"):
        results.validate_results(_record(rows=[dict(ROW, verdict="ok")]))


# --------------------------------------------------------------------------- verdicts


@pytest.mark.parametrize(
    ("ours", "paper", "tolerance", "expected"),
    [
        (0.021, 0.022, 0.001, "matches"),  # |diff| == tolerance up to float rounding: inclusive
        (0.021, 0.022, 0.0009, "differs"),
        (0.5, 0.5, 0.0, "matches"),
        (0.5, 0.5000001, 0.0, "differs"),  # a zero tolerance demands equality
        (0.021, None, 0.001, "not compared"),  # no paper value
        (0.021, 0.022, None, "not compared"),  # no tolerance justified
        (None, 0.022, 0.001, "missing"),
        (None, None, None, "not compared"),
        (-0.1, 0.1, 0.2, "matches"),
        (1e6, 1e6 + 1, 1.0, "matches"),
    ],
)
def test_verdict(ours, paper, tolerance, expected) -> None:
    assert results.verdict(ours, paper, tolerance) == expected
    assert expected in results.VERDICTS


@pytest.mark.parametrize("tolerance", [-1e-9, float("inf"), float("nan")])
def test_verdict_rejects_bad_tolerance(tolerance) -> None:
    with pytest.raises(ValueError, match="tolerance: expected a finite number >= 0"):
        results.verdict(0.1, 0.1, tolerance)


@given(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3), st.floats(0, 1e3))
def test_verdict_is_symmetric_and_monotone_in_tolerance(ours, paper, tolerance) -> None:
    first = results.verdict(ours, paper, tolerance)
    assert first == results.verdict(paper, ours, tolerance)
    if first == "matches":
        assert results.verdict(ours, paper, tolerance * 2 + 1e-9) == "matches"
    else:
        assert results.verdict(ours, paper, tolerance / 2) == "differs"


def test_status_table_judges_full_run_with_its_own_tolerance() -> None:
    fast = _record(rows=[dict(ROW, ours=0.03, tolerance=0.01, note="sd-table1")])
    full = _record(preset="full", rows=[dict(ROW, ours=0.0215, tolerance=0.0004)])
    (cell,) = results.status_table([fast, full])
    assert (cell["compared"], cell["tolerance"], cell["verdict"], cell["note"]) == ("full", 0.0004, "differs", "sd-table1")
    (only_fast,) = results.status_table([fast])
    assert (only_fast["compared"], only_fast["tolerance"], only_fast["verdict"]) == ("fast", 0.01, "matches")
    (no_number,) = results.status_table([_record(preset="full", rows=[dict(ROW, ours=None, tolerance=0.1)])])
    assert (no_number["compared"], no_number["verdict"]) == ("full", "missing")
    (no_paper,) = results.status_table([_record(rows=[dict(ROW, paper=None, tolerance=0.1)])])
    assert no_paper["verdict"] == "not compared"


def test_status_table_of_nothing_is_empty() -> None:
    assert results.status_table([]) == []
    assert results.status_table([_record(rows=[])]) == []


@pytest.mark.parametrize(
    ("cell", "labels", "expected"),
    [
        ({"verdict": "matches", "tolerance": 0.0012, "note": "sd-table1"}, ["sd-table1"], "{ref}`matches (±0.0012) <sd-table1>`"),
        ({"verdict": "differs", "tolerance": 0.001, "note": "sd-table1"}, [], "differs (±0.001)"),
        ({"verdict": "not compared", "tolerance": None, "note": "x"}, ["x"], "{ref}`not compared <x>`"),
        ({"verdict": "not compared", "tolerance": None, "note": None}, ["x"], "not compared"),
    ],
)
def test_verdict_markdown(cell, labels, expected) -> None:
    assert results.verdict_markdown(cell, labels) == expected


def test_status_heading() -> None:
    assert results.status_heading("soft-dice-table1", "Table 1") == "Table 1 — soft-dice-table1"


# --------------------------------------------------------------------------- where runs live


def _write(folder: Path, name: str, preset: str, ours: float) -> None:
    results.write_results(name, [dict(ROW, ours=ours)], preset=preset, device="cpu", command="c", directory=folder)


def test_load_status_records_reads_preset_subfolders(tmp_path: Path) -> None:
    _write(tmp_path, "demo", "full", 0.021)
    _write(tmp_path / "fast", "demo", "fast", 0.03)
    _write(tmp_path, "other", "fast", 0.5)
    records = results.load_status_records(tmp_path)
    assert sorted((r["name"], r["preset"]) for r in records) == [("demo", "fast"), ("demo", "full"), ("other", "fast")]
    cells = {c["source"]: c for c in results.status_table(records)}
    assert (cells["demo"]["fast"], cells["demo"]["full"]) == (0.03, 0.021)
    assert results.load_results(tmp_path) == [r for r in records if r["name"] != "demo" or r["preset"] == "full"]


def test_load_status_records_of_missing_folder_is_empty(tmp_path: Path) -> None:
    assert results.load_status_records(tmp_path / "absent") == []


def test_load_status_records_rejects_wrong_preset_folder(tmp_path: Path) -> None:
    _write(tmp_path / "fast", "demo", "full", 0.021)
    with pytest.raises(ValueError, match=r"key 'preset' is 'full', expected 'fast' \(the folder's name\)"):
        results.load_status_records(tmp_path)


def test_load_status_records_rejects_two_runs_of_one_preset(tmp_path: Path) -> None:
    _write(tmp_path, "demo", "fast", 0.021)
    _write(tmp_path / "fast", "demo", "fast", 0.03)
    with pytest.raises(ValueError, match="two 'fast' runs of 'demo'; expected one per preset"):
        results.load_status_records(tmp_path)


def test_committed_runs_load_for_the_status_page() -> None:
    records = results.load_status_records()
    cells = results.status_table(records)
    assert all(c["verdict"] in results.VERDICTS for c in cells)
    for c in cells:
        if c["tolerance"] is not None:
            assert c["note"], f"{c['source']} {c['row']} {c['column']}: a compared cell needs a note (its explanation)"
