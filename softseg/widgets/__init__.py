"""Interactive figures of the book: one module per chapter.

Each module splits a widget into three layers so that the book and the tests can use it without
a browser: a pure function that computes the curves for given parameters (tested numerically),
a function that draws them on a Matplotlib figure (the book shows its default state as a static
figure; tests call it with non-default values), and a function that wires ipywidgets sliders to
the drawing function. ``ipywidgets`` is imported only inside the last, so ``softseg`` imports on
machines without it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any


def live_figure(controls: Mapping[str, Any], draw: Callable[..., Any], *,
                rows: Sequence[Sequence[str]] | None = None) -> Any:
    """Wire ipywidgets ``controls`` to a drawing function: the wiring every chapter's widget shares.

    Parameters
    ----------
    controls : mapping of str to ipywidgets value widgets
        Keyword name of ``draw`` → the widget whose ``.value`` it takes.
    draw : callable
        ``draw(**{name: widget.value})`` returning a Matplotlib figure; it is redrawn (and the old
        figure closed) whenever a control changes, and once at the start.
    rows : sequence of sequences of names, optional
        How the controls are laid out in rows (default: one row, in the mapping's order).

    Returns
    -------
    ipywidgets.VBox
        The rows of controls (``HBox`` each) above an ``Output`` that holds the figure.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    out = widgets.Output()

    def redraw(_change: Any = None) -> None:
        with out:
            out.clear_output(wait=True)
            fig = draw(**{name: w.value for name, w in controls.items()})
            display(fig)
            plt.close(fig)

    for w in controls.values():
        w.observe(redraw, names="value")
    redraw()
    layout = rows if rows is not None else [list(controls)]
    return widgets.VBox([*(widgets.HBox([controls[name] for name in row]) for row in layout), out])
