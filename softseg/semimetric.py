r"""Metric and semimetric properties of the Dice-family losses: adversarial searches and sympy checks.

Wang, Popordanoska, Bertels, Lemmens & Blaschko, *Dice Semimetric Losses* (MICCAI 2023), Sect. 2:

* eq. (3): the Jaccard metric losses JML1, JML2 are metrics on :math:`[0,1]^p` (from Wang &
  Blaschko, ref. [47]); eq. (4): the Dice semimetric losses DML1, DML2;
* eq. (5): the relaxed triangle inequality :math:`f(a, c) \le \rho\,(f(a, b) + f(b, c))`;
* Proposition 1: :math:`\bar\Delta_{\mathrm{Dice}} = \bar\Delta_{\mathrm{IoU}} / (2 - \bar\Delta_{\mathrm{IoU}})`
  is reflexive and positive iff :math:`\bar\Delta_{\mathrm{IoU}}` is;
* Theorem 1: DML1 and DML2 are semimetrics on :math:`[0,1]^p`;
* Theorem 2: SDL = DML1 = DML2 when one argument is hard; they differ on some soft pairs;
* Theorem 3: DML1 :math:`\le` DML2 on :math:`[0,1]^p`.

The paper's text states Theorem 1 without the constant :math:`\rho` (its proof is in an appendix
that is not part of the paper text). :data:`TRIANGLE_CONSTANT` holds the constant this module
derives and checks: :math:`\rho = 1` for the metrics JML1/JML2 and :math:`\rho = 3/2` for
DML1/DML2. Why 3/2: DML\ :sub:`k` :math:`= h(\mathrm{JML}_k)` with :math:`h(t) = t / (2 - t)`
(Sect. 2.2), :math:`h` is increasing and convex on :math:`[0, 1]`, and for a metric :math:`g`
with values in :math:`[0, 1]` and points :math:`a, b, c`,

.. math::

    \frac{h(g_{ac})}{h(g_{ab}) + h(g_{bc})} \le
    \max_{\alpha, \beta \ge 0} \frac{h(\min(1, \alpha + \beta))}{h(\alpha) + h(\beta)}
    = \frac{h(1)}{2 h(1/2)} = \frac32

(the numbers :math:`\alpha = g_{ab}`, :math:`\beta = g_{bc}`), attained by the hard vectors
:math:`a = (1, 0), b = (1, 1), c = (0, 1)` — so 3/2 is the best constant already on
:math:`\{0, 1\}^p`. :func:`rho_certificate` checks the algebra with sympy.

Public functions:

* :func:`pair_loss` — one of SDL, SJL, DML1, DML2, JML1, JML2 on vectors ``(..., p)``;
* :func:`triangle_ratio` — :math:`L(x, z) / (L(x, y) + L(y, z))`;
* :func:`adversarial_search` — projected gradient ascent (Adam steps, then projection onto
  :math:`[0,1]^p`) from many restarts, batched, maximizing any objective of ``k`` points;
* :func:`adversarial_triangle_search` — the worst triangle ratio found for one loss;
* :func:`symbolic_losses`, :func:`theorem2_residuals`, :func:`theorem2_soft_example`,
  :func:`theorem3_certificate`, :func:`rho_certificate`, :func:`proposition1_certificate` — sympy.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch

from ._checks import check_float_tensor, check_int, check_option, check_positive

__all__ = [
    "LOSS_NAMES",
    "TRIANGLE_CONSTANT",
    "pair_loss",
    "triangle_ratio",
    "SearchResult",
    "adversarial_search",
    "adversarial_triangle_search",
    "symbolic_losses",
    "theorem2_residuals",
    "theorem2_soft_example",
    "theorem3_certificate",
    "rho_certificate",
    "proposition1_certificate",
]

#: The losses compared here (names as in the paper's eqs. (1)-(4)).
LOSS_NAMES: tuple[str, ...] = ("DML1", "DML2", "JML1", "JML2", "SDL", "SJL")

#: Relaxed triangle constant rho of eq. (5) that each loss satisfies on [0, 1]^p: 1 for the
#: metrics (eq. (3), ref. [47]), 3/2 for the Dice semimetric losses (Theorem 1, constant derived in
#: the module doc). SDL and SJL are not (semi)metrics on [0, 1]^p: no entry.
TRIANGLE_CONSTANT: dict[str, float] = {"JML1": 1.0, "JML2": 1.0, "DML1": 1.5, "DML2": 1.5}


def pair_loss(name: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""One Dice-family loss between vectors, batched over leading axes.

    Parameters
    ----------
    name : {"DML1", "DML2", "JML1", "JML2", "SDL", "SJL"}
        The loss (eqs. (1)-(4) of the paper).
    x, y : torch.Tensor
        Floating tensors of one shape ``(..., p)``, ``p >= 1``, values in :math:`[0, 1]`.

    Returns
    -------
    torch.Tensor
        Shape ``(...)``: the loss of each pair of vectors; differentiable in ``x`` and ``y``.

    Raises
    ------
    TypeError
        If ``x`` or ``y`` is not a floating tensor.
    ValueError
        If ``name`` is unknown, the shapes differ, ``x`` is 0-d or empty, or a value is outside
        :math:`[0, 1]`.

    Notes
    -----
    With :math:`S = \|x\|_1 + \|y\|_1`, :math:`P = \langle x, y\rangle`, :math:`B = \|x - y\|_1`:
    SDL :math:`= 1 - 2P/S` (eq. 1), SJL :math:`= 1 - P/(S - P)` (eq. 2), JML1 :math:`= 2B/(S+B)`,
    JML2 :math:`= B/(P + B)` (eq. 3), DML1 :math:`= B/S`, DML2 :math:`= B/(2P + B)` (eq. 4),
    computed by :mod:`softseg.losses.dice` with ``eps = 0``.

    Examples
    --------
    >>> import torch
    >>> x, y = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])
    >>> round(pair_loss("DML1", x, y).item(), 4)  # 1 - 2 * 1 / (1 + 2)
    0.3333
    """
    from .losses import dice_semimetric_loss, jaccard_metric_loss, soft_dice_loss, soft_jaccard_loss

    check_option("name", name, LOSS_NAMES)
    check_float_tensor("x", x)
    check_float_tensor("y", y)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"x: expected shape (..., p) with p >= 1, got {tuple(x.shape)}")
    if tuple(x.shape) != tuple(y.shape):
        raise ValueError(f"x and y: expected equal shapes (..., p), got {tuple(x.shape)} and {tuple(y.shape)}")
    lead, p = x.shape[:-1], x.shape[-1]
    xf, yf = x.reshape(-1, 1, p), y.reshape(-1, 1, p)
    if name.startswith("DML"):
        out = dice_semimetric_loss(xf, yf, variant=int(name[-1]), reduction="none")
    elif name.startswith("JML"):
        out = jaccard_metric_loss(xf, yf, variant=int(name[-1]), reduction="none")
    elif name == "SDL":
        out = soft_dice_loss(xf, yf, reduction="none")
    else:
        out = soft_jaccard_loss(xf, yf, reduction="none")
    return out.reshape(lead)


def triangle_ratio(name: str, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r"""The triangle ratio :math:`L(x, z) / (L(x, y) + L(y, z))` of eq. (5), batched.

    A loss satisfies the relaxed triangle inequality (5) with constant :math:`\rho` iff this
    ratio never exceeds :math:`\rho`. Where the denominator is 0 the ratio is 0 if the
    numerator is 0 too (``x = y = z``) and ``inf`` otherwise.

    Parameters
    ----------
    name : str
        As in :func:`pair_loss`.
    x, y, z : torch.Tensor
        Shape ``(..., p)``, values in :math:`[0, 1]`.

    Returns
    -------
    torch.Tensor
        Shape ``(...)``.

    Examples
    --------
    >>> import torch
    >>> a, b, c = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]), torch.tensor([0.0, 1.0])
    >>> triangle_ratio("DML1", a, b, c).item()  # 1 / (1/3 + 1/3): the constant 3/2 is attained
    1.5
    """
    num = pair_loss(name, x, z)
    den = pair_loss(name, x, y) + pair_loss(name, y, z)
    safe = torch.where(den > 0, den, torch.ones_like(den))
    ratio = num / safe
    return torch.where(den > 0, ratio, torch.where(num > 0, torch.full_like(num, float("inf")), 0.0 * num))


class SearchResult(NamedTuple):
    """Outcome of :func:`adversarial_search`.

    ``value``: the largest objective value seen (a float); ``points``: the maximizing points, a
    tuple of ``k`` tensors of shape ``(p,)``; ``per_restart``: the best value of each restart,
    shape ``(restarts,)``; ``trace``: the best value so far after each step, shape ``(steps + 1,)``.
    """

    value: float
    points: tuple[torch.Tensor, ...]
    per_restart: torch.Tensor
    trace: torch.Tensor


def _initial_points(k: int, restarts: int, p: int, generator: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """Starting points, shape ``(k, restarts, p)``: half uniform in the cube, a quarter near its
    vertices (where the Dice-type ratios peak), a quarter uniform with each pixel pushed to 0 or 1
    with probability 1/2 (mixed hard/soft)."""
    u = torch.rand(k, restarts, p, generator=generator, dtype=dtype)
    q1, q2 = restarts // 2, (3 * restarts) // 4
    vertices = (torch.rand(k, restarts, p, generator=generator, dtype=dtype) < 0.5).to(dtype)
    jitter = 0.05 * torch.rand(k, restarts, p, generator=generator, dtype=dtype)
    u[:, q1:q2] = (vertices + jitter * (1 - 2 * vertices))[:, q1:q2]
    snap = torch.rand(k, restarts, p, generator=generator, dtype=dtype) < 0.5
    u[:, q2:] = torch.where(snap, vertices, u)[:, q2:]
    return u


def adversarial_search(objective: Callable[..., torch.Tensor], k: int, p: int, *, restarts: int = 256,
                       steps: int = 200, lr: float = 0.05, seed: int = 0,
                       dtype: torch.dtype = torch.float64, progress: bool = False) -> SearchResult:
    r"""Maximize ``objective(*points)`` over ``k`` points of :math:`[0, 1]^p` by projected gradient ascent.

    Every restart is one candidate tuple; all restarts are optimized at once as a batch: an Adam
    step on ``objective`` (ascent), then projection onto the cube (clamping to :math:`[0, 1]`).
    The best value over all restarts *and* all steps is kept, including the starting points.

    Parameters
    ----------
    objective : callable
        ``objective(x1, ..., xk)`` with ``xi`` of shape ``(restarts, p)`` returns ``(restarts,)``;
        differentiable. Non-finite values count as found (returned as ``inf``/``nan``), their
        gradient as 0.
    k : int
        Number of points (3 for a triangle).
    p : int
        Dimension (pixels per vector).
    restarts : int, default 256
        Independent starting tuples (:func:`_initial_points`: uniform, near vertices, mixed).
    steps : int, default 200
        Adam steps per restart.
    lr : float, default 0.05
        Adam step size (in units of the cube's side).
    seed : int, default 0
        Seed of the starting points.
    dtype : torch.dtype, default float64
    progress : bool, default False
        tqdm bar over the steps.

    Returns
    -------
    SearchResult

    Raises
    ------
    TypeError, ValueError
        If ``k``, ``p``, ``restarts`` or ``steps`` is not a positive integer (``steps >= 0``) or
        ``lr`` is not positive.

    Examples
    --------
    >>> import torch
    >>> res = adversarial_search(lambda x: -((x - 0.3) ** 2).sum(-1), 1, 2, restarts=4, steps=300, lr=0.05)
    >>> [round(v, 2) for v in res.points[0].tolist()]
    [0.3, 0.3]
    """
    from tqdm.auto import tqdm

    k, p = check_int("k", k, 1), check_int("p", p, 1)
    restarts, steps = check_int("restarts", restarts, 1), check_int("steps", steps, 0)
    lr = check_positive("lr", lr)
    gen = torch.Generator().manual_seed(int(seed))
    pts = _initial_points(k, restarts, p, gen, dtype).requires_grad_(True)
    opt = torch.optim.Adam([pts], lr=lr)
    best = torch.full((restarts,), -float("inf"), dtype=dtype)
    best_pts = pts.detach().clone()
    trace = torch.empty(steps + 1, dtype=dtype)
    for step in tqdm(range(steps + 1), desc="adversarial search", disable=not progress, leave=False):
        value = objective(*pts.unbind(0))
        with torch.no_grad():
            val = torch.where(torch.isnan(value), torch.full_like(value, float("inf")), value.detach())
            better = val > best
            best = torch.where(better, val, best)
            best_pts[:, better] = pts.detach()[:, better]
            trace[step] = best.max()
        if step == steps:
            break
        opt.zero_grad(set_to_none=True)
        finite = torch.isfinite(value)
        (-torch.where(finite, value, torch.zeros_like(value)).sum()).backward()
        if pts.grad is not None:
            pts.grad.nan_to_num_(0.0, 0.0, 0.0)
        opt.step()
        with torch.no_grad():
            pts.clamp_(0.0, 1.0)
    i = int(best.argmax())
    return SearchResult(float(best[i]), tuple(best_pts[:, i]), best, trace)


def adversarial_triangle_search(name: str, p: int, *, restarts: int = 256, steps: int = 200,
                                lr: float = 0.05, seed: int = 0, progress: bool = False) -> SearchResult:
    r"""The worst triangle ratio :math:`L(x, z) / (L(x, y) + L(y, z))` found for one loss.

    :func:`adversarial_search` on :func:`triangle_ratio` over :math:`x, y, z \in [0, 1]^p`, in
    float64. A value above :data:`TRIANGLE_CONSTANT` ``[name]`` would refute the relaxed
    triangle inequality (5) with that constant.

    Parameters
    ----------
    name : str
        As in :func:`pair_loss`.
    p, restarts, steps, lr, seed, progress
        As in :func:`adversarial_search`.

    Returns
    -------
    SearchResult
        ``points`` is the worst triple ``(x, y, z)`` found.

    Examples
    --------
    >>> res = adversarial_triangle_search("DML1", 2, restarts=64, steps=50)
    >>> 1.4 < res.value <= 1.5
    True
    """
    check_option("name", name, LOSS_NAMES)
    return adversarial_search(lambda x, y, z: triangle_ratio(name, x, y, z), 3, p, restarts=restarts,
                              steps=steps, lr=lr, seed=seed, progress=progress)


# --------------------------------------------------------------------------- sympy


def symbolic_losses(x: Sequence[Any], y: Sequence[Any]) -> dict[str, Any]:
    r"""SDL, SJL, DML1, DML2, JML1, JML2 of two vectors as sympy expressions (eqs. (1)-(4)).

    Parameters
    ----------
    x, y : sequence
        Entries: sympy symbols, expressions or numbers (use ``sympy.Rational`` for exact values).

    Returns
    -------
    dict
        ``{"SDL": expr, ...}``; :math:`\|x - y\|_1` is written with ``sympy.Abs`` and
        :math:`\|x + y\|_1 = \|x\|_1 + \|y\|_1` (true on :math:`[0, 1]^p`).

    Raises
    ------
    ValueError
        If the lengths differ or are 0.

    Examples
    --------
    >>> import sympy as sp
    >>> symbolic_losses([1, 0], [sp.Rational(1, 2), sp.Rational(1, 2)])["DML1"]
    1/2
    """
    import sympy as sp

    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y: expected sequences of one length p >= 1, got lengths {len(x)} and {len(y)}")
    S = sum(x) + sum(y)
    P = sum(a * b for a, b in zip(x, y))
    B = sum(sp.Abs(a - b) for a, b in zip(x, y))
    return {
        "SDL": 1 - 2 * P / S,
        "SJL": 1 - P / (S - P),
        "DML1": 1 - (S - B) / S,
        "DML2": 1 - 2 * P / (2 * P + B),
        "JML1": 1 - (S - B) / (S + B),
        "JML2": 1 - P / (P + B),
    }


def _unit_symbols(p: int, prefix: str):
    """``p`` symbols standing for numbers in (0, 1), and a rule that evaluates ``Abs`` of
    ``s - 1`` (or ``1 - s``) as ``1 - s`` for them."""
    import sympy as sp

    syms = sp.symbols(f"{prefix}0:{p}", positive=True)
    return syms, {sp.Abs(s - 1): 1 - s for s in syms}


def theorem2_residuals(p: int) -> list[Any]:
    r"""Theorem 2 symbolically: SDL - DML1 and SDL - DML2 for every hard vector of length ``p``.

    For each of the :math:`2^p` hard vectors :math:`h \in \{0,1\}^p` and a symbolic soft vector
    :math:`s \in (0, 1)^p`, in both orders (:math:`x = s, y = h` and :math:`x = h, y = s`), the
    differences are simplified. Theorem 2 holds for this ``p`` iff every residual is 0.

    Parameters
    ----------
    p : int
        Vector length, ``>= 1`` (2 or 3 keep it fast).

    Returns
    -------
    list of sympy expressions
        ``4 * 2**p`` simplified residuals.

    Notes
    -----
    :math:`|s_i - h_i|` equals :math:`s_i` for :math:`h_i = 0` and :math:`1 - s_i` for
    :math:`h_i = 1`, which is the substitution made before simplifying. The soft symbols are
    positive so that :math:`\|s\|_1 > 0`; for :math:`h = 0` both losses are 1.
    """
    import sympy as sp

    p = check_int("p", p, 1)
    s, rule = _unit_symbols(p, "s")
    out = []
    for bits in itertools.product((0, 1), repeat=p):
        h = [sp.Integer(b) for b in bits]
        for x, y in ((s, h), (h, s)):
            L = {k: v.subs(rule) for k, v in symbolic_losses(list(x), list(y)).items()}
            out += [sp.simplify(L["SDL"] - L["DML1"]), sp.simplify(L["SDL"] - L["DML2"])]
    return out


def theorem2_soft_example() -> dict[str, Any]:
    r"""An exact soft pair with SDL :math:`\ne` DML1 :math:`\ne` DML2 (second half of Theorem 2).

    Returns
    -------
    dict
        ``{"x": [...], "y": [...], "SDL": value, "DML1": value, "DML2": value}`` with exact
        rational values, for :math:`x = (1/2, 1/4)`, :math:`y = (1/4, 1/2)`.
    """
    import sympy as sp

    x, y = [sp.Rational(1, 2), sp.Rational(1, 4)], [sp.Rational(1, 4), sp.Rational(1, 2)]
    L = symbolic_losses(x, y)
    return {"x": x, "y": y, **{k: sp.nsimplify(L[k]) for k in ("SDL", "DML1", "DML2")}}


def theorem3_certificate() -> dict[str, Any]:
    r"""Theorem 3 reduced to a sign condition, each step checked by sympy.

    With :math:`S = \|x\|_1 + \|y\|_1`, :math:`P = \langle x, y\rangle`, :math:`B = \|x-y\|_1`:

    .. math::

        \bar\Delta_{\mathrm{DML},2} - \bar\Delta_{\mathrm{DML},1}
        = \frac{B}{2P + B} - \frac{B}{S} = \frac{B\,(S - 2P - B)}{S\,(2P + B)},
        \qquad
        S - 2P - B = \sum_i 2 \min(x_i, y_i)\,\bigl(1 - \max(x_i, y_i)\bigr) \ge 0 .

    Returns
    -------
    dict
        ``"ratio_identity"``: the residual of the first identity in symbols :math:`S, P, B` (0);
        ``"pixel_residual"``: the order-free pixel residual
        :math:`x + y - 2xy - |x - y| - 2\min(x, y)\,(1 - \max(x, y))`, written with sympy's
        ``Abs``, ``Min`` and ``Max``;
        ``"pixel_terms"``: that residual simplified after substituting :math:`x = y + d` and
        :math:`y = x + d` (:math:`d \ge 0`), the two orders that cover every pair (both 0);
        ``"pixel_term"``: the pixel term :math:`2 m (1 - M)` as a function of
        :math:`m = \min, M = \max`, nonnegative on :math:`0 \le m \le M \le 1`.

    Notes
    -----
    The residual is written once, without choosing an order; each substitution lets sympy
    resolve ``Abs``, ``Min`` and ``Max`` its own way (``d`` is known to be nonnegative), so the
    two orders are two different expressions before simplification, not one expression twice.
    """
    import sympy as sp

    S, P, B = sp.symbols("S P B", positive=True)
    identity = sp.simplify((B / (2 * P + B) - B / S) - B * (S - 2 * P - B) / (S * (2 * P + B)))
    x, y, d = sp.symbols("x y d", nonnegative=True)
    residual = x + y - 2 * x * y - sp.Abs(x - y) - 2 * sp.Min(x, y) * (1 - sp.Max(x, y))
    orders = [sp.simplify(residual.subs(x, y + d)), sp.simplify(residual.subs(y, x + d))]  # x >= y, x <= y
    m, M = sp.symbols("m M", nonnegative=True)
    return {"ratio_identity": identity, "pixel_residual": residual, "pixel_terms": orders,
            "pixel_term": 2 * m * (1 - M)}


def rho_certificate() -> dict[str, Any]:
    r"""The constant :math:`\rho = 3/2` of Theorem 1 for DML = h(JML), checked by sympy.

    With :math:`h(t) = t/(2 - t)` and the JML values :math:`\alpha = g(x, y) \ge 0`,
    :math:`\beta = g(y, z) \ge 0` (numbers, not points), :math:`s = \alpha + \beta \le 1`,
    :math:`q = \alpha\beta`:

    .. math::

        \tfrac32\,(h(\alpha) + h(\beta)) - h(\alpha + \beta) = \frac{N}{D},\quad
        N = 2\bigl(s(2 - s) - q(6 - 2s)\bigr) \ge 2\cdot\frac{s(s-1)(s-4)}{2} \ge 0
        \ (q \le s^2/4),\quad D = 2(2-\alpha)(2-\beta)(2-\alpha-\beta) > 0,

    and for :math:`s > 1`, :math:`h(\min(1, s)) = 1 \le \tfrac32\cdot 2h(1/2) \le
    \tfrac32(h(\alpha)+h(\beta))` by convexity (:math:`h'' = 4/(2-t)^3 > 0`). Together with
    :math:`h` increasing and the triangle inequality of JML this gives eq. (5) with
    :math:`\rho = 3/2`; :math:`\alpha = \beta = 1/2` (the hard example of :func:`triangle_ratio`)
    attains it.

    Returns
    -------
    dict
        ``"numerator_identity"`` (0), ``"denominator_identity"`` (0),
        ``"lower_bound_identity"`` (0: :math:`s(2-s) - \tfrac{s^2}{4}(6-2s) - s(s-1)(s-4)/2`),
        ``"lower_bound"`` (the polynomial :math:`s(s-1)(s-4)/2`), ``"h_second_derivative"``,
        ``"tight_value"`` (:math:`h(1)/(2h(1/2)) = 3/2`).
    """
    import sympy as sp

    # alpha, beta: the JML values g(x, y), g(y, z) (numbers; x, y, z are the points)
    alpha, beta, s, q, t = sp.symbols("alpha beta s q t", nonnegative=True)
    h = lambda u: u / (2 - u)  # noqa: E731
    expr = sp.together(sp.Rational(3, 2) * (h(alpha) + h(beta)) - h(alpha + beta))
    num, den = sp.fraction(expr)
    claimed_num = 2 * (s * (2 - s) - q * (6 - 2 * s))
    num_id = sp.expand(num - claimed_num.subs({s: alpha + beta, q: alpha * beta}))
    den_id = sp.expand(den - 2 * (2 - alpha) * (2 - beta) * (2 - alpha - beta))
    lower = s * (s - 1) * (s - 4) / 2
    low_id = sp.expand(s * (2 - s) - s**2 / 4 * (6 - 2 * s) - lower)
    return {"numerator_identity": num_id, "denominator_identity": den_id, "lower_bound_identity": low_id,
            "lower_bound": lower, "h_second_derivative": sp.simplify(sp.diff(h(t), t, 2)),
            "tight_value": sp.nsimplify(h(sp.Integer(1)) / (2 * h(sp.Rational(1, 2))))}


def proposition1_certificate() -> dict[str, Any]:
    r"""Proposition 1 and the definitions of eq. (4), checked by sympy.

    :math:`h(t) = t / (2 - t)` maps :math:`[0, 1]` onto :math:`[0, 1]`, :math:`h(0) = 0` and
    :math:`h' = 2/(2 - t)^2 > 0`, so :math:`h(g) = 0 \iff g = 0`: the Dice loss
    :math:`h(\bar\Delta_{\mathrm{IoU}})` is reflexive and positive iff
    :math:`\bar\Delta_{\mathrm{IoU}}` is (Proposition 1). DML\ :sub:`k` is :math:`h` of JML\ :sub:`k`.

    Returns
    -------
    dict
        ``"h0"`` (0), ``"h1"`` (1), ``"h_derivative"`` (:math:`2/(2-t)^2`),
        ``"dml1_identity"``, ``"dml2_identity"`` (residuals of DML\ :sub:`k` - h(JML\ :sub:`k`) in
        symbols :math:`S, P, B`; both 0).
    """
    import sympy as sp

    t, S, P, B = sp.symbols("t S P B", positive=True)
    h = lambda u: u / (2 - u)  # noqa: E731
    jml1, jml2 = 1 - (S - B) / (S + B), 1 - P / (P + B)
    dml1, dml2 = 1 - (S - B) / S, 1 - 2 * P / (2 * P + B)
    return {"h0": h(sp.Integer(0)), "h1": h(sp.Integer(1)), "h_derivative": sp.simplify(sp.diff(h(t), t)),
            "dml1_identity": sp.simplify(dml1 - h(jml1)), "dml2_identity": sp.simplify(dml2 - h(jml2))}

