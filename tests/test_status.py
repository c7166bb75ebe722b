"""The reproduction-status page's inputs: the claims list, the book's labels, the Table 1
tolerances, and the book's figure style."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib as mpl  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conftest import ROOT, toc_notebooks  # noqa: E402
from softseg import claims, plotting, results  # noqa: E402
from softseg.experiments import soft_dice_table1 as table1  # noqa: E402

#: Every label the chapters were asked to define (the status page and the chapters' cross-links
#: point to them): the claims, the reproduced tables, and the interactive figures.
WIDGET_LABELS = ("dml-widget", "sauna-widget", "margin-widget")
REQUIRED_LABELS = tuple(c.label for c in claims.CLAIMS + claims.EXPERIMENTS) + WIDGET_LABELS


# --------------------------------------------------------------------------- the claims list


def test_claims_are_well_formed() -> None:
    entries = claims.CLAIMS + claims.EXPERIMENTS
    assert len({c.label for c in entries}) == len(entries), "two entries share a label"
    assert len({(c.key, c.item) for c in entries}) == len(entries), "two entries name the same paper item"
    bib = (ROOT / "references.bib").read_text()
    for c in entries:
        assert c.key in claims.PAPERS and f"{{{c.key}," in bib, f"{c.key}: not a key of PAPERS and references.bib"
        assert c.statement and c.item and c.label == c.label.strip()
        assert c.statement.count("$") % 2 == 0, f"{c.paper} {c.item}: unbalanced $ in the statement"
        assert "|" not in c.statement, f"{c.paper} {c.item}: a | would split the Markdown table (use \\lVert)"
    assert {c.key for c in claims.CLAIMS} == set(claims.PAPERS), "every paper has at least one claim"


@pytest.mark.parametrize("label", REQUIRED_LABELS)
def test_every_required_label_is_a_section_of_a_toc_notebook(label: str) -> None:
    """Strict: a label the status page links to must be a ``(label)=`` line of a chapter in _toc.yml."""
    labels = claims.book_labels(ROOT)
    assert label in labels, f"({label})= is not defined in any document of _toc.yml"
    assert labels[label] in toc_notebooks(), f"({label})= is defined in {labels[label]}, not a notebook of _toc.yml"


@pytest.mark.parametrize("label", ["sd-thm1", "sd-thm2", "sd-thm3", "sd-volume-bias", "sd-table1", "sd-table1-agreement"])
def test_soft_dice_labels_precede_a_heading(label: str) -> None:
    lines = (ROOT / "notebooks" / "soft_dice.md").read_text().splitlines()
    index = lines.index(f"({label})=")
    assert lines[index + 1].startswith("#"), f"({label})= must label a section (a heading right after it)"


def _book(tmp_path: Path, files: dict[str, str], toc: str) -> Path:
    (tmp_path / "_toc.yml").write_text(toc)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_book_labels_reads_only_toc_documents(tmp_path: Path) -> None:
    root = _book(tmp_path, {
        "intro.md": "(intro)=\n# Intro\n",
        "notebooks/a.md": "(a-1)=\n## A\n\ntext (not-a-label)= inline\n  (indented)=\n(a-2)=\n### B\n",
        "notebooks/orphan.md": "(orphan)=\n# Not in the toc\n",
    }, "format: jb-book\nroot: intro\nparts:\n  - caption: P\n    chapters:\n      - file: notebooks/a\n")
    labels = claims.book_labels(root)
    assert labels == {"intro": root / "intro.md", "a-1": root / "notebooks/a.md", "a-2": root / "notebooks/a.md"}
    rows = claims.claim_status([claims.Claim("wang2023dice", "Theorem 9", "x", "a-2"),
                                claims.Claim("wang2023dice", "Theorem 8", "y", "orphan")], labels)
    assert [r["verdict"] for r in rows] == [claims.VERIFIED, claims.NOT_IN_BOOK]
    assert rows[0]["paper"] == "Wang et al. 2023" and rows[0]["item"] == "Theorem 9"


def test_book_labels_rejects_a_duplicate(tmp_path: Path) -> None:
    root = _book(tmp_path, {"intro.md": "(x)=\n# I\n", "b.md": "(x)=\n# B\n"},
                 "format: jb-book\nroot: intro\nchapters:\n  - file: b\n")
    with pytest.raises(ValueError, match="label 'x' is defined in both"):
        claims.book_labels(root)


def test_toc_documents_errors_name_the_expected_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="root: expected a book folder holding _toc.yml"):
        claims.toc_documents(tmp_path)
    _book(tmp_path, {"intro.md": "# I\n"}, "format: jb-book\nroot: intro\nchapters:\n  - file: gone\n")
    with pytest.raises(ValueError, match=r"_toc.yml: names 'gone' but none of \['gone.md', 'gone.ipynb', 'gone.rst'\] exists"):
        claims.toc_documents(tmp_path)


def test_claim_status_of_the_real_book() -> None:
    rows = claims.claim_status()
    assert [r["label"] for r in rows] == [c.label for c in claims.CLAIMS]
    soft_dice = [r for r in rows if r["key"] == "nordstrom2023noisy"]
    assert soft_dice and all(r["verdict"] == claims.VERIFIED for r in soft_dice)


# --------------------------------------------------------------------------- Table 1 tolerances


def test_table1_tolerance_formula() -> None:
    per_map = torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=torch.float64)  # sample sd = sqrt(1/3)
    expected = 0.0005 + 3 * math.sqrt(1 / 3) * math.sqrt(1 / 4 + 1 / 1000)
    assert table1.table1_tolerance(per_map, 1000) == pytest.approx(expected, rel=1e-12)
    assert table1.table1_tolerance(torch.zeros(7), 19) == 0.0005  # no spread: the paper's rounding only
    assert table1.table1_tolerance(torch.tensor([0.3]), 19) == 0.0005  # one map: no spread estimate


@pytest.mark.parametrize("bad", [0, -3])
def test_table1_tolerance_rejects_bad_sample_count(bad) -> None:
    with pytest.raises(ValueError, match="paper_samples: expected a finite number > 0"):
        table1.table1_tolerance(torch.zeros(3), bad)


@given(st.integers(2, 400), st.integers(1, 5000))
def test_table1_tolerance_shrinks_with_samples(n, paper_n) -> None:
    per_map = torch.linspace(0, 1, n, dtype=torch.float64)
    more = torch.linspace(0, 1, 4 * n, dtype=torch.float64)
    assert table1.table1_tolerance(more, paper_n) <= table1.table1_tolerance(per_map, paper_n) + 1e-15
    assert table1.table1_tolerance(per_map, paper_n) >= table1.PAPER_ROUNDING


def test_table1_rows_carry_tolerance_and_note_only_beside_a_paper_value() -> None:
    maps = torch.rand(3, 12, 12, generator=torch.Generator().manual_seed(0))
    result = table1.soft_dice_gradient_descent(maps, iterations=(1, 10), seed=0, progress=False)
    with_paper = table1.table1_rows("S rho=0.01", result, paper=table1.PAPER_TABLE1["S rho=0.01"], paper_samples=1000)
    for row in with_paper:
        if row["column"] == "samples":
            assert "tolerance" not in row and "note" not in row
        else:
            assert row["note"] == table1.TABLE1_NOTE and row["tolerance"] >= table1.PAPER_ROUNDING
    no_paper = table1.table1_rows("G Prostate (stand-in)", result)
    assert all("tolerance" not in r and "note" not in r for r in no_paper)
    results.validate_results({"name": "x", "preset": "fast", "device": "cpu", "created": "2026-11-23T10:00:00+00:00",
                              "command": "c", "rows": with_paper + no_paper})


def test_committed_table1_verdicts() -> None:
    """The committed run judged by its own tolerances: equal at l = 1, apart at l = 10 (the chapter's
    section ``sd-table1-agreement`` says why), and every compared cell links there."""
    records = [r for r in results.load_status_records() if r["name"] == "soft-dice-table1"]
    assert records, "results/soft-dice-table1.json is committed"
    cells = [c for c in results.status_table(records) if c["paper"] is not None and c["column"] != "samples"]
    assert cells and all(c["note"] == table1.TABLE1_NOTE and c["tolerance"] is not None for c in cells)
    assert all(c["verdict"] == "matches" for c in cells if c["column"].endswith(" l=1"))
    assert all(c["verdict"] == "differs" for c in cells if c["column"] == "e0 l=10")


# --------------------------------------------------------------------------- figure style


def test_book_style_as_call_and_context_manager() -> None:
    before = mpl.rcParams["font.size"], mpl.rcParams["axes.prop_cycle"]
    with plotting.book_style(font__size=11):
        assert mpl.rcParams["font.size"] == 11
        assert mpl.rcParams["axes.prop_cycle"].by_key()["color"][:3] == list(plotting.PALETTE[:3])
        assert mpl.rcParams["axes.spines.top"] is False
    assert (mpl.rcParams["font.size"], mpl.rcParams["axes.prop_cycle"]) == before
    style = plotting.book_style()
    try:
        assert mpl.rcParams["font.size"] == plotting.BOOK_RC["font.size"]
    finally:
        style.__exit__(None, None, None)
    assert mpl.rcParams["font.size"] == before[0]


def test_book_style_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match=r"overrides: expected Matplotlib rcParams keys, got unknown \['font.sise'\]"):
        plotting.book_style(font__sise=3)


def test_palette_is_distinct_hex_colours() -> None:
    assert len(set(plotting.PALETTE)) == len(plotting.PALETTE) == 8
    assert all(mpl.colors.is_color_like(c) for c in plotting.PALETTE)
    assert set(plotting.VERDICT_COLOURS) == set(results.VERDICTS)


@pytest.mark.parametrize("n_cells", [0, 1, 5])
def test_status_figure(n_cells) -> None:
    cells = [{"paper": 0.1 * i, "full": 0.1 * i + 0.01, "fast": None, "compared": "full",
              "verdict": ("matches", "differs")[i % 2]} for i in range(n_cells)]
    cells.append({"paper": None, "full": 0.3, "fast": None, "compared": "full", "verdict": "not compared"})
    cells.append({"paper": 1000, "full": 1000, "fast": None, "compared": "full", "verdict": "not compared"})
    fig = plotting.status_figure(cells, title="t")
    try:
        (ax,) = fig.axes
        assert sum(len(c.get_offsets()) for c in ax.collections) == n_cells
        labels = ax.get_legend_handles_labels()[1]
        if n_cells:
            assert f"matches ({(n_cells + 1) // 2})" in labels
        assert ax.get_title() == "t" and ax.get_xscale() == "symlog"
    finally:
        plt.close(fig)
