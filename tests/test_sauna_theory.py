"""Tests of :mod:`softseg.sauna_theory` (SAUNA paper, Sects. 3.3-3.4, Props. 1-3)."""

from __future__ import annotations

import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from softseg import sauna_theory as th
from softseg.losses import generalized_jml


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_delta_jml_equals_gjml_on_unit_cube(dtype):
    g = torch.Generator().manual_seed(0)
    a, b = (2 * torch.rand(2, 50, 16, generator=g, dtype=dtype) - 1)
    torch.testing.assert_close(th.delta_jml(a, b), generalized_jml(a[:, None], b[:, None], reduction="none")[:, 0])


@settings(deadline=None, max_examples=80)
@given(st.floats(-1e6, 1e6), st.floats(1e-3, 1e6), st.integers(1, 12), st.integers(0, 2**31))
def test_prop1_random_pairs_any_hypercube(alpha, width, dim, seed):
    """Proposition 1 on [alpha, alpha + width]^D: no pair breaks an axiom."""
    g = torch.Generator().manual_seed(seed)
    a, b = alpha + width * torch.rand(2, 64, dim, generator=g, dtype=torch.float64)
    b[:8] = a[:8]  # some equal pairs
    assert th.semimetric_violations(a, b) == {"reflexivity": 0, "positivity": 0, "symmetry": 0, "range": 0}


@pytest.mark.parametrize("alpha, beta", [(-1, 1), (0, 1), (2, 5), (-7, -3), (-1e-300, 1e-300), (-3, 1e8)])
def test_prop1_adversarial(alpha, beta):
    """The rewritten form (supp. eq. 2) breaks no axiom; eq. (6) as printed loses only pairs whose
    true Delta is below float64's resolution near 1 (reflexivity: 0 for a != b)."""
    a, b = th.adversarial_pairs(alpha, beta, dim=5)
    assert (a >= alpha).all() and (b <= beta).all() and (a <= beta).all() and (b >= alpha).all()
    assert th.semimetric_violations(a, b, form="supp2") == {"reflexivity": 0, "positivity": 0, "symmetry": 0, "range": 0}
    bad = th.semimetric_violations(a, b, per_pair=True)
    assert not (bad["positivity"] | bad["symmetry"] | bad["range"]).any()
    exact = th.delta_jml(a, b, form="supp2")
    assert bad["reflexivity"].any() and (exact[bad["reflexivity"]] > 0).all()
    assert (exact[bad["reflexivity"]] < torch.finfo(torch.float64).eps).all()


def test_delta_jml_forms():
    g = torch.Generator().manual_seed(1)
    a, b = 4 * torch.rand(2, 100, 7, generator=g, dtype=torch.float64) - 2
    torch.testing.assert_close(th.delta_jml(a, b), th.delta_jml(a, b, form="supp2"))
    x = torch.tensor([1.0], dtype=torch.float64)
    y = torch.nextafter(x, torch.zeros(1, dtype=torch.float64))
    assert th.delta_jml(x, y) == 0 and 0 < th.delta_jml(x, y, form="supp2") < 1e-15
    with pytest.raises(ValueError, match="form: expected one of"):
        th.delta_jml(x, y, form="eq7")


def test_jml_coordinate_identities():
    assert th.jml_coordinate_identities() == {"sum": True, "difference": True, "gap": True}


def test_delta_jml_values_and_errors():
    assert th.delta_jml(torch.zeros(3), torch.zeros(3)) == 0                      # 0/0 := 0
    assert th.delta_jml(torch.tensor([2.0]), torch.tensor([-2.0])) == 2
    with pytest.raises(ValueError, match="a and b|same shape|expected"):
        th.delta_jml(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        th.delta_jml(torch.tensor([float("nan")]), torch.zeros(1))
    with pytest.raises(ValueError, match="0-d"):
        th.delta_jml(torch.tensor(1.0), torch.tensor(1.0))
    with pytest.raises(ValueError, match="alpha < beta"):
        th.adversarial_pairs(1, 1)


def test_jml_scalar_facts():
    assert th.jml_scalar_facts() == {"closed_form": True, "symmetry": True, "positivity": True, "reflexivity": True}


@pytest.mark.parametrize("gamma", [1, 2, 0.5])
def test_focal_l1_analysis(gamma):
    out = th.focal_l1_analysis(gamma)
    u = sp.Symbol("u", positive=True)
    y = out["y"]
    assert out["stationary"]["C"] == [] and out["stationary"]["D"] == []
    assert [sp.simplify(r - y) for r in out["stationary"]["E"] + out["stationary"]["F"]] == [0, 0]
    assert out["derivative_sign"] == {"C": 1, "D": -1, "E": -1, "F": 1}
    assert sp.simplify(out["spurious_value"] - (1 + y)) == 0
    assert sp.simplify(out["derivative_at_minus_one"] - y) == 0
    assert out["global_value"] == 0
    if gamma == 1:
        assert [sp.simplify(v - 2 / y) for v in out["second_derivative_at_y"]] == [0, 0]
    assert u in out["y"].free_symbols


def test_stable_focal_l1_proof():
    proof = th.stable_focal_l1_proof()
    assert all(proof.values())
    assert {"jump_nonnegative", "jump_zero_at_one"} <= set(proof)


def test_combined_loss_is_gjml_plus_stable():
    from softseg.losses import stable_focal_l1_loss

    g = torch.Generator().manual_seed(2)
    f, y = 2 * torch.rand(2, 3, 5, generator=g, dtype=torch.float64) - 1
    got = th.combined_loss(f, y, gamma=2.0)
    assert got.shape == (3,)
    want = generalized_jml(f[:, None], y[:, None], reduction="none")[:, 0] \
        + stable_focal_l1_loss(f, y, gamma=2.0, reduction="none").mean(-1)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("n", [2, 16])
def test_wrong_sign_valley(n):
    """1 + A/F + (A + F)/n in the wrong-sign region, minimal at F = sqrt(nA): zero gradient,
    closed-form value, flat along the level set, higher off it."""
    g = torch.Generator().manual_seed(n)
    y = (2 * torch.rand(n, generator=g, dtype=torch.float64) - 1) * 0.9
    y = torch.where(y.abs() < 0.05, torch.full_like(y, 0.3), y)
    out = th.wrong_sign_valley(y)
    f = out["f"]
    assert (torch.sign(f) == -torch.sign(y)).all() and (f.abs() > y.abs()).all() and (f.abs() < 1).all()
    torch.testing.assert_close(f.abs().sum(), torch.sqrt(n * y.abs().sum()))
    assert out["grad"].abs().max() < 1e-12
    torch.testing.assert_close(out["loss"], out["closed_form"])
    assert out["loss"] > th.combined_loss(y, y) == 0
    # moving along {sum |f_i| = F} (opposite steps on two pixels) keeps the loss; changing F raises it
    step = torch.zeros(n, dtype=torch.float64)
    step[0], step[1] = 1e-3 * torch.sign(f[0]), -1e-3 * torch.sign(f[1])
    torch.testing.assert_close(th.combined_loss(f + step, y), out["loss"], rtol=0, atol=1e-12)
    for scale in (0.99, 1.01):
        assert th.combined_loss(f * scale, y) > out["loss"]


@pytest.mark.parametrize("y, match", [
    (torch.tensor([0.5, 0.0], dtype=torch.float64), "0"),
    (torch.tensor([1.0, -1.0], dtype=torch.float64), "some"),
    (torch.zeros(2, 2, dtype=torch.float64), "1-D"),
    (torch.tensor([1.5, 0.2], dtype=torch.float64), "outside"),
])
def test_wrong_sign_valley_errors(y, match):
    with pytest.raises(ValueError, match=match):
        th.wrong_sign_valley(y)


def test_count_local_minima_focal_and_stable():
    ys = torch.tensor([-0.6, -0.1, 0.3, 0.9], dtype=torch.float64)
    counts, argmin, far = th.count_local_minima("focal", ys, [1.0, 2.0], n_grid=801)
    assert (counts == 2).all()
    torch.testing.assert_close(far, -torch.sign(ys).expand(2, 4))      # spurious at f = -sign(y)
    torch.testing.assert_close(argmin, ys.expand(2, 4))
    counts, argmin, _ = th.count_local_minima("stable", ys, [0.25, 1.0, 3.0], n_grid=801)
    assert (counts == 1).all()
    torch.testing.assert_close(argmin, ys.expand(3, 4))


def test_count_local_minima_ends_of_range():
    """y = +-1: no spurious minimum for either loss (piece C is a point)."""
    ys = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    for name in ("focal", "stable"):
        counts, _, _ = th.count_local_minima(name, ys, [1.0], n_grid=401)
        assert (counts == 1).all()


def test_descend():
    y = torch.full((4,), 0.5, dtype=torch.float64)
    f0 = torch.tensor([-0.9, -0.6, 0.1, 0.95], dtype=torch.float64)
    torch.testing.assert_close(th.descend("focal", y, f0, steps=500), torch.tensor([-1.0, -1.0, 0.5, 0.5],
                               dtype=torch.float64), atol=2e-3, rtol=0)
    torch.testing.assert_close(th.descend("stable", y, f0, steps=500), y, atol=2e-3, rtol=0)


@pytest.mark.parametrize("call, match", [
    (lambda: th.count_local_minima("l2", torch.zeros(2, dtype=torch.float64), [1.0]), "name"),
    (lambda: th.count_local_minima("focal", torch.zeros(2, 2, dtype=torch.float64), [1.0]), "1-D"),
    (lambda: th.count_local_minima("focal", torch.zeros(2, dtype=torch.float64), [1.0], n_grid=2), "n_grid"),
    (lambda: th.grid_local_minima(torch.zeros(1)), "at least 2 points"),
    (lambda: th.descend("stable", torch.zeros(2), torch.zeros(3)), "shape"),
])
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_valley_perturbations():
    """At a valley point every small move raises the loss or leaves it (to rounding); moves that
    keep sum |f_i| leave it."""
    g = torch.Generator().manual_seed(3)
    mag = 0.05 + 0.9 * torch.rand(12, generator=g, dtype=torch.float64)
    y = mag * torch.where(torch.rand(12, generator=g, dtype=torch.float64) < 0.5, -1.0, 1.0)
    f = th.wrong_sign_valley(y)["f"]
    ch = th.valley_perturbations(f, y, n_dirs=200, generator=g)
    assert ch["random"].shape == ch["along"].shape == (200,)
    assert ch["random"].min() > -1e-12 and ch["random"].max() > 1e-9
    assert ch["along"].abs().max() < 1e-12
    # at the target itself, every move raises the loss (a strict minimum)
    assert th.valley_perturbations(y, y, n_dirs=50, generator=g)["random"].min() > 0
    with pytest.raises(ValueError, match="n_dirs"):
        th.valley_perturbations(f, y, n_dirs=0)
