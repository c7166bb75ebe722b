"""The book's figure style, and the status page's figure.

:func:`book_style` sets one look for every figure of the book: sizes that fit the page column,
fonts a step smaller than Matplotlib's defaults, light grids, no top/right spines, and a colour
cycle that colour-blind readers can tell apart (Okabe & Ito's palette, ordered so that the first
colours differ most in lightness as well as hue). It works as a plain call (``book_style()``
once after the imports: the rest of the notebook uses it) or as a context manager (``with
book_style(): ...``, restoring the previous settings on exit).

:func:`status_figure` draws ours against the paper's value for every compared cell of the
reproduction-status page (:func:`softseg.results.status_table`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["PALETTE", "VERDICT_COLOURS", "BOOK_RC", "book_style", "status_figure"]

#: Okabe & Ito's colour-blind-safe palette: blue, vermillion, bluish green, orange, reddish purple,
#: sky blue, yellow, black.
PALETTE: tuple[str, ...] = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")

#: Colour of each verdict of :func:`softseg.results.verdict` on the status page's figure.
VERDICT_COLOURS: Mapping[str, str] = {
    "matches": PALETTE[2], "differs": PALETTE[1], "not compared": "#999999", "missing": PALETTE[7],
}

#: The rcParams :func:`book_style` sets.
BOOK_RC: Mapping[str, Any] = {
    "figure.figsize": (6.0, 3.4),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "lines.markersize": 5,
    "image.cmap": "viridis",
}


class _Style(contextlib.AbstractContextManager):
    """Applied on creation; ``__exit__`` restores what was there before."""

    def __init__(self, overrides: Mapping[str, Any]) -> None:
        import matplotlib as mpl
        from cycler import cycler

        rc = {**BOOK_RC, "axes.prop_cycle": cycler(color=list(PALETTE)), **overrides}
        unknown = sorted(set(rc) - set(mpl.rcParams))
        if unknown:
            raise ValueError(f"overrides: expected Matplotlib rcParams keys, got unknown {unknown}")
        self._saved = {k: mpl.rcParams[k] for k in rc}
        mpl.rcParams.update(rc)

    def __exit__(self, *exc) -> None:
        import matplotlib as mpl

        mpl.rcParams.update(self._saved)

    def _ipython_display_(self) -> None:
        """Show nothing when ``book_style()`` ends a notebook cell."""


def book_style(**overrides: Any) -> contextlib.AbstractContextManager:
    """Apply the book's figure style; use as a call or as a context manager.

    Parameters
    ----------
    **overrides
        rcParams to set on top of :data:`BOOK_RC`, with dots written as ``__``
        (``book_style(font__size=10)``) or passed as a dict (``book_style(**{"font.size": 10})``).

    Returns
    -------
    context manager
        Already applied; leaving a ``with`` block restores the previous settings.

    Raises
    ------
    ValueError
        If an override is not a Matplotlib rcParams key.
    """
    return _Style({key.replace("__", "."): value for key, value in overrides.items()})


def status_figure(cells: Iterable[Mapping[str, Any]], *, title: str | None = None):
    """Ours against the paper's value for every compared cell, coloured by verdict.

    Parameters
    ----------
    cells : iterable of mappings
        Rows of :func:`softseg.results.status_table`. Only cells judged ``"matches"`` or
        ``"differs"`` are drawn (a cell without a paper value, a number of ours or a justified
        tolerance is not a comparison); the compared preset's value is plotted.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        One panel on symmetric-log axes (the errors of a converging run span decades and reach
        0), the diagonal ours = paper, and a legend with the count per verdict.
    """
    import matplotlib.pyplot as plt

    points: dict[str, list[tuple[float, float]]] = {}
    for cell in cells:
        ours = cell.get(cell.get("compared") or "full")
        if cell.get("paper") is None or ours is None or cell.get("verdict") not in ("matches", "differs"):
            continue
        points.setdefault(cell.get("verdict", "not compared"), []).append((float(cell["paper"]), float(ours)))
    fig, ax = plt.subplots(figsize=(4.8, 4.2), layout="constrained")
    values = [v for pts in points.values() for p in pts for v in p] or [0.0, 1.0]
    lo, hi = min(0.0, min(values)), max(values)
    span = hi - lo or 1.0
    tiny = max(min((abs(v) for v in values if v != 0), default=1e-3), 1e-6)
    ax.plot([lo, hi + 0.05 * span], [lo, hi + 0.05 * span], color="#555555", lw=0.8, label="ours = paper")
    for name in ("matches", "differs"):
        if name in points:
            x, y = zip(*points[name])
            ax.scatter(x, y, s=16, color=VERDICT_COLOURS[name], label=f"{name} ({len(x)})", zorder=3)
    ax.set_xscale("symlog", linthresh=tiny)
    ax.set_yscale("symlog", linthresh=tiny)
    ax.set(xlabel="paper (quoted)", ylabel="ours", title=title)
    ax.legend(loc="upper left")
    return fig
