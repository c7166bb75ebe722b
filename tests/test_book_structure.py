"""The book's structure: no orphan chapters, every notebook takes a ``preset`` parameter, and the
polish a reader sees: one bibliography, citations in every chapter, numbered equations that
resolve, the launch instructions, offline math and a browser test that CI cannot skip."""

from __future__ import annotations

import ast
import re
import subprocess

import jupytext
import pytest
import yaml

from conftest import ROOT, toc_files, toc_notebooks


def test_toc_lists_every_chapter_and_only_existing_ones() -> None:
    listed = set(toc_files())
    on_disk = {str(p.relative_to(ROOT).with_suffix("")) for d in ("book", "notebooks") for p in (ROOT / d).glob("**/*.md")}
    assert on_disk - listed == set(), f"chapters missing from _toc.yml: {sorted(on_disk - listed)}"
    missing = [f for f in listed if not (ROOT / f"{f}.md").is_file()]
    assert missing == [], f"_toc.yml names files that do not exist: {missing}"


@pytest.mark.parametrize("path", toc_notebooks(), ids=lambda p: p.stem)
def test_notebook_has_preset_parameter(path) -> None:
    nb = jupytext.read(path)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", "notebook needs a python3 kernelspec"
    params = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"expected exactly one cell tagged 'parameters', found {len(params)}"
    # papermill injects its values in a new cell *after* this one, so a size computed here from
    # `preset` would keep the default preset's value: only literal assignments belong here.
    namespace: dict = {}
    for node in ast.parse(params[0].source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, (
            f"parameters cell: expected plain `name = literal` lines, got {ast.unparse(node)!r}")
        try:
            namespace[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            pytest.fail(f"parameters cell: {ast.unparse(node)!r} is not a literal; derive it in a later cell")
    assert namespace.get("preset") == "fast", "the parameters cell must set preset = 'fast'"


def test_no_ipynb_in_git() -> None:
    tracked = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    assert tracked.stdout.strip() == "", f"notebooks live as MyST .md, found tracked .ipynb: {tracked.stdout}"


# --------------------------------------------------------------------------- book polish

PAPER_KEYS = ("nordstrom2023noisy", "wang2023dice", "dang2024sauna", "li2021margin")


def _docs() -> dict[str, str]:
    return {f: (ROOT / f"{f}.md").read_text() for f in toc_files()}


def test_one_bibliography_page_lists_the_four_papers() -> None:
    pages = [f for f, text in _docs().items() if "```{bibliography}" in text]
    assert pages == ["book/references"], f"expected one {{bibliography}} directive, in book/references.md; found {pages}"
    bib = (ROOT / "references.bib").read_text()
    for key in PAPER_KEYS:
        assert f"{{{key}," in bib


@pytest.mark.parametrize("path", toc_notebooks(), ids=lambda p: p.stem)
def test_every_chapter_cites_with_the_bibliography(path) -> None:
    text = path.read_text()
    cited = set(re.findall(r"\{cite(?::[a-z]+)?\}`([^`]+)`", text))
    keys = {k.strip() for group in cited for k in group.split(",")}
    assert keys, f"{path.name}: no {{cite}}`key` — cite the paper the chapter checks"
    assert keys <= set(PAPER_KEYS), f"{path.name}: unknown citation keys {sorted(keys - set(PAPER_KEYS))}"


def test_equation_references_point_to_labelled_equations() -> None:
    docs = _docs()
    defined = {label for text in docs.values() for label in re.findall(r"^:label:\s*(\S+)", text, re.MULTILINE)}
    for name, text in docs.items():
        for ref in re.findall(r"\{eq\}`([^`]+)`", text):
            target = ref.split("<")[-1].rstrip(">").strip()
            assert target in defined, f"{name}.md: {{eq}}`{ref}` names no `:label:` of the book"


@pytest.mark.parametrize("doc", ["book/intro", "notebooks/soft_dice"])
def test_numbered_equations_name_the_papers_equation(doc) -> None:
    text = (ROOT / f"{doc}.md").read_text()
    labels = re.findall(r"```\{math\}\n:label:\s*(\S+)", text)
    assert labels, f"{doc}.md: expected {{math}} blocks with :label:"
    assert re.search(r"\{eq\}`", text), f"{doc}.md: no {{eq}} cross-reference"
    assert re.search(r"(the paper's|supplement) eqs?\. \(?\d+", text) or re.search(r"\beqs?\. \(?\d+", text), (
        f"{doc}.md: name the paper's equation numbers next to ours")


def test_intro_links_running_status_and_references() -> None:
    intro = (ROOT / "book" / "intro.md").read_text()
    for label in ("chap-running", "chap-status", "chap-references", "chap-execution"):
        assert f"{{ref}}`{label}`" in intro or f"<{label}>`" in intro, f"intro.md: no link to {label}"


def test_running_page_gives_the_launch_commands() -> None:
    text = (ROOT / "book" / "running.md").read_text()
    for command in ("git clone", "make book", "make test", "jupyter lab", "jupytext --to ipynb",
                    "papermill", "-p preset full", "python -m softseg reproduce", "--preset full"):
        assert command in text, f"book/running.md: missing {command!r}"


def test_book_renders_math_offline_and_pins_the_browser_test() -> None:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "sphinx-mathjax-offline" in config["sphinx"]["extra_extensions"]
    assert config["execute"]["raise_on_error"] is True and config["execute"]["execute_notebooks"] == "force"
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    for package in ("playwright", "sphinx-mathjax-offline", "sphinxcontrib-bibtex", "jupyter-book"):
        assert package in pins, f"requirements.txt: pin {package}"
    assert pins["jupyter-book"].startswith("1."), "Jupyter Book stays at 1.x"


def test_make_test_requires_the_browser_and_installs_chromium() -> None:
    makefile = (ROOT / "Makefile").read_text()
    test_rule = makefile[makefile.index("\ntest:"):]
    assert "SOFTSEG_REQUIRE_BROWSER=1" in test_rule.split("\n\n")[0]
    assert "chromium" in test_rule.split("\n")[1], "make test must depend on the chromium target"
    assert "apt-get install -y" in makefile and "command -v chromium" in makefile
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")
