"""Tests of :mod:`softseg.widgets.sauna`: the curves of the paper's Figure 4c and the two-pixel surfaces
that extend Figure 4."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from softseg.widgets.sauna import (
    draw_sauna_losses,
    loss_curves,
    loss_surfaces,
    sauna_losses_widget,
    surface_local_minima,
)


@pytest.mark.parametrize("y", [-0.7, 0.0, 0.4, 1.0])
@pytest.mark.parametrize("gamma", [0.5, 1.0, 3.0])
def test_curves_shape_and_minimum(y, gamma):
    c = loss_curves(y, gamma, n=201)
    assert set(c) == {"f", "focal", "stable", "gjml"}
    for key in ("focal", "stable", "gjml"):
        assert c[key].shape == (201,) and np.isfinite(c[key]).all() and (c[key] >= 0).all()
    assert (c["stable"] <= c["focal"] + 1e-15).all()                 # Prop. 3
    i = np.argmin(np.abs(c["f"] - y))
    assert c["stable"][i] == c["stable"].min()                        # global minimum at f = y (Prop. 2)


def test_curves_spurious_minimum_of_focal_at_minus_one():
    """Target 0.5: Focal-L1 ends at f = -1 with value 1 + y and rises from there (eq. 8)."""
    c = loss_curves(0.5, 1.0, n=401)
    assert c["focal"][0] == pytest.approx(1.5)
    assert c["focal"][1] > c["focal"][0]
    assert c["stable"][1] < c["stable"][0]


def test_surfaces_two_pixels():
    s = loss_surfaces(0.6, -0.2, 2.0, n=41)
    assert s["f1"].shape == (41, 41) and s["f1"][0, -1] == 1.0 and s["f2"][-1, 0] == 1.0
    # separable pixel losses: Focal-L1 has 2 x 2 local minima, Stable Focal-L1 one
    assert surface_local_minima(s["focal"]).sum() == 4
    mins = surface_local_minima(s["stable"])
    assert mins.sum() == 1
    j, i = np.argwhere(mins)[0]
    assert (s["f1"][j, i], s["f2"][j, i]) == pytest.approx((0.6, -0.2), abs=0.05)
    assert (s["gjml"] >= 0).all() and (s["gjml"] <= 2).all()
    np.testing.assert_array_equal(s["combined"], s["gjml"] + s["stable"])


def test_surfaces_combined_loss_has_a_wrong_sign_valley():
    """Default targets (0.5, -0.3): GJML + SF-L1 has, besides the target, grid minima on the
    segment of the wrong-sign quadrant where |f1| + |f2| = sqrt(n A) = sqrt(2 * 0.8) (to the grid
    step), f1 < 0 < f2 (sauna_theory.wrong_sign_valley)."""
    s = loss_surfaces(n=121)
    mins = surface_local_minima(s["combined"])
    f1, f2 = s["f1"][mins], s["f2"][mins]
    at_target = (np.abs(f1 - 0.5) < 1e-9) & (np.abs(f2 + 0.3) < 1e-9)
    assert at_target.sum() == 1 and mins.sum() > 1
    step = 2 / 120
    others = ~at_target
    assert (f1[others] < 0).all() and (f2[others] > 0).all()
    assert (np.abs(np.abs(f1[others]) + np.abs(f2[others]) - np.sqrt(1.6)) <= 2 * step).all()
    assert surface_local_minima(s["gjml"]).sum() == 3              # (0.5, -0.3), (-1, -1), (-1, 1)


def test_local_minima_helper():
    v = np.array([[3.0, 2.0, 3.0], [2.0, 1.0, 2.0], [0.5, 2.0, 3.0]])
    np.testing.assert_array_equal(surface_local_minima(v), [[0, 0, 0], [0, 0, 0], [1, 0, 0]])
    with pytest.raises(ValueError, match="expected a 2-D grid"):
        surface_local_minima(np.zeros(5))


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"y": 1.5}, ValueError, r"y: expected a number in \[-1, 1\]"),
    ({"y": "a"}, TypeError, "y: expected a real number"),
    ({"gamma": 0.0}, ValueError, "gamma"),
    ({"n": 2}, ValueError, "n: expected an integer >= 3"),
])
def test_curves_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        loss_curves(**kwargs)


def test_draw_non_default_and_widget():
    fig = draw_sauna_losses(-0.4, 0.8, 2.5, n_curve=101, n_surface=31)
    assert len(fig.axes) == 9  # 5 panels + 4 colour bars
    assert "-0.40" in fig.axes[0].get_title()
    fig2 = draw_sauna_losses(0.3, 0.3, 1.0, n_curve=51, n_surface=21, fig=fig)
    assert fig2 is fig
    pytest.importorskip("ipywidgets")  # the figure above needs only matplotlib (the GPU machine has no ipywidgets)
    widget = sauna_losses_widget()
    sliders = widget.children[0].children
    assert [s.description for s in sliders] == ["target y", "target y2", "γ"]
    sliders[2].value = 2.0  # redraws without error
