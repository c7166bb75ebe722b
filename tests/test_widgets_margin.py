"""Tests of :mod:`softseg.widgets.margin` (the 1-D toy of the margin-calibration chapter)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from softseg.widgets import margin


def test_curves_default_state():
    c = margin.toy_margin_curves()
    assert c["density"].shape == (2, c["x"].size)
    assert set(c["boundary"]) == set(c["iou"])
    b = c["boundary"]
    assert b["offsets (eq. 6 as printed)"] > b["cross-entropy"] > b["offsets, sides swapped"]
    best = np.mean(c["iou"]["mIoU-optimal"])
    assert all(np.mean(v) <= best + 1e-12 for v in c["iou"].values())


@pytest.mark.parametrize("params", [dict(n_major=5000.0, n_minor=5000.0, tau=1.0, v=0.1, separation=1.0),
                                    dict(n_major=9900.0, n_minor=100.0, tau=50.0, v=10.0, separation=3.0)])
def test_draw_with_non_default_values(params):
    fig = margin.draw_toy_margins(**params)
    assert len(fig.axes) == 2
    assert len(fig.axes[1].get_lines()) == 5  # one vertical line per boundary
    plt.close(fig)


def test_balanced_classes_have_equal_margins():
    c = margin.toy_margin_curves(n_major=4000.0, n_minor=4000.0)
    assert c["rho_0k"][0] == pytest.approx(c["rho_0k"][1])


@pytest.mark.parametrize("kwargs, match", [({"tau": 0.0}, "tau"), ({"v": -1.0}, "v"), ({"n_minor": 0.0}, "n_minor")])
def test_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        margin.toy_margin_curves(**kwargs)


def test_draw_rejects_params_with_curves():
    with pytest.raises(ValueError, match="params: expected none"):
        margin.draw_toy_margins(margin.toy_margin_curves(), tau=2.0)


def test_widget_builds():
    pytest.importorskip("ipywidgets")
    w = margin.margin_widget()
    assert len(w.children) == 3
    plt.close("all")
