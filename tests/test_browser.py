"""The rendered book as readers see it: every page opened in headless Chromium.

A session-scoped fixture builds the book once (``jupyter-book build . --all --keep-going -W``)
into ``_build/html``, then one browser opens every page of ``_toc.yml`` in sequence and asserts,
per page:

- no Python traceback, error or stderr output cell and no Sphinx error node is rendered;
- every ``<img>`` has loaded (``naturalWidth > 0``);
- MathJax has finished (``MathJax.startup.promise``), no raw TeX (``$$``, ``\\(``, ``\\[``,
  ``$...$`` with a backslash, ``^`` or ``_``) is left in a text node outside code, no MathJax
  error node exists, and a page with math has at least one ``mjx-container``;
- every internal ``<a href>`` points to an existing file and, with a fragment, to an existing
  ``id`` in it;
- a page with a live widget shows a static figure before it;

and the reproduction-status page lists every table of every committed result of every
registered reproduction and every claim of :mod:`softseg.claims`, each claim with a link to the
section that asserts it. A full-page screenshot of each page goes to
``_build/screenshots/<page>.png``.

The browser is the system's Chromium (Debian's ``chromium``; ``SOFTSEG_CHROMIUM`` names another
binary), driven by Playwright through ``executable_path`` — Playwright's own browser download is
never used. Every request that is not a local file is aborted, so the pages are checked as an
offline reader sees them (MathJax is served from the book itself by ``sphinx-mathjax-offline``).

Without Chromium or Playwright the module is skipped with the reason, unless
``SOFTSEG_REQUIRE_BROWSER`` is set (``make test`` sets it), in which case it fails.

The build does not execute the chapters again: each is executed once per session by papermill in
its ``fast`` preset (``conftest.NotebookRuns``, shared with ``tests/test_notebooks.py``), and the
build reads those outputs from a jupyter-cache seeded for it (``execute_notebooks: cache`` in a
copy of ``_config.yml``). The book that ``make book`` builds always executes (``force``).

Reusing a build: when ``SOFTSEG_RUN_ID`` is set and ``_build/html/.softseg-run-id`` holds the same
value, the book was built by ``make book`` in the same ``make`` invocation (``make book test``)
and is used as it is. ``SOFTSEG_BOOK_HTML=PATH`` tests an existing build without building
(for iterating on this file; never set by ``make``).
"""

from __future__ import annotations

import html.parser
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from conftest import ROOT, NotebookRun, NotebookRuns, book_config, toc_files, toc_notebooks

BUILD_DIR = ROOT / "_build"
SCREENSHOTS = BUILD_DIR / "screenshots"
STAMP_NAME = ".softseg-run-id"
BUILD_TIMEOUT_S = 1500  # the whole book; with a chapter whose papermill run failed, executed again
PAGE_TIMEOUT_MS = 30_000  # navigation, MathJax and image loading, per page
STATUS_PAGE = "notebooks/reproduction_status"


# --------------------------------------------------------------------------- the browser


def _chromium() -> str | None:
    explicit = os.environ.get("SOFTSEG_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _browser_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -r requirements.txt)"
    if _chromium() is None:
        return "no chromium binary on PATH (apt-get install -y chromium, or set SOFTSEG_CHROMIUM)"
    return None


@pytest.fixture(scope="session")
def browser_available() -> None:
    reason = _browser_missing()
    if reason is None:
        return
    if os.environ.get("SOFTSEG_REQUIRE_BROWSER"):
        pytest.fail(f"SOFTSEG_REQUIRE_BROWSER is set but the browser test cannot run: {reason}", pytrace=False)
    pytest.skip(f"browser test skipped: {reason} (set SOFTSEG_REQUIRE_BROWSER=1 to make this an error)")


# --------------------------------------------------------------------------- the build


class BookBuild:
    """Where the HTML is, how the build that produced it went, and how many chapters it rendered
    from the notebook test's executions (``None``: not built here)."""

    def __init__(self, html: Path, returncode: int, log: str, how: str, cached: int | None = None) -> None:
        self.html, self.returncode, self.log, self.how, self.cached = html, returncode, log, how, cached


def built_in_this_run(html: Path, run_id: str | None) -> bool:
    """True only when ``html`` holds a book stamped by ``make book`` with this ``make`` run's id."""
    stamp = html / STAMP_NAME
    return bool(run_id) and (html / "index.html").is_file() and stamp.is_file() and stamp.read_text().strip() == run_id


@pytest.fixture(scope="session")
def book(browser_available, request, tmp_path_factory) -> BookBuild:
    explicit = os.environ.get("SOFTSEG_BOOK_HTML")
    if explicit:
        html = Path(explicit).resolve()
        if not (html / "index.html").is_file():
            pytest.fail(f"SOFTSEG_BOOK_HTML={explicit}: expected a built book with index.html", pytrace=False)
        return BookBuild(html, 0, "", f"given by SOFTSEG_BOOK_HTML={explicit}")
    html = BUILD_DIR / "html"
    run_id = os.environ.get("SOFTSEG_RUN_ID")
    stamp = html / STAMP_NAME
    if built_in_this_run(html, run_id):
        return BookBuild(html, 0, "", f"reused: built by `make book` in this run ({run_id})")
    # The chapters are executed by the notebook test's papermill runs (each once per session) and
    # the build renders those outputs: executing them again in the build would double the time.
    runs: NotebookRuns = request.getfixturevalue("notebook_runs")
    start = time.perf_counter()
    executed = [runs[path] for path in toc_notebooks()]
    folder = tmp_path_factory.mktemp("book-build")
    cached = seed_execution_cache(folder / "jupyter_cache", executed)
    config = cached_build_config(folder, folder / "jupyter_cache")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    run = subprocess.run(
        [str(jupyter_book), "build", str(ROOT), "--all", "--keep-going", "--warningiserror",
         "--config", str(config), "--path-output", str(ROOT)],  # output beside the config otherwise
        cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
        env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
    )
    if run.returncode == 0 and run_id:
        stamp.write_text(run_id + "\n")
    log = run.stdout + run.stderr
    return BookBuild(html, run.returncode, log,
                     f"built in {time.perf_counter() - start:.0f} s, with {cached} of {len(executed)} "
                     "chapters' outputs from the notebook test's runs", cached=cached)


def seed_execution_cache(cache_dir: Path, runs: list[NotebookRun]) -> int:
    """Put each successfully executed chapter into a fresh jupyter-cache at ``cache_dir``, keyed
    as myst-nb looks it up (the source's code cells and kernelspec); returns how many.

    The cached notebook is the *source* read by jupytext with papermill's outputs copied onto
    its code cells, so the build renders exactly the source's cells; papermill's injected
    ``preset = "fast"`` cell (the source's own default) is dropped. A chapter whose run failed is
    left out, and the build executes it itself and reports its failure.
    """
    import jupytext
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(cache_dir))
    count = 0
    for run in runs:
        if run.executed is None:
            continue
        source = jupytext.read(run.source)
        done = nbformat.read(run.executed, as_version=4)
        done_cells = [c for c in done.cells if c.cell_type == "code"
                      and "injected-parameters" not in c.metadata.get("tags", [])]
        source_cells = [c for c in source.cells if c.cell_type == "code"]
        if [c.source for c in done_cells] != [c.source for c in source_cells]:
            raise AssertionError(f"{run.executed}: its code cells are not those of {run.source}")
        for cell, executed_cell in zip(source_cells, done_cells):
            cell.outputs, cell.execution_count = executed_cell.outputs, executed_cell.execution_count
        for key in ("language_info", "widgets"):
            if key in done.metadata:
                source.metadata[key] = done.metadata[key]
        cache.cache_notebook_bundle(
            CacheBundleIn(source, str(run.source), data={"execution_seconds": run.seconds}),
            check_validity=False, overwrite=True)
        count += 1
    return count


def cached_build_config(folder: Path, cache_dir: Path) -> Path:
    """``_config.yml`` with execution read from ``cache_dir`` (``execute_notebooks: cache``)."""
    import yaml

    path = folder / "_config.yml"
    path.write_text(yaml.safe_dump(book_config(execute_notebooks="cache", cache=str(cache_dir)), sort_keys=False))
    return path


@pytest.mark.notebook  # builds and executes the book: not in the quick loop
def test_book_builds_without_warnings(book: BookBuild) -> None:
    """The build itself: no failing cell, no Sphinx warning (``-W --keep-going``)."""
    if book.returncode != 0:
        problems = [line for line in book.log.splitlines()
                    if re.search(r"WARNING|ERROR|Error|Traceback", line) and "[IPKernelApp]" not in line]
        pytest.fail(f"jupyter-book build exited {book.returncode}; warnings and errors:\n"
                    + "\n".join(problems[-60:] or book.log.splitlines()[-60:]), pytrace=False)
    assert (book.html / "index.html").is_file()
    if book.cached is not None:
        # Built here: every chapter the notebook test executed must have been rendered from that
        # run. A miss (the cache keys on the code cells as myst-nb reads them) would silently
        # execute the chapter a second time and double the test run.
        used = len(re.findall(r"Using cached notebook", book.log))
        assert used == book.cached, f"{book.how}, but the build used {used} of them: {book.log[-2000:]}"


# --------------------------------------------------------------------------- the pages


@pytest.fixture(scope="session")
def browser(book):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=_chromium(), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        context = chromium.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        blocked: list[str] = []

        def offline(route):
            url = route.request.url
            if url.startswith(("file:", "data:", "blob:", "about:")):
                route.continue_()
            else:
                blocked.append(url)
                route.abort()

        context.route("**/*", offline)
        context.blocked = blocked
        yield context
        context.close()
        chromium.close()


#: One JavaScript pass over a loaded page; returns everything the assertions need.
PAGE_PROBE = r"""
async (timeoutMs) => {
  const deadline = (p, what) => Promise.race([p, new Promise((_, reject) =>
      setTimeout(() => reject(new Error(what + " did not finish in " + timeoutMs + " ms")), timeoutMs))]);
  const out = {mathjax: "absent"};
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await deadline(MathJax.startup.promise, "MathJax.startup.promise");
    out.mathjax = "typeset";
  } else if (window.MathJax && document.querySelector("script[src*='mathjax'], script[id='MathJax-script']")) {
    out.mathjax = "loaded but not started";
  }
  const images = Array.from(document.images);
  await deadline(Promise.all(images.map(img => img.complete ? null :
      new Promise(r => { img.addEventListener("load", r); img.addEventListener("error", r); }))), "images");
  out.images = images.map(img => ({src: img.getAttribute("src") || "", width: img.naturalWidth}));
  const main = document.querySelector("main") || document.body;
  const errorSel = [".cell_output .output.traceback", ".cell_output .output.stderr", ".cell_output .output.error",
                    ".cell_output .stderr", "div.system-message", "span.problematic", ".nboutput .stderr"].join(",");
  out.errorNodes = Array.from(main.querySelectorAll(errorSel)).map(e => e.className + ": " + e.textContent.slice(0, 300));
  out.tracebackText = (main.innerText.match(/Traceback \(most recent call last\)[^\n]*/g) || []);
  out.mathBlocks = main.querySelectorAll(".math").length;
  out.mjxContainers = document.querySelectorAll("mjx-container").length;
  out.mathErrors = Array.from(document.querySelectorAll("mjx-merror")).map(e => e.getAttribute("data-mjx-error") || e.textContent);
  const raw = [];
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT, {acceptNode: n =>
      n.parentElement.closest("pre, code, script, style, mjx-container, .highlight, textarea, kbd")
        ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT});
  const rawTeX = /\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\$[^$\n]*[\\^_][^$\n]*\$/;
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (rawTeX.test(n.textContent)) raw.push(n.textContent.trim().slice(0, 200));
  }
  out.rawTeX = raw;
  out.links = Array.from(document.querySelectorAll("a[href]")).map(a => a.href);
  const widgets = Array.from(main.querySelectorAll("script[type='application/vnd.jupyter.widget-view+json']"));
  out.widgetsWithoutFigure = widgets.filter(w => !images.some(img =>
      main.contains(img) && (img.compareDocumentPosition(w) & Node.DOCUMENT_POSITION_FOLLOWING))).length;
  out.widgets = widgets.length;
  return out;
}
"""


class _Ids(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs) -> None:
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.ids.add(value)


_ID_CACHE: dict[Path, set[str]] = {}


def _ids_of(path: Path) -> set[str]:
    if path not in _ID_CACHE:
        parser = _Ids()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        _ID_CACHE[path] = parser.ids
    return _ID_CACHE[path]


def broken_links(links: list[str], html_root: Path) -> list[str]:
    """The internal links (``file:`` URLs) whose file or fragment target does not exist."""
    broken = []
    for link in dict.fromkeys(links):
        parts = urlsplit(link)
        if parts.scheme != "file":
            continue  # external: not followed (no network), not the book's to guarantee
        target = Path(unquote(parts.path))
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"{link}: no such file")
            continue
        try:
            target.relative_to(html_root)
        except ValueError:
            broken.append(f"{link}: points outside the built book")
            continue
        fragment = unquote(parts.fragment)
        if fragment and target.suffix == ".html" and fragment not in _ids_of(target):
            broken.append(f"{link}: no element with id {fragment!r}")
    return broken


def _page_file(html_root: Path, doc: str) -> Path:
    return html_root / f"{doc}.html"


def _open(context, path: Path):
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(path.as_uri(), wait_until="load")
    return page


@pytest.mark.notebook
@pytest.mark.parametrize("doc", toc_files(), ids=lambda d: Path(d).name)
def test_page_renders(doc: str, book: BookBuild, browser) -> None:
    path = _page_file(book.html, doc)
    assert path.is_file(), f"{doc}.md was not rendered to {path} ({book.how}; exit {book.returncode})"
    page = _open(browser, path)
    try:
        probe = page.evaluate(PAGE_PROBE, PAGE_TIMEOUT_MS)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / f"{Path(doc).name}.png"
        page.screenshot(path=str(shot), full_page=True)
    finally:
        page.close()
    where = f"{doc}.html"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{where}: no screenshot written to {shot}"
    assert probe["errorNodes"] == [], f"{where}: error/stderr output rendered: {probe['errorNodes'][:3]}"
    assert probe["tracebackText"] == [], f"{where}: a traceback is rendered: {probe['tracebackText'][:3]}"
    missing = [img["src"] for img in probe["images"] if img["width"] == 0]
    assert missing == [], f"{where}: images that did not load: {missing}"
    if probe["mathBlocks"]:
        assert probe["mathjax"] == "typeset", f"{where}: has {probe['mathBlocks']} math blocks but MathJax {probe['mathjax']}"
        assert probe["mjxContainers"] >= 1, f"{where}: MathJax finished but typeset no math"
    assert probe["mathErrors"] == [], f"{where}: MathJax errors: {probe['mathErrors'][:5]}"
    assert probe["rawTeX"] == [], f"{where}: raw TeX left in the text: {probe['rawTeX'][:5]}"
    assert probe["widgetsWithoutFigure"] == 0, (
        f"{where}: {probe['widgetsWithoutFigure']} of {probe['widgets']} widgets have no static figure before them")
    broken = broken_links(probe["links"], book.html)
    assert broken == [], f"{where}: broken internal links:\n" + "\n".join(broken[:20])


@pytest.mark.notebook
def test_status_page_lists_every_table_and_claim(book: BookBuild, browser) -> None:
    from softseg import claims, reproduce, results

    path = _page_file(book.html, STATUS_PAGE)
    assert path.is_file(), f"the status page was not rendered ({book.how}; exit {book.returncode})"
    page = _open(browser, path)
    try:
        rows = page.evaluate("""() => Array.from(document.querySelectorAll("main table tr")).map(tr => ({
            text: tr.innerText.replace(/\\s+/g, " "),
            hrefs: Array.from(tr.querySelectorAll("a[href]")).map(a => a.getAttribute("href"))}))""")
        headings = page.evaluate("""() => Array.from(document.querySelectorAll("main h2, main h3, main h4"))
            .map(h => h.innerText.replace(/\\s+/g, " ").replace(/#$/, "").trim())""")
    finally:
        page.close()
    text = " ".join(r["text"] for r in rows) + " " + " ".join(headings)
    for name in reproduce.registry():
        assert name in text, f"registered reproduction {name!r} is not listed on the status page"
    for source, table in dict.fromkeys((c["source"], c["table"]) for c in results.status_table(results.load_status_records())):
        heading = results.status_heading(source, table)
        assert any(h.startswith(heading) for h in headings), f"no section {heading!r} on the status page: {headings}"
    for claim in claims.CLAIMS + claims.EXPERIMENTS:
        matching = [r for r in rows if claim.item in r["text"] and claim.paper in r["text"]]
        assert matching, f"{claim.paper} {claim.item} is not listed on the status page"
        assert any(h.endswith(f"#{claim.label}") for r in matching for h in r["hrefs"]), (
            f"{claim.paper} {claim.item}: no link to its section #{claim.label}")



# --------------------------------------------------------------------------- the link checker itself


def test_broken_links_finds_missing_files_and_anchors(tmp_path: Path) -> None:
    html_root = tmp_path / "html"
    (html_root / "sub").mkdir(parents=True)
    (html_root / "index.html").write_text('<section id="top"><a name="old-anchor"></a></section>')
    (html_root / "sub" / "page.html").write_text("<p id='x'>x</p>")
    (html_root / "notes.txt").write_text("plain")
    outside = tmp_path / "outside.html"
    outside.write_text("<p>outside</p>")
    base = html_root.as_uri()
    links = [
        f"{base}/index.html#top", f"{base}/index.html#old-anchor", f"{base}/sub/page.html", f"{base}/sub/",
        f"{base}/sub/page.html#x", f"{base}/notes.txt#anything", "https://example.org/#nowhere",
        f"{base}/index.html#top",  # duplicates are reported once
        f"{base}/missing.html", f"{base}/sub/page.html#gone", outside.as_uri(),
    ]
    broken = broken_links(links, html_root)
    assert broken == [
        f"{base}/sub/: no such file",  # a folder without index.html
        f"{base}/missing.html: no such file",
        f"{base}/sub/page.html#gone: no element with id 'gone'",
        f"{outside.as_uri()}: points outside the built book",
    ]


def test_browser_missing_names_the_reason(monkeypatch) -> None:
    monkeypatch.setenv("SOFTSEG_CHROMIUM", "/nonexistent/chromium")
    reason = _browser_missing()
    assert reason is not None and ("chromium" in reason or "playwright" in reason)


@pytest.mark.parametrize(
    ("stamp", "run_id", "index", "expected"),
    [
        ("123-4\n", "123-4", True, True),
        ("123-4\n", "123-5", True, False),  # a build of another make run
        (None, "123-4", True, False),  # a build without a stamp (plain jupyter-book build)
        ("123-4\n", None, True, False),  # pytest run outside make: always build
        ("123-4\n", "", True, False),
        ("123-4\n", "123-4", False, False),  # stamped but empty
    ],
)
def test_a_build_is_reused_only_from_the_same_make_run(tmp_path: Path, stamp, run_id, index, expected) -> None:
    if stamp is not None:
        (tmp_path / STAMP_NAME).write_text(stamp)
    if index:
        (tmp_path / "index.html").write_text("<html></html>")
    assert built_in_this_run(tmp_path, run_id) is expected
