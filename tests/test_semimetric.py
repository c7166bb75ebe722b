"""Tests of :mod:`softseg.semimetric`: the (semi)metric properties of the Dice-family losses.

Expected values are derived in the comments (Wang et al., *Dice Semimetric Losses*, eqs. (1)-(5),
Proposition 1, Theorems 1-3) or are exact consequences of the definitions.
"""

from __future__ import annotations

import math

import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from softseg import semimetric as sm

PROPS = settings(deadline=None, max_examples=60)
unit = st.floats(0.0, 1.0, allow_nan=False)


def vectors(p: int):
    return st.lists(unit, min_size=p, max_size=p).map(lambda v: torch.tensor(v, dtype=torch.float64))


# --------------------------------------------------------------------------- pair_loss / ratio


@pytest.mark.parametrize(("name", "expected"), [
    # x = (1, 0), y = (1, 1): S = 3, P = 1, B = 1
    ("SDL", 1 - 2 / 3), ("DML1", 1 / 3), ("DML2", 1 / 3),
    ("SJL", 1 - 1 / 2), ("JML1", 2 / 4), ("JML2", 1 / 2),
])
def test_pair_loss_values(name, expected):
    x, y = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([1.0, 1.0], dtype=torch.float64)
    assert pair_value(name, x, y) == pytest.approx(expected, abs=1e-15)


def pair_value(name, x, y):
    return float(sm.pair_loss(name, x, y))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sm.LOSS_NAMES)
def test_pair_loss_batched_shape_and_grad(name, dtype):
    x = torch.rand(4, 5, 7, dtype=dtype, requires_grad=True)
    y = torch.rand(4, 5, 7, dtype=dtype, requires_grad=True)
    out = sm.pair_loss(name, x, y)
    assert out.shape == (4, 5) and out.dtype == dtype
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()


@pytest.mark.parametrize(("args", "error", "match"), [
    (("XYZ", torch.rand(3), torch.rand(3)), ValueError, "name: expected one of"),
    (("DML1", torch.rand(3), torch.rand(4)), ValueError, r"expected equal shapes \(\.\.\., p\)"),
    (("DML1", torch.tensor(0.5), torch.tensor(0.5)), ValueError, "expected shape"),
    (("DML1", torch.ones(3, dtype=torch.long), torch.ones(3)), TypeError, "x: expected a floating-point"),
    (("DML1", torch.full((3,), 1.5), torch.rand(3)), ValueError, r"x: expected values in \[0, 1\]"),
])
def test_pair_loss_errors(args, error, match):
    with pytest.raises(error, match=match):
        sm.pair_loss(*args)


def test_triangle_ratio_degenerate_and_hard_example():
    z = torch.zeros(2, 3, dtype=torch.float64)
    assert sm.triangle_ratio("DML1", z, z, z).tolist() == [0.0, 0.0]  # 0/0 := 0 (x = y = z)
    a, b, c = (torch.tensor(v, dtype=torch.float64) for v in ([1.0, 0.0], [1.0, 1.0], [0.0, 1.0]))
    for name in ("DML1", "DML2", "SDL"):
        assert float(sm.triangle_ratio(name, a, b, c)) == pytest.approx(1.5)  # 1 / (1/3 + 1/3)
    for name in ("JML1", "JML2", "SJL"):
        assert float(sm.triangle_ratio(name, a, b, c)) == pytest.approx(1.0)  # 1 / (1/2 + 1/2)


@PROPS
@given(vectors(4), vectors(4), vectors(4))
@pytest.mark.parametrize("name", ["DML1", "DML2", "JML1", "JML2"])
def test_relaxed_triangle_inequality_property(name, x, y, z):
    """Theorem 1 / eq. (3): the ratio never exceeds the constant (float64 rounding aside)."""
    assert float(sm.triangle_ratio(name, x, y, z)) <= sm.TRIANGLE_CONSTANT[name] + 1e-9


@PROPS
@given(vectors(5), vectors(5))
@pytest.mark.parametrize("name", ["DML1", "DML2", "JML1", "JML2"])
def test_semimetric_axioms_property(name, x, y):
    """Reflexivity, positivity and symmetry (Definition 1 (i)-(iii)), exactly."""
    assert float(sm.pair_loss(name, x, x)) == 0.0
    assert float(sm.pair_loss(name, x, y)) == float(sm.pair_loss(name, y, x))
    if not torch.equal(x, y):
        assert float(sm.pair_loss(name, x, y)) > 0.0


@pytest.mark.parametrize("name", ["SDL", "SJL"])
def test_sdl_sjl_not_reflexive(name):
    x = torch.full((4,), 0.5, dtype=torch.float64)
    # SDL(x, x) = 1 - 2 * 1 / 4 = 1/2;  SJL(x, x) = 1 - 1 / (4 - 1) = 2/3
    assert float(sm.pair_loss(name, x, x)) == pytest.approx({"SDL": 0.5, "SJL": 2 / 3}[name])


# --------------------------------------------------------------------------- adversarial search


def test_adversarial_search_finds_interior_maximum():
    res = sm.adversarial_search(lambda x: -((x - 0.3) ** 2).sum(-1), 1, 3, restarts=8, steps=300, lr=0.05)
    torch.testing.assert_close(res.points[0], torch.full((3,), 0.3, dtype=torch.float64), atol=1e-3, rtol=0)
    assert res.trace.shape == (301,) and (res.trace.diff() >= 0).all()  # best-so-far never drops
    assert res.per_restart.shape == (8,)


def test_adversarial_search_projects_onto_cube():
    res = sm.adversarial_search(lambda x, y: (x - y).sum(-1), 2, 4, restarts=4, steps=50, lr=0.1)
    assert res.value == pytest.approx(4.0)  # x = 1, y = 0 on a corner of the cube
    for pt in res.points:
        assert ((pt >= 0) & (pt <= 1)).all()


def test_adversarial_search_is_seeded():
    a = sm.adversarial_triangle_search("DML2", 3, restarts=16, steps=10, seed=3)
    b = sm.adversarial_triangle_search("DML2", 3, restarts=16, steps=10, seed=3)
    assert a.value == b.value


def test_adversarial_search_nan_objective_reported():
    res = sm.adversarial_search(lambda x: x.sum(-1) * float("nan"), 1, 2, restarts=2, steps=2)
    assert math.isinf(res.value)


@pytest.mark.parametrize(("kw", "error", "match"), [
    (dict(k=0), ValueError, "k: expected an integer >= 1"),
    (dict(p=1.5), TypeError, "p: expected an integer"),
    (dict(restarts=0), ValueError, "restarts: expected an integer >= 1"),
    (dict(steps=-1), ValueError, "steps: expected an integer >= 0"),
    (dict(lr=0.0), ValueError, "lr: expected a finite number > 0"),
])
def test_adversarial_search_errors(kw, error, match):
    args = dict(k=1, p=2) | kw
    with pytest.raises(error, match=match):
        sm.adversarial_search(lambda x: x.sum(-1), args.pop("k"), args.pop("p"), **args)


@pytest.mark.parametrize("p", [2, 8])
@pytest.mark.parametrize("name", ["DML1", "DML2", "JML1", "JML2"])
def test_triangle_search_within_constant_and_close_to_it(name, p):
    res = sm.adversarial_triangle_search(name, p, restarts=64, steps=200)
    rho = sm.TRIANGLE_CONSTANT[name]
    assert res.value <= rho + 1e-9
    assert res.value > rho - 0.02  # the constant is (nearly) attained: it is the best one


# --------------------------------------------------------------------------- sympy


@pytest.mark.parametrize("p", [1, 2, 3])
def test_theorem2_residuals_vanish(p):
    res = sm.theorem2_residuals(p)
    assert len(res) == 4 * 2**p and all(r == 0 for r in res)


def test_theorem2_soft_example_differs():
    ex = sm.theorem2_soft_example()
    # x = (1/2, 1/4), y = (1/4, 1/2): S = 3/2, P = 1/4, B = 1/2
    assert ex["SDL"] == sp.Rational(2, 3) and ex["DML1"] == sp.Rational(1, 3) and ex["DML2"] == sp.Rational(1, 2)


def test_theorem3_certificate():
    cert = sm.theorem3_certificate()
    assert cert["ratio_identity"] == 0 and cert["pixel_terms"] == [0, 0]
    # the residual is order-free (written with Abs, Min, Max), so the two substitutions are two
    # different expressions; a wrong pixel term fails in one of the orders
    residual = cert["pixel_residual"]
    assert residual.has(sp.Abs) and residual.has(sp.Min) and residual.has(sp.Max)
    x, y, d = sp.symbols("x y d", nonnegative=True)
    wrong = residual + 2 * sp.Min(x, y) * (1 - sp.Max(x, y)) - 2 * sp.Min(x, y) * (1 - x)  # 1 - x for 1 - max
    assert sp.simplify(wrong.subs(x, y + d)) == 0 and sp.simplify(wrong.subs(y, x + d)) != 0


def test_rho_certificate():
    cert = sm.rho_certificate()
    assert cert["numerator_identity"] == 0 and cert["denominator_identity"] == 0
    assert cert["lower_bound_identity"] == 0 and cert["tight_value"] == sp.Rational(3, 2)
    s = sp.Symbol("s")
    assert sp.factor(cert["lower_bound"].subs(sp.Symbol("s", nonnegative=True), s)) == s * (s - 1) * (s - 4) / 2


def test_proposition1_certificate():
    cert = sm.proposition1_certificate()
    t = sp.Symbol("t", positive=True)
    assert cert["h0"] == 0 and cert["h1"] == 1
    assert sp.simplify(cert["h_derivative"] - 2 / (2 - t) ** 2) == 0
    assert cert["dml1_identity"] == 0 and cert["dml2_identity"] == 0


def test_symbolic_losses_errors():
    with pytest.raises(ValueError, match="expected sequences of one length"):
        sm.symbolic_losses([1], [1, 0])
    with pytest.raises(ValueError, match="p: expected an integer >= 1"):
        sm.theorem2_residuals(0)
