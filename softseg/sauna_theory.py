r"""Symbolic and numeric analysis of the SAUNA losses (Dang, Nguyen & Tiulpin, Sects. 3.3–3.4).

What the SAUNA chapter proves and checks, computed here so that the notebook only calls and
asserts:

* :func:`delta_jml` — :math:`\Delta_{\mathrm{JML}}` (the paper's eq. 6 = eq. 7) for vectors of
  *any* real hypercube :math:`[\alpha, \beta]^D` (:func:`softseg.losses.generalized_jml` is
  restricted to :math:`[-1, 1]`), as printed or rewritten; :func:`jml_coordinate_identities`,
  the per-coordinate identities that prove Proposition 1 for every :math:`D` (sympy), and
  :func:`jml_scalar_facts`, the scalar case;
* :func:`focal_l1_pieces` / :func:`focal_l1_analysis` — the 1-D Focal-L1 (eq. 8) for a soft
  target :math:`0 < y < 1` as four smooth pieces, their stationary points, derivative signs and
  second derivatives (sympy): the spurious local minimum sits at the end of the domain,
  :math:`f = -1`, with value :math:`1 + y`;
* :func:`stable_focal_l1_proof` — Proposition 2 for Stable Focal-L1 (eq. 9), piece by piece, for
  a symbolic :math:`\gamma`;
* :func:`combined_loss`, :func:`wrong_sign_valley`, :func:`valley_perturbations` — the method's
  loss GJML + Stable Focal-L1 and its flat valley of wrong-sign stationary points (non-strict
  local minima), which Proposition 2 (about Stable Focal-L1 alone) does not exclude;
* numeric companions: :func:`grid_local_minima`, :func:`count_local_minima` (dense grids over
  :math:`(f, y, \gamma)`), :func:`descend` (projected gradient descent on the 1-D losses) and
  :func:`semimetric_violations` (random and adversarial pairs for Proposition 1: a
  floating-point smoke test, not a proof).

By symmetry (:math:`\ell(-f, -y) = \ell(f, y)` for both losses) the symbolic analysis takes
:math:`y \ge 0`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from ._checks import check_float_tensor, check_option, check_positive, check_same_shape
from .losses.sauna import focal_l1_loss, generalized_jml, stable_focal_l1_loss

__all__ = [
    "delta_jml",
    "jml_coordinate_identities",
    "jml_scalar_facts",
    "semimetric_violations",
    "adversarial_pairs",
    "focal_l1_pieces",
    "focal_l1_analysis",
    "stable_focal_l1_proof",
    "combined_loss",
    "wrong_sign_valley",
    "valley_perturbations",
    "pixel_loss",
    "grid_local_minima",
    "count_local_minima",
    "descend",
]

LossName = Literal["focal", "stable"]
_LOSSES = ("focal", "stable")


# --------------------------------------------------------------------------- Proposition 1


def delta_jml(a: torch.Tensor, b: torch.Tensor, *, form: Literal["eq6", "supp2"] = "eq6") -> torch.Tensor:
    r"""Jaccard metric loss :math:`\Delta_{\mathrm{JML}}(a, b)` on any real vectors (eq. 6).

    Parameters
    ----------
    a, b : torch.Tensor
        Floating tensors of one shape ``(..., D)``, any finite real values (a hypercube
        :math:`[\alpha, \beta]^D` of any position and size).
    form : {"eq6", "supp2"}, default "eq6"
        ``"eq6"``: eq. (6) as printed, :math:`1 - \frac{S - D}{S + D}`; ``"supp2"``: the
        supplement's rewriting (its eq. 2) :math:`2 D / (S + D)`, which the loss
        (:func:`softseg.losses.generalized_jml`) evaluates. Equal in exact arithmetic; in
        floating point eq. (6) loses :math:`D` once it is below the rounding error of
        :math:`S + D`, so pairs that differ in one ulp can give 0.

    Returns
    -------
    torch.Tensor
        Shape ``(...)``, with :math:`S = \|a + b\|_1`, :math:`D = \|a - b\|_1`; 0 where
        ``a = b = 0`` (0/0, defined as 0).

    Raises
    ------
    TypeError
        If ``a`` or ``b`` is not a floating tensor.
    ValueError
        If the shapes differ, a tensor is 0-d or holds NaN/inf, or ``form`` is unknown.

    Notes
    -----
    Eq. (6) of the paper (= eq. 7 for :math:`f, \tilde y`), Proposition 1: a semi-metric on
    :math:`[\alpha, \beta]^D`. Per coordinate :math:`|a_i + b_i| + |a_i - b_i| = 2\max(|a_i|,
    |b_i|)` (:func:`jml_coordinate_identities`), so the denominator is
    :math:`2\sum_i \max(|a_i|, |b_i|)`.

    Examples
    --------
    >>> delta_jml(torch.tensor([3.0, -2.0]), torch.tensor([3.0, 2.0]))  # 1 - (6 - 4) / (6 + 4)
    tensor(0.8000)
    >>> x = torch.tensor([1.0], dtype=torch.float64)
    >>> y = torch.nextafter(x, torch.zeros(1, dtype=torch.float64))     # one ulp below
    >>> float(delta_jml(x, y)), float(delta_jml(x, y, form="supp2")) > 0
    (0.0, True)
    """
    check_option("form", form, ("eq6", "supp2"))
    check_float_tensor("a", a)
    check_float_tensor("b", b)
    check_same_shape("a", a, "b", b)
    if a.ndim == 0:
        raise ValueError("a: expected shape (..., D) with at least one axis, got a 0-d tensor")
    for name, t in (("a", a), ("b", b)):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name}: expected finite values, got NaN or inf")
    s = (a + b).abs().sum(-1)
    d = (a - b).abs().sum(-1)
    den = s + d
    safe = torch.where(den > 0, den, torch.ones_like(den))
    value = 1 - (s - d) / safe if form == "eq6" else 2 * d / safe
    return torch.where(den > 0, value, torch.zeros_like(den))


def jml_coordinate_identities() -> dict[str, bool]:
    r"""The per-coordinate identities behind Proposition 1 for every :math:`D`, by sympy.

    Returns
    -------
    dict
        Booleans, each established by sympy for all real :math:`a, b` (cases: both signs of
        each, :math:`|a| > |b|`, :math:`|a| < |b|`, :math:`|a| = |b|` and zeros, magnitudes
        symbolic):

        * ``sum`` — :math:`|a + b| + |a - b| = 2 \max(|a|, |b|)`;
        * ``difference`` — :math:`|a + b| - |a - b| = 2 \operatorname{sign}(ab) \min(|a|, |b|)`;
        * ``gap`` — :math:`\max(|a|, |b|) - \operatorname{sign}(ab)\min(|a|, |b|) = |a - b|`
          (half the difference of the two lines above), so it is :math:`\ge 0` and 0 only at
          :math:`a = b`.

    Notes
    -----
    Summing over the coordinates, :math:`S + D = 2M` and :math:`S - D = 2I` with
    :math:`M = \sum_i \max(|a_i|, |b_i|)` and :math:`I = \sum_i \operatorname{sign}(a_i b_i)
    \min(|a_i|, |b_i|)`, hence eq. (6) is :math:`\Delta = 1 - I/M = \|a - b\|_1 / M`
    (supplementary eq. 2): non-negative, zero exactly when every :math:`a_i = b_i`, and
    symmetric because :math:`M` and :math:`\|a - b\|_1` are. That is Proposition 1 on every
    hypercube and every :math:`D` (:math:`M > 0` unless :math:`a = b = 0`).
    """
    import sympy as sp

    p, q = sp.symbols("p q", positive=True)
    magnitudes = [(p + q, p), (p, p + q), (p, p), (p, 0), (0, p), (0, 0)]
    ok = {"sum": True, "difference": True, "gap": True}
    for sa in (1, -1):
        for sb in (1, -1):
            for ma, mb in magnitudes:
                a, b = sa * ma, sb * mb
                big, small = sp.Max(sp.Abs(a), sp.Abs(b)), sp.Min(sp.Abs(a), sp.Abs(b))
                ok["sum"] &= sp.simplify(sp.Abs(a + b) + sp.Abs(a - b) - 2 * big) == 0
                ok["difference"] &= sp.simplify(sp.Abs(a + b) - sp.Abs(a - b) - 2 * sp.sign(a * b) * small) == 0
                ok["gap"] &= sp.simplify(big - sp.sign(a * b) * small - sp.Abs(a - b)) == 0
    return {k: bool(v) for k, v in ok.items()}


def jml_scalar_facts() -> dict[str, bool]:
    r"""Proposition 1 for :math:`D = 1` by sympy: each axiom as a proved boolean.

    Returns
    -------
    dict
        ``closed_form``: :math:`\Delta(a, b) = |a - b| / \max(|a|, |b|)` in all four sign cases
        and both orders of magnitude (8 cases, ``a, b`` not both 0); ``symmetry``:
        :math:`\Delta(a, b) - \Delta(b, a)` simplifies to 0; ``positivity``: sympy proves
        :math:`\Delta \ge 0` for real ``a, b``; ``reflexivity``: the only real zero of the
        numerator :math:`|a - b|` is ``a = b``, and :math:`\Delta(a, a) = 0` for ``a != 0``.
    """
    import sympy as sp

    a, b = sp.symbols("a b", real=True)
    p, q = sp.symbols("p q", positive=True)

    def delta(x, y):
        return 1 - (sp.Abs(x + y) - sp.Abs(x - y)) / (sp.Abs(x + y) + sp.Abs(x - y))

    closed = True
    for sa in (1, -1):
        for sb in (1, -1):
            for big, small in ((p + q, p), (p, p + q)):  # |a| > |b| and |a| < |b|
                x, y = sa * big, sb * small
                lhs = delta(x, y)
                rhs = sp.Abs(x - y) / sp.Max(sp.Abs(x), sp.Abs(y))
                closed &= sp.simplify(lhs - rhs) == 0
    symmetry = sp.simplify(delta(a, b) - delta(b, a)) == 0
    # eq. 2 of the supplement: 2 |a - b| / (|a + b| + |a - b|), a quotient of non-negatives
    positivity = bool(sp.Abs(a - b).is_nonnegative) and bool((sp.Abs(a + b) + sp.Abs(a - b)).is_nonnegative) \
        and sp.simplify(delta(a, b) - 2 * sp.Abs(a - b) / (sp.Abs(a + b) + sp.Abs(a - b))) == 0
    zeros = sp.solve(sp.Abs(a - b), a)
    reflexivity = zeros == [b] and sp.simplify(delta(p, p)) == 0 and sp.simplify(delta(-p, -p)) == 0
    return {"closed_form": bool(closed), "symmetry": bool(symmetry), "positivity": positivity,
            "reflexivity": bool(reflexivity)}


def adversarial_pairs(alpha: float, beta: float, dim: int = 8, *, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Hand-made hard pairs in :math:`[\alpha, \beta]^D` for Proposition 1.

    Corners, ``a = b`` at the corners and at 0 (when inside), pairs differing in one
    coordinate by one ulp, ``b = -a`` (when the cube is symmetric enough), one coordinate at
    :math:`\alpha` and the rest at :math:`\beta`, and tiny values next to 0.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        ``a`` and ``b`` of shape ``(P, dim)``.
    """
    lo, hi = float(alpha), float(beta)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"alpha, beta: expected finite numbers with alpha < beta, got {alpha!r}, {beta!r}")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim: expected an integer >= 1, got {dim!r}")
    full = lambda v: torch.full((dim,), v, dtype=dtype)  # noqa: E731
    pairs = [(full(lo), full(hi)), (full(hi), full(lo)), (full(lo), full(lo)), (full(hi), full(hi))]
    one = full(hi).clone()
    one[0] = lo
    pairs += [(one, full(hi)), (one, one.clone())]
    nudged = full(hi).clone()
    nudged[-1] = np.nextafter(hi, lo)
    pairs.append((full(hi), nudged))
    mid = 0.5 * (lo + hi)
    pairs.append((full(mid), full(np.nextafter(mid, hi))))
    if lo <= 0.0 <= hi:
        zero = full(0.0)
        tiny = full(0.0)
        tiny[0] = 5e-324 if hi > 0 else -5e-324
        pairs += [(zero, zero.clone()), (zero, tiny), (tiny, tiny.clone())]
    c = min(-lo, hi)
    if c > 0:  # b = -a inside the cube
        alt = torch.where(torch.arange(dim) % 2 == 0, torch.tensor(c, dtype=dtype), torch.tensor(-c, dtype=dtype))
        pairs += [(alt, -alt), (full(c), full(-c))]
    a = torch.stack([p[0] for p in pairs])
    b = torch.stack([p[1] for p in pairs])
    return a, b


def semimetric_violations(a: torch.Tensor, b: torch.Tensor, *, form: Literal["eq6", "supp2"] = "eq6",
                          per_pair: bool = False) -> dict[str, int] | dict[str, torch.Tensor]:
    r"""Count the pairs that break Proposition 1's axioms, in floating point (a smoke test).

    Parameters
    ----------
    a, b : torch.Tensor
        Pairs ``(P, D)`` of real vectors.
    form : {"eq6", "supp2"}, default "eq6"
        Which formula of :func:`delta_jml` is evaluated (eq. 6 as printed by default).
    per_pair : bool, default False
        Return a boolean ``(P,)`` mask per axiom instead of counts.

    Returns
    -------
    dict
        ``reflexivity``: pairs with ``a != b`` and :math:`\Delta = 0`, or ``a == b`` (not both
        0) and :math:`\Delta \ne 0`; ``positivity``: :math:`\Delta < 0`; ``symmetry``:
        :math:`\Delta(a, b) \ne \Delta(b, a)`; ``range``: :math:`\Delta \notin [0, 2]`.

    Notes
    -----
    This cannot prove anything and can miss little: :math:`S` and :math:`D` are the same sums
    in either order (IEEE addition commutes), so symmetry holds by construction, and
    ``"supp2"`` is a quotient of non-negatives. What it can catch is rounding: eq. (6) as
    printed returns 0 for pairs whose :math:`\Delta` is below float's resolution near 1. The
    proof for every :math:`D` is :func:`jml_coordinate_identities`.
    """
    d_ab = delta_jml(a, b, form=form)
    d_ba = delta_jml(b, a, form=form)
    equal = (a == b).all(-1)
    both_zero = (a == 0).all(-1) & (b == 0).all(-1)
    masks = {
        "reflexivity": ((~equal) & (d_ab == 0)) | (equal & ~both_zero & (d_ab != 0)),
        "positivity": d_ab < 0,
        "symmetry": d_ab != d_ba,
        "range": (d_ab < 0) | (d_ab > 2),
    }
    return masks if per_pair else {k: int(v.sum()) for k, v in masks.items()}


# --------------------------------------------------------------------------- Focal-L1, eq. 8


def _symbols():
    import sympy as sp

    f = sp.Symbol("f", real=True)
    u = sp.Symbol("u", positive=True)          # y = 1 / (1 + u): any y in (0, 1)
    w = sp.Symbol("w", positive=True)          # offsets into the open pieces
    g = sp.Symbol("gamma", positive=True)
    return sp, f, u, w, g


def _sign(expr) -> int:
    """+1 or -1 where sympy proves the sign of ``expr`` in one of a few equivalent forms, else 0."""
    import sympy as sp

    factored = sp.factor(expr)
    for form in (expr, factored, sp.powsimp(factored, force=True), sp.simplify(expr)):
        if form.is_positive:
            return 1
        if form.is_negative:
            return -1
    return 0


def focal_l1_pieces(gamma=None):
    r"""The 1-D Focal-L1 :math:`\ell(f) = \ell(f, y)` (eq. 8) for a target :math:`0 < y < 1`.

    Parameters
    ----------
    gamma : number or None
        A value of :math:`\gamma > 0`, or ``None`` for the sympy symbol ``gamma``.

    Returns
    -------
    (list, dict)
        ``pieces``: ``(name, lower, upper, expression)`` with sympy bounds and expressions in
        ``f`` and ``y``; ``symbols``: ``{"f", "y", "gamma"}``.

    Notes
    -----
    With :math:`\max(|y|, |f|)` and the indicator :math:`\mathbb I(y f \ge 0)` resolved:

    .. math::

        \ell(f) = \begin{cases}
          (y - f) / (-f) & -1 \le f \le -y \quad\text{(C)}\\
          (y - f) / y & -y \le f < 0 \quad\text{(D)}\\
          (y - f)^{1+\gamma} / y & 0 \le f \le y \quad\text{(E)}\\
          (f - y)^{1+\gamma} / f & y \le f \le 1 \quad\text{(F)}
        \end{cases}
    """
    import sympy as sp

    f = sp.Symbol("f", real=True)
    y = sp.Symbol("y", positive=True)
    g = sp.Symbol("gamma", positive=True) if gamma is None else sp.nsimplify(gamma)
    pieces = [
        ("C", -1, -y, (y - f) / (-f)),
        ("D", -y, 0, (y - f) / y),
        ("E", 0, y, (y - f) ** (1 + g) / y),
        ("F", y, 1, (f - y) ** (1 + g) / f),
    ]
    return pieces, {"f": f, "y": y, "gamma": g}


def focal_l1_analysis(gamma: float = 1.0) -> dict[str, object]:
    r"""Stationary points, derivative signs and second derivatives of the 1-D Focal-L1 (eq. 8).

    Parameters
    ----------
    gamma : float, default 1.0
        The :math:`\gamma` for the stationary points and second derivatives (sympy solves
        them exactly for rational values); the derivative *signs* are proved for a symbolic
        :math:`\gamma > 0`.

    Returns
    -------
    dict
        ``stationary``: ``{piece: [points]}`` (sympy ``solve`` of :math:`\ell' = 0` inside each
        piece, with :math:`y = 1/(1 + u)`, :math:`u > 0`); ``derivative_sign``: ``{piece: +1 |
        -1}``, proved for every :math:`0 < y < 1` and :math:`\gamma > 0`;
        ``second_derivative_at_y``: :math:`\ell''(y^\pm)` from pieces E and F;
        ``second_derivative_at_minus_one``: :math:`\ell''(-1)` of piece C; ``spurious_value``:
        :math:`\ell(-1) = 1 + y`; ``jump_at_zero``: :math:`\ell(0^-) - \ell(0) = 1 - y^\gamma`.

    Notes
    -----
    Reading: ℓ is increasing on C (:math:`\ell' = y / f^2 > 0`), decreasing on D and E and
    increasing on F. Hence two local minima on :math:`[-1, 1]`: the global one at
    :math:`f = y` (value 0, the only stationary point) and the *spurious* one at the end of
    the domain, :math:`f = -1`, where :math:`\ell'(-1) = y > 0` (a constrained minimum, value
    :math:`1 + y > 0`; it is not a stationary point). It exists for every :math:`y \in (0, 1)`
    and every :math:`\gamma > 0` (piece C does not contain :math:`\gamma`), and by symmetry
    at :math:`f = +1` for :math:`y \in (-1, 0)`. At :math:`y = 0` the loss is
    :math:`|f|^\gamma` and at :math:`y = \pm 1` piece C is a single point: no spurious minimum
    there, so the paper's "for any :math:`\tilde y_i \notin \{-1, 1\}`" holds except at 0.
    """
    sp, f, u, w, g = _symbols()
    y = 1 / (1 + u)
    gam = sp.nsimplify(gamma)
    pieces, sym = focal_l1_pieces(None)
    out: dict[str, object] = {"stationary": {}, "derivative_sign": {}}
    # points strictly inside each piece: f = lower + w with w in (0, upper - lower)
    inner = {"C": -y - w, "D": -w * y / (1 + w), "E": y / (1 + w), "F": y + w / (1 + w) * (1 - y)}
    for name, _lo, _hi, expr in pieces:
        e = expr.subs(sym["y"], y).subs(sym["gamma"], g)
        d = sp.diff(e, f)
        out["derivative_sign"][name] = _sign(d.subs(f, inner[name]))
        e_num = expr.subs(sym["y"], y).subs(sym["gamma"], gam)
        d_num = sp.diff(e_num, f)
        lo = {"C": -1, "D": -y, "E": 0, "F": y}[name]
        hi = {"C": -y, "D": 0, "E": y, "F": 1}[name]
        roots = []
        for r in sp.solve(sp.Eq(sp.simplify(d_num), 0), f):
            r = sp.simplify(r)
            if r.is_real is not False and bool(sp.simplify(r - lo).is_nonnegative) and bool(sp.simplify(hi - r).is_nonnegative):
                roots.append(sp.simplify(r * (1 + u)) / (1 + u))
        out["stationary"][name] = roots
    e_piece = {name: expr.subs(sym["y"], y).subs(sym["gamma"], gam) for name, _lo, _hi, expr in pieces}
    out["second_derivative_at_y"] = (
        sp.simplify(sp.limit(sp.diff(e_piece["E"], f, 2), f, y, dir="-")),
        sp.simplify(sp.limit(sp.diff(e_piece["F"], f, 2), f, y, dir="+")),
    )
    out["second_derivative_at_minus_one"] = sp.simplify(sp.diff(e_piece["C"], f, 2).subs(f, -1))
    out["derivative_at_minus_one"] = sp.simplify(sp.diff(e_piece["C"], f).subs(f, -1))
    out["spurious_value"] = sp.simplify(e_piece["C"].subs(f, -1))
    out["global_value"] = sp.simplify(e_piece["E"].subs(f, y))
    out["jump_at_zero"] = sp.simplify(e_piece["D"].subs(f, 0) - e_piece["E"].subs(f, 0))
    out["y"] = y
    return out


def stable_focal_l1_proof() -> dict[str, bool]:
    r"""Proposition 2 (Stable Focal-L1, eq. 9) by sympy, piece by piece, for a symbolic :math:`\gamma`.

    Returns
    -------
    dict
        Each step of the proof as a boolean that sympy established:

        * ``symmetry`` — :math:`\ell(-f, -y) = \ell(f, y)` (so :math:`y \ge 0` suffices);
        * ``y0_case`` — for :math:`y = 0`, :math:`\ell = |f|^{1+\gamma}` is > 0 off 0;
        * ``left_piece_decreasing`` — for :math:`0 < y \le 1` and :math:`f \in [-1, 0)`,
          :math:`\ell = y - f` has :math:`\ell' = -1`: no stationary point, no local minimum;
        * ``jump_nonnegative`` — :math:`\ell(0^-) - \ell(0) = y - y^{1+\gamma} = y\,(1 - y^\gamma)
          \ge 0` for :math:`y = e^{-v} \in (0, 1]`: sympy checks the factorisation, that
          :math:`y > 0`, and that :math:`1 - e^{-w} \ge 0` holds exactly for :math:`w \ge 0`
          (solving the inequality), with :math:`w = \gamma v \ge 0` (supplementary eqs.
          13–16; any :math:`\gamma > 0`, not only :math:`\gamma \ge 1`);
        * ``jump_zero_at_one`` — at :math:`y = 1` the jump is 0: the supplement's eq. (15)
          claims the strict :math:`y_0 > y_0^{\gamma + 1}` for :math:`y_0 \in (0, 1]`, false at
          :math:`y_0 = 1` (an erratum; its conclusion (17) survives, since :math:`\ell(0) = 1
          > 0 = \ell(1)`);
        * ``right_piece_unimodal`` — on :math:`[0, 1]`, :math:`\ell = |f - y|^{1+\gamma}` has
          :math:`\ell' < 0` below :math:`y`, :math:`\ell' > 0` above, :math:`\ell(y) = 0`
          (supplementary eqs. 9–10);
        * ``unique_zero`` — :math:`f = y` is the only real zero of :math:`\ell` on the right piece.

    Notes
    -----
    Together: on :math:`[-1, 0)` every point has a smaller neighbour, on :math:`[0, 1]` the only
    local minimum is :math:`y` (strict, value 0), and every value on :math:`[-1, 0)` exceeds
    :math:`\ell(0) \ge \ell(y)`. The proof uses :math:`\gamma > 0` only: the supplement's proof
    assumes :math:`\gamma \ge 1` (its eq. 15), which is sufficient, not necessary; neither
    statement of Proposition 2 restricts :math:`\gamma`.
    """
    import sympy as sp

    f = sp.Symbol("f", real=True)
    yr = sp.Symbol("y", real=True)
    g = sp.Symbol("gamma", positive=True)
    w = sp.Symbol("w", positive=True)
    v = sp.Symbol("v", nonnegative=True)       # y = exp(-v): any y in (0, 1]
    vp = sp.Symbol("v", positive=True)

    def ell(x, t):
        return sp.Piecewise((sp.Abs(t - x) ** (1 + g), t * x >= 0), (sp.Abs(t - x), True))

    res = {}
    res["symmetry"] = all(
        sp.simplify((ell(-f, -yr) - ell(f, yr)).subs({f: fv, yr: yv})) == 0
        for fv in (sp.Rational(-3, 4), sp.Rational(-1, 5), 0, sp.Rational(1, 3), 1)
        for yv in (sp.Rational(-1, 2), 0, sp.Rational(2, 7), 1)
    ) and sp.simplify(sp.piecewise_fold(ell(-f, -yr) - ell(f, yr))) == 0
    res["y0_case"] = bool((sp.Abs(w) ** (1 + g)).is_positive) and bool((sp.Abs(-w) ** (1 + g)).is_positive)
    y = sp.exp(-v)
    left = y - f                                   # f < 0 <= y: indicator 0
    res["left_piece_decreasing"] = sp.diff(left, f) == -1
    power = sp.exp(-g * v)                         # y^gamma
    jump = left.subs(f, 0) - y ** (1 + g)          # l(0-) - l(0) = y - y^(1 + gamma)
    wr = sp.Symbol("w", real=True)
    # {w real : 1 - e^-w >= 0} = [0, oo): sympy solves it (no symbolic parameter involved)
    one_minus_exp = sp.solve_univariate_inequality(1 - sp.exp(-wr) >= 0, wr, relational=False)
    res["jump_nonnegative"] = (
        sp.simplify(jump - y * (1 - power)) == 0                 # y - y^(1+g) = y (1 - y^g)
        and bool(y.is_positive)                                  # y = e^-v > 0
        and bool((g * v).is_nonnegative)                         # w = gamma v >= 0 ...
        and sp.Interval(0, sp.oo).is_subset(one_minus_exp)       # ... so 1 - y^g = 1 - e^-w >= 0
    )
    res["jump_zero_at_one"] = sp.simplify(jump.subs(v, 0)) == 0  # y = 1: l(0-) = l(0), eq. (15) not strict
    yp = sp.exp(-vp)                               # y in (0, 1)
    right_lo = (yp - f) ** (1 + g)                 # 0 <= f <= y
    right_hi = (f - yp) ** (1 + g)                 # y <= f <= 1
    below = sp.diff(right_lo, f).subs(f, yp - w)
    above = sp.diff(right_hi, f).subs(f, yp + w)
    res["right_piece_unimodal"] = bool(below.is_negative) and bool(above.is_positive) and right_lo.subs(f, yp) == 0
    res["unique_zero"] = sp.solve(sp.Eq(sp.Abs(f - yp), 0), f) == [yp]
    return {k: bool(val) for k, val in res.items()}


# --------------------------------------------------------------------------- GJML + Stable Focal-L1


def combined_loss(f: torch.Tensor, y: torch.Tensor, *, gamma: float = 1.0) -> torch.Tensor:
    r"""The method's loss, GJML (eq. 7) + Stable Focal-L1 (eq. 9) with weights 1 and 1, per image.

    Parameters
    ----------
    f, y : torch.Tensor
        Predictions and targets of one shape ``(..., n)`` (``n`` pixels per image), floating,
        values in :math:`[-1, 1]`.
    gamma : float, default 1.0
        Focusing parameter :math:`\gamma > 0` of eq. (9).

    Returns
    -------
    torch.Tensor
        Shape ``(...)``: :math:`\mathcal L_{\mathrm{GJML}}(f, y) + \frac1n \sum_i \ell^S(f_i, y_i)`,
        the loss the book trains (``sauna_fives``: both weights 1).
    """
    check_float_tensor("f", f)
    check_float_tensor("y", y)
    check_same_shape("f", f, "y", y)
    if f.ndim == 0:
        raise ValueError("f: expected shape (..., n) with at least one axis, got a 0-d tensor")
    batch = f.shape[:-1]
    ff, yy = f.reshape(-1, 1, f.shape[-1]), y.reshape(-1, 1, y.shape[-1])
    gjml = generalized_jml(ff, yy, reduction="none")[:, 0]
    sfl1 = stable_focal_l1_loss(ff, yy, gamma=gamma, reduction="none").mean(-1)[:, 0]
    return (gjml + sfl1).reshape(batch)


def wrong_sign_valley(y: torch.Tensor, *, gamma: float = 1.0) -> dict[str, torch.Tensor]:
    r"""A stationary point of GJML + Stable Focal-L1 with every pixel on the wrong side of 0.

    Parameters
    ----------
    y : torch.Tensor
        Targets ``(n,)``, floating, in :math:`[-1, 1]`, none 0 and not all :math:`\pm 1`.
    gamma : float, default 1.0
        Focusing parameter (the wrong-sign branch of eq. 9 does not depend on it).

    Returns
    -------
    dict
        ``f``: the point :math:`f^\star_i = -\operatorname{sign}(y_i)\,(|y_i| + \lambda (1 - |y_i|))`
        with :math:`\lambda = (\sqrt{nA} - A)/(n - A) \in (0, 1)`, so that
        :math:`F = \sum_i |f^\star_i| = \sqrt{nA}`; ``loss``: :func:`combined_loss` there;
        ``grad``: its gradient by autograd; ``closed_form``: :math:`(1 + \sqrt{A/n})^2`;
        ``A``, ``F``.

    Raises
    ------
    TypeError
        If ``y`` is not a floating tensor.
    ValueError
        If ``y`` is not 1-D, is outside :math:`[-1, 1]`, holds a 0, or has :math:`|y_i| = 1`
        everywhere.

    Notes
    -----
    In the region where every :math:`f_i` has the sign opposite to :math:`y_i` and
    :math:`|f_i| \ge |y_i|`, with :math:`A = \sum_i |y_i|` and :math:`F = \sum_i |f_i|`:
    :math:`\|f + y\|_1 = F - A`, :math:`\|f - y\|_1 = F + A`, so GJML :math:`= (F + A)/F`, and
    the indicator of eq. (9) is 0, so SF-L1 :math:`= (F + A)/n`. The loss

    .. math::

        \mathcal L = 1 + \frac{A}{F} + \frac{A + F}{n}

    depends on :math:`F` alone and is minimal at :math:`F = \sqrt{nA}` (which lies in
    :math:`[A, n]` because :math:`A \le n`), with value :math:`(1 + \sqrt{A/n})^2 > 0`. The
    whole :math:`(n - 1)`-dimensional set :math:`\{F = \sqrt{nA}\}` inside the region is made
    of stationary points with zero gradient: non-strict local minima, away from the target
    (loss 0). Proposition 2 concerns Stable Focal-L1 alone; adding GJML creates this valley.
    """
    check_float_tensor("y", y)
    if y.ndim != 1:
        raise ValueError(f"y: expected a 1-D tensor of targets, got shape {tuple(y.shape)}")
    mag = y.abs()
    if not bool(((mag > 0) & (mag <= 1)).all()):
        raise ValueError("y: expected targets in [-1, 1] \\ {0}, got a 0 or a value outside [-1, 1]")
    n, big_a = y.numel(), mag.sum()
    if not bool(big_a < n):
        raise ValueError("y: expected some |y_i| < 1 (with all |y_i| = 1 the valley is the single point f = -y)")
    big_f = torch.sqrt(n * big_a)
    lam = (big_f - big_a) / (n - big_a)
    f = (-torch.sign(y) * (mag + lam * (1 - mag))).detach().requires_grad_(True)
    loss = combined_loss(f, y, gamma=gamma)
    (grad,) = torch.autograd.grad(loss, f)
    return {"f": f.detach(), "loss": loss.detach(), "grad": grad, "closed_form": (1 + torch.sqrt(big_a / n)) ** 2,
            "A": big_a, "F": big_f}


def valley_perturbations(f: torch.Tensor, y: torch.Tensor, *, n_dirs: int = 1000, step: float = 1e-3,
                         gamma: float = 1.0, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    r"""Changes of :func:`combined_loss` under small random moves away from a point ``f``.

    Parameters
    ----------
    f, y : torch.Tensor
        A point and its targets, ``(n,)`` (e.g. ``wrong_sign_valley(y)["f"]``).
    n_dirs : int, default 1000
        Number of random directions (standard normal, scaled to length ``step``).
    step : float, default 1e-3
        Length of each move; the moved points are clipped to :math:`[-1, 1]`.
    gamma : float, default 1.0
        Focusing parameter of eq. (9).
    generator : torch.Generator, optional
        Randomness of the directions.

    Returns
    -------
    dict
        ``random``: loss change for each random move ``(n_dirs,)``; ``along``: the change when
        each move is first projected onto :math:`\{\delta : \sum_i \operatorname{sign}(f_i)
        \delta_i = 0\}` (moves that keep :math:`F = \sum_i |f_i|` inside the wrong-sign
        region, i.e. along the valley of :func:`wrong_sign_valley`).
    """
    check_float_tensor("f", f)
    check_float_tensor("y", y)
    check_same_shape("f", f, "y", y)
    if f.ndim != 1:
        raise ValueError(f"f: expected a 1-D tensor, got shape {tuple(f.shape)}")
    step = check_positive("step", step)
    if isinstance(n_dirs, bool) or not isinstance(n_dirs, int) or n_dirs < 1:
        raise ValueError(f"n_dirs: expected an integer >= 1, got {n_dirs!r}")
    delta = torch.randn(n_dirs, f.numel(), generator=generator, dtype=f.dtype)
    sign = torch.sign(f)
    along = delta - (delta @ sign)[:, None] * sign / (sign @ sign)   # remove the component that changes F
    base = combined_loss(f, y, gamma=gamma)

    def change(d: torch.Tensor) -> torch.Tensor:
        d = step * d / d.norm(dim=1, keepdim=True)
        return combined_loss((f + d).clamp(-1.0, 1.0), y.expand_as(d), gamma=gamma) - base

    return {"random": change(delta), "along": change(along)}


# --------------------------------------------------------------------------- numeric companions


def pixel_loss(name: LossName, f: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-pixel Focal-L1 (``"focal"``, eq. 8) or Stable Focal-L1 (``"stable"``, eq. 9)."""
    check_option("name", name, _LOSSES)
    fn = focal_l1_loss if name == "focal" else stable_focal_l1_loss
    return fn(f, y, gamma=gamma, reduction="none")


def grid_local_minima(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Boolean map of the grid points no larger than both neighbours along ``dim`` (one at the ends).

    The ends of the grid count as local minima when no larger than their one neighbour: the
    losses live on the closed interval :math:`[-1, 1]`.
    """
    check_float_tensor("values", values)
    if values.ndim == 0 or values.shape[dim] < 2:
        raise ValueError(f"values: expected at least 2 points along dim {dim}, got shape {tuple(values.shape)}")
    v = values.movedim(dim, 0)
    inf = torch.full_like(v[:1], float("inf"))
    left = torch.cat([inf, v[:-1]])
    right = torch.cat([v[1:], inf])
    return ((v <= left) & (v <= right)).movedim(0, dim)


def count_local_minima(name: LossName, ys: torch.Tensor, gammas: Sequence[float], *,
                       n_grid: int = 2001) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Local minima of :math:`f \mapsto \ell(f, y)` on a grid of :math:`[-1, 1]`, for many ``(y, γ)``.

    Parameters
    ----------
    name : {"focal", "stable"}
        Eq. (8) or eq. (9).
    ys : torch.Tensor
        Targets, 1-D, in :math:`[-1, 1]`, float64 recommended.
    gammas : sequence of float
        Values of :math:`\gamma > 0`.
    n_grid : int, default 2001
        Grid points of :math:`f` (odd, so that 0 is on the grid).

    Returns
    -------
    (torch.Tensor, torch.Tensor, torch.Tensor)
        ``counts`` ``(G, Y)``: number of local minima; ``argmin`` ``(G, Y)``: grid value of the
        global minimum; ``spurious_at`` ``(G, Y)``: the local minimum farthest from ``y``
        (equal to the global one when there is only one).
    """
    check_option("name", name, _LOSSES)
    check_float_tensor("ys", ys)
    if ys.ndim != 1:
        raise ValueError(f"ys: expected a 1-D tensor, got shape {tuple(ys.shape)}")
    if isinstance(n_grid, bool) or not isinstance(n_grid, int) or n_grid < 3:
        raise ValueError(f"n_grid: expected an integer >= 3, got {n_grid!r}")
    grid = torch.linspace(-1.0, 1.0, n_grid, dtype=ys.dtype)
    f, y = torch.meshgrid(grid, ys, indexing="ij")
    counts, argmin, far = [], [], []
    for gamma in gammas:
        check_positive("gammas", gamma)
        values = pixel_loss(name, f, y, float(gamma))
        minima = grid_local_minima(values, 0)
        counts.append(minima.sum(0))
        argmin.append(grid[values.argmin(0)])
        dist = torch.where(minima, (f - y).abs(), torch.full_like(f, -1.0))
        far.append(grid[dist.argmax(0)])
    return torch.stack(counts), torch.stack(argmin), torch.stack(far)


def descend(name: LossName, y: torch.Tensor, f0: torch.Tensor, *, gamma: float = 1.0, lr: float = 0.01,
            steps: int = 2000) -> torch.Tensor:
    r"""Projected gradient descent on the 1-D loss :math:`f \mapsto \ell(f, y)`, clipped to :math:`[-1, 1]`.

    Parameters
    ----------
    name : {"focal", "stable"}
    y, f0 : torch.Tensor
        Targets and starting points, one shape, in :math:`[-1, 1]` (a batch of independent runs).
    gamma, lr, steps
        Focusing parameter, step size and number of steps.

    Returns
    -------
    torch.Tensor
        The final iterates. A run of Focal-L1 started in piece C (:math:`f_0 < -y` for
        :math:`y > 0`) walks to the spurious minimum :math:`-1`; Stable Focal-L1 reaches
        :math:`y` from everywhere.
    """
    check_option("name", name, _LOSSES)
    check_float_tensor("y", y)
    check_float_tensor("f0", f0)
    check_same_shape("y", y, "f0", f0)
    lr = check_positive("lr", lr)
    f = f0.detach().clone()
    for _ in range(int(steps)):
        f.requires_grad_(True)
        loss = pixel_loss(name, f, y, gamma).sum()
        (grad,) = torch.autograd.grad(loss, f)
        with torch.no_grad():
            f = (f - lr * grad).clamp(-1.0, 1.0)
    return f.detach()
