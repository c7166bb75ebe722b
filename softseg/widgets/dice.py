r"""Interactive figure of the Dice semimetric chapter: SDL vs DML on a two-pixel prediction.

For a soft target :math:`y = (y_1, y_2) \in [0, 1]^2` the widget draws the soft Dice loss
(the paper's eq. (1)) and a Dice semimetric loss (eq. (4)) over every two-pixel prediction
:math:`x = (x_1, x_2) \in [0, 1]^2`, and marks each loss's minimizer and the target. SDL's
minimum sits on a vertex of the square (for :math:`y = (0.5, 0.5)` at :math:`x = (1, 1)`,
Sect. 2.1), DML's at :math:`x = y`.

Three layers (see :mod:`softseg.widgets`): :func:`two_pixel_losses` (pure, numeric),
:func:`draw_two_pixel_losses` (a Matplotlib figure) and :func:`two_pixel_widget` (ipywidgets
sliders, imported inside).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["two_pixel_losses", "draw_two_pixel_losses", "two_pixel_widget"]


def _check_unit(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number in [0, 1], got {type(value).__name__}")
    if not 0.0 <= float(value) <= 1.0:  # NaN fails too
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    return float(value)


def two_pixel_losses(y1: float = 0.5, y2: float = 0.5, *, n: int = 101, variant: int = 1) -> dict[str, Any]:
    r"""SDL and DML of every two-pixel prediction on a grid against the target :math:`(y_1, y_2)`.

    Parameters
    ----------
    y1, y2 : float
        The soft target, each in :math:`[0, 1]`.
    n : int, default 101
        Grid points per axis on :math:`[0, 1]` (``n >= 2``; 101 puts 0.01, ..., 0.99 on the grid).
    variant : {1, 2}, default 1
        Which Dice semimetric loss.

    Returns
    -------
    dict
        ``"t"``: the grid, shape ``(n,)``; ``"sdl"``, ``"dml"``: losses of shape ``(n, n)``
        indexed ``[i, j]`` for :math:`x = (t_i, t_j)`; ``"sdl_argmin"``, ``"dml_argmin"``: the
        grid minimizers :math:`(x_1, x_2)` (the first in row-major order on ties); ``"target"``.

    Raises
    ------
    TypeError, ValueError
        If ``y1``/``y2`` is not a number in :math:`[0, 1]`, ``n < 2`` or ``variant`` is not 1 or 2.

    Notes
    -----
    .. math::

        \bar\Delta_{\mathrm{SDL}} = 1 - \frac{2\langle x, y\rangle}{\|x\|_1 + \|y\|_1}, \qquad
        \bar\Delta_{\mathrm{DML},1} = \frac{\|x - y\|_1}{\|x\|_1 + \|y\|_1}, \qquad
        \bar\Delta_{\mathrm{DML},2} = \frac{\|x - y\|_1}{2\langle x, y\rangle + \|x - y\|_1}

    (eqs. (1), (4)), computed by :mod:`softseg.losses.dice` in float64. With
    :math:`y = 0` and :math:`x = 0` both are 0 (empty pair).

    Examples
    --------
    >>> c = two_pixel_losses(0.5, 0.5)
    >>> c["sdl_argmin"], c["dml_argmin"]
    ((1.0, 1.0), (0.5, 0.5))
    """
    from ..losses import dice_semimetric_loss, soft_dice_loss

    y1, y2 = _check_unit("y1", y1), _check_unit("y2", y2)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n: expected an integer >= 2, got {n!r}")
    if variant not in (1, 2) or isinstance(variant, bool):
        raise ValueError(f"variant: expected one of (1, 2), got {variant!r}")
    t = torch.linspace(0.0, 1.0, int(n), dtype=torch.float64)
    x1, x2 = torch.meshgrid(t, t, indexing="ij")
    x = torch.stack([x1, x2], -1).reshape(-1, 1, 2)
    y = torch.tensor([y1, y2], dtype=torch.float64).expand_as(x).contiguous()
    sdl = soft_dice_loss(x, y, reduction="none").reshape(n, n)
    dml = dice_semimetric_loss(x, y, variant=int(variant), reduction="none").reshape(n, n)

    def argmin(grid: torch.Tensor) -> tuple[float, float]:
        i, j = divmod(int(grid.argmin()), int(n))
        return (round(float(t[i]), 12), round(float(t[j]), 12))

    return {"t": t.numpy(), "sdl": sdl.numpy(), "dml": dml.numpy(), "sdl_argmin": argmin(sdl),
            "dml_argmin": argmin(dml), "target": (y1, y2), "variant": int(variant)}


def draw_two_pixel_losses(y1: float = 0.5, y2: float = 0.5, *, n: int = 101, variant: int = 1,
                          fig=None):
    """Draw :func:`two_pixel_losses`: two filled contour maps (SDL, DML) over :math:`(x_1, x_2)`.

    Each panel marks the target :math:`y` (white circle) and the loss's grid minimizer (red
    cross). Returns the Matplotlib figure (a new one unless ``fig`` is given, which is cleared).

    Parameters
    ----------
    y1, y2, n, variant
        As in :func:`two_pixel_losses`.
    fig : matplotlib.figure.Figure, optional
        Figure to draw into.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    c = two_pixel_losses(y1, y2, n=n, variant=variant)
    if fig is None:
        fig = plt.figure(figsize=(8.4, 3.8))
    else:
        fig.clear()
    axes = fig.subplots(1, 2, sharey=True)
    levels = np.linspace(0.0, 1.0, 21)
    for ax, key, title in ((axes[0], "sdl", "SDL (eq. 1)"),
                           (axes[1], "dml", f"DML{c['variant']} (eq. 4)")):
        cs = ax.contourf(c["t"], c["t"], c[key].T, levels=levels, cmap="viridis")
        ax.plot(*c["target"], "o", mfc="none", mec="white", ms=11, mew=2, label="target $y$", clip_on=False, zorder=5)
        ax.plot(*c[f"{key}_argmin"], "x", color="red", ms=11, mew=2.5, label="minimizer", clip_on=False, zorder=6)
        ax.set(title=title, xlabel="$x_1$", xlim=(0, 1), ylim=(0, 1), aspect="equal")
    axes[0].set_ylabel("$x_2$")
    axes[1].legend(loc="lower left", fontsize=8, framealpha=0.8)
    fig.colorbar(cs, ax=list(axes), shrink=0.85, label="loss")
    fig.suptitle(f"two-pixel prediction $x$ against the soft target $y = ({c['target'][0]:.2f}, "
                 f"{c['target'][1]:.2f})$", fontsize=10)
    return fig


def two_pixel_widget(y1: float = 0.5, y2: float = 0.5, *, n: int = 101, variant: int = 1):
    """Sliders for :math:`y_1, y_2` and the DML variant, redrawing :func:`draw_two_pixel_losses`.

    Returns
    -------
    ipywidgets.VBox
        The sliders above an ``Output`` holding the figure; ``widget.children[0].children`` are
        the controls ``(y1, y2, variant)``.

    Raises
    ------
    ImportError
        If ipywidgets is not installed.
    """
    import ipywidgets as widgets

    from . import live_figure

    two_pixel_losses(y1, y2, n=n, variant=variant)  # validate the start values
    controls = {
        "y1": widgets.FloatSlider(value=y1, min=0.0, max=1.0, step=0.05, description="$y_1$", continuous_update=False),
        "y2": widgets.FloatSlider(value=y2, min=0.0, max=1.0, step=0.05, description="$y_2$", continuous_update=False),
        "variant": widgets.ToggleButtons(options=[("DML1", 1), ("DML2", 2)], value=variant, description="variant"),
    }
    return live_figure(controls, lambda **values: draw_two_pixel_losses(**values, n=n))
