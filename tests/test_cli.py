"""The command line: ``python -m softseg``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from softseg import cli, reproduce
from conftest import ROOT


def test_help_lists_subcommands() -> None:
    out = subprocess.run([sys.executable, "-m", "softseg", "--help"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    for sub in ("reproduce", "bench"):
        assert sub in out


def test_reproduce_list_names_every_registered_reproduction(capsys) -> None:
    assert cli.main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    known = reproduce.registry()
    assert all(name in out for name in known) and (known or "no reproductions" in out)


def test_reproduce_unknown_name_is_a_clear_error(capsys) -> None:
    assert cli.main(["reproduce", "no-such-thing"]) == 2
    assert "name: expected one of" in capsys.readouterr().err


def test_registered_reproduction_writes_valid_results(tmp_path, monkeypatch) -> None:
    calls = []

    @reproduce.register("unit-test-demo", paper="none", description="a test double")
    def _run(preset, *, data=None, seed=0):
        calls.append((preset, data, seed))
        return [{"table": "T", "row": "r", "column": "c", "ours": 1.0 + seed, "paper": None}]

    try:
        assert cli.main(["reproduce", "unit-test-demo", "--seed", "2", "--out", str(tmp_path)]) == 0
        record = json.loads((tmp_path / "unit-test-demo.json").read_text())
        assert calls == [("fast", None, 2)]
        assert record["rows"][0]["ours"] == 3.0 and record["preset"] == "fast"
    finally:
        reproduce._REGISTRY.pop("unit-test-demo", None)


def test_bench_list_names_scripts(capsys) -> None:
    assert cli.main(["bench", "--list"]) == 0
    out = capsys.readouterr().out.split()
    assert out == sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py")) or "no benchmark" in " ".join(out)


def test_bench_unknown_name(capsys) -> None:
    assert cli.main(["bench", "nope"]) == 2
    assert "name: expected one of" in capsys.readouterr().err


def test_bad_preset_is_rejected() -> None:
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "x", "--preset", "medium"])
