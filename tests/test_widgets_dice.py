"""Tests of :mod:`softseg.widgets.dice`: the two-pixel SDL vs DML figure of the Dice semimetric chapter."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from softseg.widgets import dice as wd  # noqa: E402


@pytest.mark.parametrize("variant", [1, 2])
@pytest.mark.parametrize(("y1", "y2", "sdl_min"), [
    # SDL's minimizer is the vertex {y_i > D'/2} (Nordström et al., Thm 1): 1 where y is large
    (0.5, 0.5, (1.0, 1.0)), (0.3, 0.8, (0.0, 1.0)), (0.2, 0.2, (1.0, 1.0)), (0.0, 0.7, (0.0, 1.0)),
    (1.0, 1.0, (1.0, 1.0)),
])
def test_minimizers(y1, y2, sdl_min, variant):
    c = wd.two_pixel_losses(y1, y2, variant=variant)
    assert c["sdl_argmin"] == sdl_min
    assert c["dml_argmin"] == (y1, y2)  # DML is zero exactly at x = y (Theorem 1)
    assert c["dml"].min() == 0.0 and c["sdl"].shape == (101, 101)


def test_values_on_grid():
    c = wd.two_pixel_losses(0.5, 0.5, n=3)  # grid 0, 0.5, 1
    assert c["t"].tolist() == [0.0, 0.5, 1.0]
    # x = (1, 1), y = (0.5, 0.5): SDL = 1 - 2 * 1 / (2 + 1) = 1/3, DML1 = 1 / 3
    assert c["sdl"][2, 2] == pytest.approx(1 / 3) and c["dml"][2, 2] == pytest.approx(1 / 3)
    # x = (0, 0): both losses 1
    assert c["sdl"][0, 0] == 1.0 and c["dml"][0, 0] == 1.0
    c2 = wd.two_pixel_losses(0.5, 0.5, n=3, variant=2)
    # x = (1, 0): B = 0.5 + 0.5 = 1, P = 0.5, DML2 = 1 / (2 * 0.5 + 1)
    assert c2["dml"][2, 0] == pytest.approx(0.5)


def test_empty_target_and_prediction():
    c = wd.two_pixel_losses(0.0, 0.0, n=5)
    assert c["dml"][0, 0] == 0.0 and c["dml_argmin"] == (0.0, 0.0)


@pytest.mark.parametrize(("kw", "error", "match"), [
    (dict(y1=1.5), ValueError, r"y1: expected a number in \[0, 1\]"),
    (dict(y2=float("nan")), ValueError, r"y2: expected a number in \[0, 1\]"),
    (dict(y1="a"), TypeError, "y1: expected a real number"),
    (dict(n=1), ValueError, "n: expected an integer >= 2"),
    (dict(variant=3), ValueError, r"variant: expected one of \(1, 2\)"),
])
def test_errors(kw, error, match):
    with pytest.raises(error, match=match):
        wd.two_pixel_losses(**kw)


def test_draw_non_default():
    fig = wd.draw_two_pixel_losses(0.2, 0.9, n=21, variant=2)
    axes = fig.axes
    assert len(axes) == 3  # two panels and the colour bar
    assert "DML2" in axes[1].get_title()
    marker = [ln for ln in axes[1].lines if ln.get_label() == "minimizer"][0]
    assert np.allclose(marker.get_xydata(), [[0.2, 0.9]], atol=0.05)
    fig2 = wd.draw_two_pixel_losses(0.4, 0.4, fig=fig)  # redraw into the same figure
    assert fig2 is fig
    plt.close(fig)


def test_widget_constructs_and_reacts():
    pytest.importorskip("ipywidgets")
    w = wd.two_pixel_widget(0.3, 0.6, n=11)
    s1, s2, var = w.children[0].children
    assert (s1.value, s2.value, var.value) == (0.3, 0.6, 1)
    s1.value, var.value = 0.7, 2  # triggers a redraw
    assert len(w.children) == 2
    plt.close("all")
