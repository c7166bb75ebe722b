r"""Soft labels from hard masks: the SAUNA transform, label smoothing and rater fusion.

* :func:`sauna_transform` — the Segmentation Annotation UNcertainty-Aware transform of Dang,
  Nguyen & Tiulpin (SAUNA, Sect. 3.2, eqs. 1–5): a binary vessel mask becomes a signed soft map
  in :math:`[-1, 1]` (foreground positive) built from each pixel's exact Euclidean distance to
  the other class and the local vessel thickness (the foreground distances max-pooled over a
  window, eq. 2; a ``"same-class"`` reading is an option).
* :func:`label_smoothing`, :func:`boundary_label_smoothing` — the LS and BLS baselines of both
  papers (LS after Szegedy et al., BLS after Wang & Blaschko's Jaccard metric losses).
* :func:`fuse_raters` — multi-rater fusion as compared in the Dice semimetric paper
  (Sect. 3.4, Table 2): majority vote, random rater, uniform mean and Dice-weighted mean.

Every function takes a NumPy array or a torch tensor (bool, integer or floating, values 0/1) and
returns the same kind — a torch tensor comes back on the device it came from — as ``float32``.
All computation is done with NumPy on the CPU: these are data-preparation transforms, run once
per mask, not training-time operations.

Why NumPy and not ``scipy.ndimage``, OpenCV or scikit-image for the SAUNA transform
-----------------------------------------------------------------------------------
The transform needs two exact Euclidean distance transforms (eq. 1, both classes) and one
max-pooling (two for the ``"same-class"`` reading) over a square of side up to
:math:`2\lfloor m\rfloor + 1` (eq. 2). Measured on 2048 × 2048 synthetic vessel trees
(``benchmarks/sauna.py``, this 2-core machine, with two poolings):

* ``scipy.ndimage.distance_transform_edt`` takes 0.35–0.5 s *per call* and
  ``scipy.ndimage.maximum_filter`` 0.07–0.09 s per call: about 0.85–1.0 s for the plain
  scipy route, four times the 0.25 s budget.
* OpenCV (``opencv-python-headless`` 5.0, not a dependency; installed in a throwaway folder to
  measure) has a fast exact EDT (``cv2.distanceTransform(..., DIST_L2, DIST_MASK_PRECISE)``,
  35 ms per call), but a straightforward OpenCV transform (two EDTs, two ``cv2.dilate``,
  NumPy arithmetic) still took 0.13–0.25 s, and it would add a binary dependency.
* The NumPy implementation below takes 0.08–0.13 s (agreeing with the OpenCV one to 1.2e-7),
  so no dependency is added; the default ``"foreground"`` reading, with one pooling, about
  0.07 s. scikit-image was not needed either (its EDT is scipy's).

What makes a dependency unnecessary is that everything eqs. 1–5 need lives within distance
:math:`m` of the boundary, and :math:`m` (the largest foreground distance, about half the width
of the thickest vessel) is small for vessel trees:

1. *Column pass.* The vertical distance of every pixel to the nearest pixel of the other class
   in its column, capped at :math:`K`, by ``log2 K`` doubling steps on whole arrays.
2. *Row pass.* :math:`d_i^2 = \min_{|s| \le R} (v_{i-s}^2 + s^2)` along each row (the second,
   exact pass of the separable Euclidean distance transform), evaluated as :math:`2R` shifted
   whole-array ``minimum`` operations on small unsigned integers (``uint8``, saturated at 255,
   when :math:`m < 15`, i.e. vessels up to ~29 px wide; ``uint16`` up to :math:`m < 65`). For
   the foreground the loop stops as soon as :math:`s^2` exceeds every current value; for the
   background it stops at :math:`s = \lfloor m \rfloor`, because background distances are
   only needed up to :math:`m` (beyond that the pixel is outside the set :math:`C` and its
   value is :math:`-1`). A value below :math:`(K + 1)^2` is exact; if :math:`m \ge K + 1` the
   pass is redone with the larger :math:`K`, and for very thick objects (:math:`m \ge 65`) it
   falls back to ``scipy.ndimage.distance_transform_edt``.
3. *Window maxima* of the squared distances (eq. 2; the foreground's, and for the
   ``"same-class"`` reading also the background's within :math:`C`) by the doubling
   (sparse-table) trick: ``log2(2w + 1) + 1`` shifted ``maximum`` operations per axis.

All arrays live in one padded, flattened layout so that every shift is a contiguous slice. The
squared distances are integers, so the whole computation up to the final ``sqrt`` is exact;
the result agrees with a literal float64 transcription of eqs. 1–5 using ``scipy``'s exact EDT
to float32 rounding (``tests/test_labels.py``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import numpy as np
import torch
from scipy import ndimage

from ._checks import check_fraction, check_int, check_option

__all__ = [
    "sauna_transform",
    "sauna_terms",
    "label_smoothing",
    "boundary_label_smoothing",
    "fuse_raters",
]

ArrayLike = Any  # np.ndarray | torch.Tensor

_WINDOWS = ("paper", "half")
_THICKNESS = ("foreground", "same-class")
_FUSIONS = ("mean", "majority", "random", "weighted")


# --------------------------------------------------------------------------- input / output


def _to_numpy(name: str, value) -> tuple[np.ndarray, torch.device | None]:
    """Return ``value`` as a NumPy array and the torch device it came from (``None`` for NumPy)."""
    if isinstance(value, torch.Tensor):
        t = value.detach()
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        if t.is_complex():
            raise TypeError(f"{name}: expected a bool, integer or real floating tensor, got dtype {value.dtype}")
        return t.cpu().numpy(), value.device
    if isinstance(value, np.ndarray):
        return value, None
    raise TypeError(f"{name}: expected a numpy.ndarray or torch.Tensor, got {type(value).__name__}")


def _binary(name: str, arr: np.ndarray) -> np.ndarray:
    """Check that ``arr`` holds only 0 and 1 (or is bool) and return it as a bool array."""
    kind = arr.dtype.kind
    if kind == "b":
        return arr
    if kind not in "uif":
        raise TypeError(f"{name}: expected a bool, integer or real floating array, got dtype {arr.dtype}")
    if arr.size:
        lo, hi = arr.min(), arr.max()
        if not (lo >= 0 and hi <= 1):  # NaN fails too
            if kind == "f" and not np.isfinite(arr).all():
                raise ValueError(f"{name}: expected a binary mask (values 0 and 1), got NaN or inf")
            raise ValueError(f"{name}: expected a binary mask (values 0 and 1), got values in [{lo:g}, {hi:g}]")
        if kind == "f" and not ((arr == 0) | (arr == 1)).all():
            raise ValueError(f"{name}: expected a binary mask (values 0 and 1), got non-binary values in [0, 1]")
    return arr != 0


def _back(out: np.ndarray, device: torch.device | None):
    """Return ``out`` (float32) as the kind the input was: NumPy, or torch on ``device``."""
    if device is None:
        return out
    return torch.from_numpy(out).to(device)


# --------------------------------------------------------------------------- shifted-array kernels
#
# Arrays of shape (N, H, W) are embedded in a padded buffer (N, H + 2P, W + P): the data sit at
# rows [P, P + H) and columns [P, P + W), and each buffer is used through its flat view
# (N, (H + 2P) * (W + P)). A horizontal shift by |s| <= P is then a flat shift by s (the P
# padding columns separate consecutive rows), a vertical shift by k <= P rows a flat shift by
# k * (W + P), and every such shift of a data position stays inside its own sample's buffer.
# All kernels write into preallocated buffers: on 2048 x 2048 masks each whole-array operation
# costs well under a millisecond, so fresh allocations (page faults) would dominate.

# Tiers of the bounded EDT: (steps of the column doubling, dtype). The steps cover
# K = 1 + sum(steps) pixels vertically; row-pass values below (K + 1)^2 are exact. In uint8 the
# candidates v^2 + s^2 are saturated at 255 (>= (K + 1)^2 = 225, i.e. "inexact" anyway).
_TIERS = (
    ((1, 2, 4, 6), np.uint8),                  # K = 14: m < 15 (vessel widths up to ~29 px)
    ((1, 2, 4, 8, 16, 32), np.uint16),         # K = 64: m < 65; 2 * 65^2 < 65535, no saturation
)


def _padded_shape(shape: tuple[int, int, int], pad: int) -> tuple[int, int, int]:
    n, h, w = shape
    return n, h + 2 * pad, w + pad


def _data(buf: np.ndarray, pad: int, h: int, w: int) -> np.ndarray:
    return buf[:, pad:pad + h, pad:pad + w]


def _window_max_flat(x: np.ndarray, radius: int, step: int, out: np.ndarray, scratch: np.ndarray) -> None:
    """``out[:, p] = max(x[:, p + k * step] for |k| <= radius)`` for every ``p`` whose window lies
    inside the array (other entries of ``out`` are set to 0).

    ``x``, ``out``, ``scratch`` are distinct ``(N, L)`` non-negative arrays (``out`` may be ``x``
    only for ``radius == 0``). Sparse-table doubling: ``q[p]`` becomes the max over
    ``[p, p + span)`` (units of ``step``), ``span`` the largest power of two
    ``<= 2 * radius + 1``; two overlapping blocks then cover the window. ``scratch`` and
    ``out`` are used as ping-pong buffers, so no operation reads what it writes.
    """
    if radius == 0:
        if out is not x:
            np.copyto(out, x)
        return
    length = x.shape[1]
    levels = (2 * radius + 1).bit_length() - 1     # doubling steps: span = 2 ** levels
    # Alternate the two buffers so that the last level lands in ``scratch``: the combine below
    # then reads ``scratch`` and writes ``out``.
    src, dst = x, (scratch if levels % 2 else out)
    span = 1
    for _ in range(levels):
        o = span * step
        np.maximum(src[:, :-o], src[:, o:], out=dst[:, :-o])
        dst[:, -o:] = src[:, -o:]                  # truncated blocks at the very end
        src, dst = dst, (out if dst is scratch else scratch)
        span *= 2
    q = src                                         # == scratch
    lo = radius * step                              # first p with p - radius * step >= 0
    b = (radius - span + 1) * step                  # the right block starts at p + b (b >= -lo)
    hi = min(length, length - b)                    # p < length and p + b < length
    np.maximum(q[:, 0:hi - lo], q[:, lo + b:hi + b], out=out[:, lo:hi])
    out[:, :lo] = 0
    out[:, hi:] = 0


def _box_max(buf: np.ndarray, radius: int, out: np.ndarray, scratch: np.ndarray, tmp: np.ndarray) -> None:
    """``out`` = max of ``buf`` over the square ``||i - j||_inf <= radius`` (padded, pad >= radius)."""
    n, hp, wp = buf.shape
    flat = (n, hp * wp)
    _window_max_flat(buf.reshape(flat), radius, 1, tmp.reshape(flat), scratch.reshape(flat))
    _window_max_flat(tmp.reshape(flat), radius, wp, out.reshape(flat), scratch.reshape(flat))


def _vertical_sq(lab: np.ndarray, steps: tuple[int, ...], dtype) -> np.ndarray:
    """Squared vertical distance to the nearest pixel of the other class in the same column.

    Exact where the distance is ``<= K = 1 + sum(steps)``; larger distances (and columns
    without the other class) give ``(K + 1)^2``.
    """
    n, h, w = lab.shape
    far = 1 + sum(steps) + 1
    change = lab[:, 1:] != lab[:, :-1]            # between rows i-1 and i
    up = np.full((n, h, w), far, dtype=dtype)      # distance to the nearest change at or above
    down = np.full((n, h, w), far, dtype=dtype)
    np.copyto(up[:, 1:], 1, where=change)
    np.copyto(down[:, :-1], 1, where=change)
    tmp = np.empty_like(up)
    for st in steps:                               # each step <= the coverage so far
        if st >= h:
            break
        np.add(up[:, :-st], st, out=tmp[:, st:])
        np.minimum(up[:, st:], tmp[:, st:], out=up[:, st:])
        np.add(down[:, st:], st, out=tmp[:, :-st])
        np.minimum(down[:, :-st], tmp[:, :-st], out=down[:, :-st])
    np.minimum(up, down, out=up)
    np.minimum(up, far, out=up)
    np.multiply(up, up, out=up)
    return up


def _row_pass(src: np.ndarray, best: np.ndarray, tmp: np.ndarray, max_shift: int | None) -> None:
    """Second pass of the separable EDT, in place: ``best = min_|s| (src[p - s] + s^2)``.

    ``src``, ``best``, ``tmp`` are flat padded buffers ``(N, L)``. With ``max_shift=None`` the
    loop ends once ``s^2`` exceeds the largest current value (no later shift can lower
    anything; used for the foreground, whose ``best`` is 0 elsewhere); otherwise it runs to
    ``max_shift``. In ``uint8`` the candidates are saturated at 255 by capping ``src`` (in
    place) at ``255 - s^2``: caps only decrease with ``s``, so each shift sees
    ``min(src, 255 - s^2) + s^2 = min(src + s^2, 255)``.
    """
    top = int(np.iinfo(src.dtype).max)
    saturate = src.dtype == np.uint8
    src_max = int(src.max()) if saturate else 0
    s = 1
    while True:
        s2 = s * s
        if max_shift is None:
            if s2 > int(best.max()):
                break
        elif s > max_shift:
            break
        if saturate and src_max + s2 > top:
            np.minimum(src, top - s2, out=src)
            src_max = top - s2
        np.add(src[:, :-s], s2, out=tmp[:, :-s])
        np.minimum(best[:, s:], tmp[:, :-s], out=best[:, s:])
        np.add(src[:, s:], s2, out=tmp[:, s:])
        np.minimum(best[:, :-s], tmp[:, s:], out=best[:, :-s])
        s += 1


def _squared_distances(lab: np.ndarray):
    """Squared distances of eq. 1 for a stack of masks that each have both classes.

    Returns ``(pad, fg, bg, m2)``: ``fg`` and ``bg`` are padded buffers (zero padding) holding
    the exact :math:`d_i^2` of foreground pixels (0 elsewhere) and, for background pixels,
    :math:`d_i^2` exact wherever :math:`d_i \\le m` (some value :math:`> m^2` otherwise; 0 on the
    foreground); ``m2`` is :math:`m^2` per mask (``int64``).
    """
    n, h, w = lab.shape
    for steps, dtype in _TIERS:
        k = 1 + sum(steps)
        big = (k + 1) ** 2                         # "no candidate"; values >= big are inexact
        pad = k + 1                                # >= every shift used below
        v2 = _vertical_sq(lab, steps, dtype)
        shape = _padded_shape(lab.shape, pad)
        src = np.full(shape, big, dtype=dtype)
        fg = np.zeros(shape, dtype=dtype)
        tmp = np.empty(shape, dtype=dtype)
        flat = (n, shape[1] * shape[2])
        np.multiply(v2, lab, out=_data(src, pad, h, w))   # FG: vertical distance to BG; BG: 0
        np.copyto(_data(fg, pad, h, w), _data(src, pad, h, w))
        _row_pass(src.reshape(flat), fg.reshape(flat), tmp.reshape(flat), None)
        m2 = fg.reshape(n, -1).max(axis=1).astype(np.int64)
        if m2.max() >= big:
            continue                               # some m >= k + 1: next tier
        bg = np.zeros(shape, dtype=dtype)
        src.fill(big)                              # the foreground pass capped src in place
        np.copyto(_data(src, pad, h, w), v2)
        np.copyto(_data(src, pad, h, w), 0, where=lab)     # BG: vertical distance to FG; FG: 0
        np.copyto(_data(bg, pad, h, w), _data(src, pad, h, w))
        _row_pass(src.reshape(flat), bg.reshape(flat), tmp.reshape(flat), math.isqrt(int(m2.max())))
        return pad, fg, bg, m2
    # Very thick objects (m >= 65): exact EDT from scipy, O(HW) whatever m is.
    fg2 = np.stack([ndimage.distance_transform_edt(x) for x in lab])
    bg2 = np.stack([ndimage.distance_transform_edt(~x) for x in lab])
    fg2 = np.rint(fg2 * fg2).astype(np.int64)
    bg2 = np.rint(bg2 * bg2).astype(np.int64)
    m2 = fg2.reshape(n, -1).max(axis=1)
    pad = math.isqrt(int(m2.max())) + 1
    shape = _padded_shape(lab.shape, pad)
    fg, bg = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    _data(fg, pad, h, w)[...] = fg2
    _data(bg, pad, h, w)[...] = bg2
    return pad, fg, bg, m2


def _window_radius(m2: int, window: str) -> int:
    """Chebyshev radius of the pooling window of eq. 2 for :math:`m = \\sqrt{m2}`."""
    if window == "paper":                          # ||i - j||_inf <= m  <=>  |offset| <= floor(m)
        return math.isqrt(m2)
    side = math.isqrt(m2 - 1) + 1                  # ceil(m), made odd as in the authors' code
    side += side % 2 == 0
    return (side - 1) // 2


def _sauna_stack(lab: np.ndarray, window: str, thickness: str) -> np.ndarray:
    """SAUNA maps of a stack ``(N, H, W)`` of bool masks that each have both classes."""
    n, h, w = lab.shape
    pad, fg, bg, m2 = _squared_distances(lab)
    if int(m2.max()) < np.iinfo(np.uint8).max and fg.dtype != np.uint8:
        fg = fg.astype(np.uint8)                   # every value that matters is <= m^2
        bg = np.minimum(bg, int(m2.max()) + 1).astype(np.uint8)
    m2b = m2.astype(bg.dtype)[:, None, None]
    radii = np.array([_window_radius(int(q), window) for q in m2])
    groups = np.unique(radii)
    scratch, tmp = np.empty_like(fg), np.empty_like(fg)

    def pooled(buf: np.ndarray) -> np.ndarray:
        """Window maxima of eq. 2 over ``buf`` (zero padding: windows clipped at the border)."""
        if groups.size == 1:
            out = np.empty_like(buf)
            _box_max(buf, int(groups[0]), out, scratch, tmp)
            return out
        out = np.empty_like(buf)                   # one pass per distinct window size, not per mask
        for r in groups:
            idx = np.flatnonzero(radii == r)
            out[idx] = _box_max_copy(buf[idx], int(r))
        return out

    # Eq. 2: the set C restricts the pooled pixels j. Every foreground pixel is in C (d <= m by
    # the definition of m), so pooling ``fg`` (foreground d^2, 0 elsewhere) is the "foreground"
    # reading for every pixel i, and the foreground half of the "same-class" one.
    t2 = _data(pooled(fg), pad, h, w)
    if thickness == "same-class":
        # background pixels pool the background d^2 of C only (bg > m^2 is outside C)
        tb = _data(pooled(bg * (bg <= m2b)), pad, h, w)
        t2 = np.where(lab, t2, tb)
    # d^2 capped at m^2: eq. 3 uses min(1, d/m); the background buffer is exact only up to m.
    d2 = _data(fg, pad, h, w) + np.minimum(_data(bg, pad, h, w), m2b)
    # Eqs. 3-5 with d' = min(d, m) and t <= m (t pools distances of C):
    #   |y| = min(1, d'/m + 1 - t/m) = 1 - max(0, t - d')/m.
    # On the foreground (and, same-class, on the background in C) i is in its own window, so
    # t >= d and the clip is inactive; elsewhere it gives -1 wherever d' >= t.
    u = np.sqrt(t2, dtype=np.float32)
    u -= np.sqrt(d2, dtype=np.float32)
    np.maximum(u, 0.0, out=u)
    u *= (1.0 / np.sqrt(m2)).astype(np.float32)[:, None, None]
    np.subtract(1.0, u, out=u)
    np.negative(u, out=u, where=~lab)
    return u


def _box_max_copy(buf: np.ndarray, radius: int) -> np.ndarray:
    out, scratch, tmp = np.empty_like(buf), np.empty_like(buf), np.empty_like(buf)
    _box_max(buf, radius, out, scratch, tmp)
    return out


# --------------------------------------------------------------------------- public API


def sauna_transform(mask: ArrayLike, *, window: Literal["paper", "half"] = "paper",
                    thickness: Literal["foreground", "same-class"] = "foreground") -> ArrayLike:
    r"""SAUNA transform (eqs. 1–5): a binary mask to a signed soft map in :math:`[-1, 1]`.

    Parameters
    ----------
    mask : numpy.ndarray or torch.Tensor
        Binary mask of shape ``(H, W)`` or a batch ``(N, H, W)``; bool, or integer/floating with
        values 0 and 1. Foreground is 1.
    window : {"paper", "half"}, default "paper"
        Pooling window of the thickness transform (eq. 2), for both classes. ``"paper"``: the
        square :math:`\|i - j\|_\infty \le m`, of side :math:`2\lfloor m \rfloor + 1`.
        ``"half"``: the smaller square the authors' released code uses for the foreground, of
        side :math:`\lceil m \rceil` rounded up to the next odd number (Chebyshev radius about
        :math:`m / 2`). The released code pools for background pixels with a window twice as
        large (side :math:`2\lceil m \rceil`, made odd: about the ``"paper"`` one); here one
        window serves both classes.
    thickness : {"foreground", "same-class"}, default "foreground"
        Which distances eq. (2) pools (see Notes). ``"foreground"``: for every pixel, the
        largest *foreground* distance in its window — "max-pooling of a positive distance map"
        (Sect. 3.2), as the authors' released code does. ``"same-class"``: the largest
        distance, within :math:`C`, of pixels of the pixel's *own* class.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``float32`` map of the same shape and kind as ``mask`` (a tensor on ``mask``'s
        device), in :math:`[-1, 1]`: positive exactly on the foreground, negative exactly on
        the background, so thresholding at 0 gives back ``mask``.

    Raises
    ------
    TypeError
        If ``mask`` is not a NumPy array or torch tensor, or has a non-numeric dtype.
    ValueError
        If ``mask`` is not 2-D or 3-D, has an empty spatial axis, is not binary (or holds NaN),
        ``window`` is not ``"paper"`` or ``"half"``, or ``thickness`` is not ``"foreground"``
        or ``"same-class"``.

    Notes
    -----
    With :math:`s_i = \operatorname{sign}(2 y_i - 1)`, :math:`d_i` the exact Euclidean distance
    from pixel :math:`i` to the nearest pixel of the other class (eq. 1),
    :math:`m = \max_{y_k = 1} d_k`, :math:`C = \{j : d_j \le m\}` and :math:`w` the window's
    Chebyshev radius, the paper prints eq. (2) as
    :math:`t_i = \max_{j \in C:\, y_i = 1,\, \|i - j\|_\infty \le m} d_j` for :math:`i \in \Omega`
    — the condition reads :math:`y_i`, not :math:`y_j` — and says that "the thickness
    transform is defined as the application of max-pooling to a positive distance map". The
    two readings:

    .. math::

        t^{\mathrm{fg}}_i = \max_{j \in C,\; y_j = 1,\; \|i - j\|_\infty \le w} d_j, \qquad
        t^{\mathrm{same}}_i = \max_{j \in C,\; y_j = y_i,\; \|i - j\|_\infty \le w} d_j,

    (a maximum over an empty set is 0), then for every pixel (eqs. 3–5)

    .. math::

        \tilde y_i = \operatorname{clip}\Big(s_i \min\big(1, \tfrac{d_i}{m}\big)
        + s_i \big[1 - \min\big(1, \tfrac{t_i}{m}\big)\big], -1, 1\Big)
        = s_i \Big(1 - \frac{\max(0,\, t_i - \min(d_i, m))}{m}\Big).

    Both readings agree on the foreground (every foreground pixel is in :math:`C`). They
    differ on the background:

    * ``"foreground"`` (default: the paper's "positive distance map" and the released code):
      a background pixel sees the thickness of the vessels within its window. While its window
      reaches the thickest pixels of a vessel of thickness :math:`t_v` (largest distance in
      the vessel), it gets :math:`-(1 - (t_v - d_i)/m)`; just outside the boundary
      (:math:`d_i = 1`) that is the mirror image of the foreground boundary value
      :math:`1 - (t_v - 1)/m`: :math:`-1/m` beside the thickest vessel, :math:`-1` beside a
      one-pixel vessel. Farther out :math:`t` falls as the window leaves the vessel,
      and :math:`\tilde y` reaches :math:`-1`. A background pixel with no foreground in its
      window has :math:`t = 0`, hence :math:`\tilde y = -1` (the released code sets it to
      :math:`-1` explicitly).
    * ``"same-class"``: a background pixel sees the largest background distance (within
      :math:`C`) in its window, i.e. the width of the background region it lies in, so the
      background just outside *every* vessel is :math:`-1/m` wherever a background pixel at
      distance :math:`m` from the foreground lies in its window.
      This was the book's first reading of eq. (2) (the text also says that :math:`y^T` is
      "inversely proportional to the thickness of either FG or BG region").

    Other decisions:

    * :math:`t_i` **is computed from eq. (2) for every pixel** :math:`i`; :math:`C` restricts
      only the pooled pixels :math:`j`. Pixels with :math:`d_i > m` (background only) have
      :math:`y^B = -1` and :math:`y^T \le 0`, so :math:`\tilde y = -1` under both readings
      ("distant BG pixels are highly certain").
    * **Window**: :math:`w = \lfloor m \rfloor` for ``"paper"``; for ``"half"`` the side
      :math:`\lceil m \rceil` made odd, :math:`w = (\text{side} - 1) / 2`. Windows are clipped
      at the image border (only :math:`j \in \Omega`).
    * **Clipping of eq. 5** to :math:`[-1, 1]` is active only on the background: on the
      foreground :math:`d_i \le t_i \le m` (the pixel is in its own window), so
      :math:`\tilde y_i = 1 - (t_i - d_i)/m \in [1/m, 1]`.
    * **Distances** follow eq. 1 literally: pixel-centre distances, so :math:`d_i \ge 1` and
      the boundary pixels get :math:`|y^B_i| = 1/m`, not 0 (the sentence ":math:`y^B_i = 0`
      iff boundary" cannot hold under eq. 1). ``m`` is computed per mask in a batch.
    * **Empty mask** (no foreground, :math:`m` undefined): all :math:`-1`, certain background.
      **Full mask** (no background, :math:`d` undefined): all :math:`+1`.

    Consequences worth knowing (checked in ``tests/test_labels.py``): at the centre line of the
    thickest vessel :math:`\tilde y = 1`, and across a thick vessel :math:`\tilde y = y^B` is a
    ramp :math:`d/m`. A vessel much thinner than :math:`m` has :math:`t_i = d_i`, hence
    :math:`\tilde y = +1` on all its pixels: thin vessels get a wide *margin* between the two
    classes' targets ("adaptive margins across the boundaries of thin ones", Sect. 3.2) — from
    :math:`-1` to :math:`+1` under ``"foreground"``, from about :math:`-1/m` to :math:`+1`
    under ``"same-class"`` — not lower foreground values.

    References
    ----------
    Dang, Nguyen & Tiulpin, "Image-level Regression for Uncertainty-aware Retinal Image
    Segmentation" (SAUNA), Sect. 3.2, eqs. (1)–(5); the authors' released code,
    github.com/Oulu-IMEDS/SAUNA, ``mlpipeline/utils/generate_uncertainty_masks.py`` (mode
    ``"hh"``, ``kernel_ratio=2``).

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((7, 5), dtype=bool)
    >>> mask[1:6, 1:4] = True                     # a 5 x 3 block, m = 2
    >>> y = sauna_transform(mask)
    >>> y.dtype, y.shape, float(y[3, 2]), round(float(y[0, 0]), 4)
    (dtype('float32'), (7, 5), 1.0, -0.7071)
    >>> float(sauna_transform(mask, thickness="same-class")[0, 0])
    -1.0
    >>> bool(((y > 0) == mask).all())
    True
    """
    check_option("window", window, _WINDOWS)
    check_option("thickness", thickness, _THICKNESS)
    arr, device = _to_numpy("mask", mask)
    if arr.ndim not in (2, 3):
        raise ValueError(f"mask: expected shape (H, W) or (N, H, W), got {tuple(arr.shape)}")
    if arr.shape[-1] == 0 or arr.shape[-2] == 0:
        raise ValueError(f"mask: expected non-empty spatial axes (H, W >= 1), got {tuple(arr.shape)}")
    lab = _binary("mask", arr)
    single = lab.ndim == 2
    if single:
        lab = lab[None]
    n = lab.shape[0]
    out = np.empty(lab.shape, dtype=np.float32)
    has_fg = lab.reshape(n, -1).any(axis=1)
    has_bg = ~lab.reshape(n, -1).all(axis=1)
    out[~has_fg] = -1.0                        # empty mask: certain background
    out[has_fg & ~has_bg] = 1.0                # full mask: certain foreground
    both = has_fg & has_bg
    if both.all():
        out = _sauna_stack(np.ascontiguousarray(lab), window, thickness)
    elif both.any():
        out[both] = _sauna_stack(np.ascontiguousarray(lab[both]), window, thickness)
    return _back(out[0] if single else out, device)


def sauna_terms(mask: ArrayLike, *, window: Literal["paper", "half"] = "paper",
                thickness: Literal["foreground", "same-class"] = "foreground") -> dict[str, Any]:
    r"""The intermediate maps of the SAUNA transform (eqs. 1–5) of one 2-D mask, in float64.

    A literal transcription with ``scipy.ndimage`` (exact EDT, maximum filter), for figures,
    ablations and checks; :func:`sauna_transform` is the fast path and agrees with ``"sauna"``
    here to float32 rounding. Same decisions as :func:`sauna_transform` (two readings of eq. 2,
    :math:`t` computed for every pixel with :math:`C` restricting the pooled pixels, windows
    clipped at the border, eq. 5 clipped).

    Parameters
    ----------
    mask : numpy.ndarray or torch.Tensor
        Binary mask ``(H, W)`` with both classes present.
    window : {"paper", "half"}, default "paper"
        As in :func:`sauna_transform`.
    thickness : {"foreground", "same-class"}, default "foreground"
        As in :func:`sauna_transform`.

    Returns
    -------
    dict
        NumPy ``float64`` maps of shape ``(H, W)``: ``"distance"`` :math:`d` (eq. 1),
        ``"thickness"`` :math:`t` (eq. 2, every pixel; 0 where the window holds no pooled
        pixel), ``"boundary"`` :math:`y^B` (eq. 3), ``"thickness_term"`` :math:`y^T` (eq. 4),
        ``"sauna"`` :math:`\tilde y` (eq. 5, clipped to :math:`[-1, 1]`); and ``"m"`` (float)
        and ``"radius"`` (int, the Chebyshev radius of the window).

    Raises
    ------
    TypeError
        If ``mask`` is not an array/tensor or has a non-numeric dtype.
    ValueError
        If ``mask`` is not 2-D, not binary, or lacks one of the two classes (``m`` or ``d``
        undefined), or ``window`` / ``thickness`` is not one of its options.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.zeros((1, 7), dtype=bool)
    >>> mask[0, 3] = True                         # a one-pixel vessel: m = 1
    >>> terms = sauna_terms(mask)
    >>> terms["thickness"][0].tolist(), terms["sauna"][0].tolist()
    ([0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0], [-1.0, -1.0, -1.0, 1.0, -1.0, -1.0, -1.0])
    """
    check_option("window", window, _WINDOWS)
    check_option("thickness", thickness, _THICKNESS)
    arr, _ = _to_numpy("mask", mask)
    if arr.ndim != 2:
        raise ValueError(f"mask: expected shape (H, W), got {tuple(arr.shape)}")
    lab = _binary("mask", arr)
    if not lab.any() or lab.all():
        raise ValueError("mask: expected both classes (foreground 1 and background 0), got a "
                         f"{'empty' if not lab.any() else 'full'} mask")
    d = np.where(lab, ndimage.distance_transform_edt(lab), ndimage.distance_transform_edt(~lab))   # eq. 1
    m2 = int(round(float((d[lab] ** 2).max())))
    m = math.sqrt(m2)
    radius = _window_radius(m2, window)
    in_c = d <= m * (1 + 1e-12)            # the set C (the tolerance absorbs sqrt rounding at d = m)
    size = 2 * radius + 1

    def pool(sel):
        # max of d_j over the pixels j selected, in the window of every pixel i (0 if none)
        return ndimage.maximum_filter(np.where(sel, d, 0.0), size=size, mode="constant", cval=0.0)

    if thickness == "foreground":
        t = pool(lab & in_c)                                                                         # eq. 2
    else:
        t = np.where(lab, pool(lab & in_c), pool(~lab & in_c))                                       # eq. 2
    s = np.where(lab, 1.0, -1.0)
    y_b = s * np.minimum(1.0, d / m)                                                                 # eq. 3
    y_t = s * (1.0 - np.minimum(1.0, t / m))                                                         # eq. 4
    return {"distance": d, "thickness": t, "boundary": y_b, "thickness_term": y_t,
            "sauna": np.clip(y_b + y_t, -1.0, 1.0), "m": m, "radius": radius}                        # eq. 5


def label_smoothing(mask: ArrayLike, eps: float) -> ArrayLike:
    r"""Label smoothing (LS) of a binary mask: :math:`(1 - \epsilon)\,y + \epsilon / 2`.

    Parameters
    ----------
    mask : numpy.ndarray or torch.Tensor
        Binary mask of any shape; bool, or integer/floating with values 0 and 1.
    eps : float
        Smoothing strength in :math:`[0, 1]`; ``0`` returns the mask, ``1`` the constant 1/2.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``float32`` soft label of the same shape and kind: foreground :math:`1 - \epsilon/2`,
        background :math:`\epsilon/2`.

    Raises
    ------
    TypeError
        If ``mask`` is not an array/tensor of a numeric dtype, or ``eps`` is not a real number.
    ValueError
        If ``mask`` is not binary or ``eps`` is outside :math:`[0, 1]`.

    Notes
    -----
    Szegedy et al.'s label smoothing with :math:`K = 2` classes (foreground, background):

    .. math::

        y^{\mathrm{LS}}_i = (1 - \epsilon)\, y_i + \frac{\epsilon}{K}, \qquad K = 2.

    Each entry is treated as an independent binary (sigmoid-style) label, so a one-hot
    ``(N, C, ...)`` mask with :math:`C > 2` channels is smoothed per channel with
    :math:`\epsilon / 2`, not :math:`\epsilon / C`. The Dice semimetric paper uses LS (Sect.
    3.4–3.5, Tables 2 and 4) without printing a formula; it cites Szegedy et al. [43]. Its
    authors' released code smooths only near the boundary instead (JDTLosses ``ls.yaml``:
    :math:`\epsilon = 0.5` in a 3 × 3 window), which is
    ``boundary_label_smoothing(mask, 0.5, 1)``.

    References
    ----------
    Wang et al., "Dice Semimetric Losses", MICCAI 2023, Sect. 3.4 (Table 2, "LS") and ref.
    [43] (Szegedy et al., CVPR 2016); SAUNA paper, Sect. 4.1 (baseline LS).

    Examples
    --------
    >>> import numpy as np
    >>> label_smoothing(np.array([0, 1, 1]), 0.2)
    array([0.1, 0.9, 0.9], dtype=float32)
    """
    e = check_fraction("eps", eps)
    arr, device = _to_numpy("mask", mask)
    lab = _binary("mask", arr)
    out = np.where(lab, np.float32(1.0 - e / 2), np.float32(e / 2)).astype(np.float32, copy=False)
    return _back(out, device)


def boundary_label_smoothing(mask: ArrayLike, eps: float, width: int) -> ArrayLike:
    r"""Boundary label smoothing (BLS): label smoothing only in a band around the boundary.

    Parameters
    ----------
    mask : numpy.ndarray or torch.Tensor
        Binary mask of shape ``(..., H, W)`` (the last two axes are spatial, leading axes are
        batched); bool, or integer/floating with values 0 and 1.
    eps : float
        Smoothing strength in :math:`[0, 1]`, as in :func:`label_smoothing`.
    width : int
        Chebyshev radius of the band, ``>= 1``: a pixel is smoothed iff a pixel of the other
        class lies in the :math:`(2\,\mathrm{width} + 1)^2` square centred on it (both sides of
        the boundary). ``width=2`` is the 5 × 5 window used by the SAUNA authors' BLS baseline.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``float32`` soft label of the same shape and kind: :math:`1 - \epsilon/2` /
        :math:`\epsilon/2` in the band, 1 / 0 elsewhere.

    Raises
    ------
    TypeError
        If ``mask`` is not an array/tensor of a numeric dtype, ``eps`` not a real number or
        ``width`` not an integer.
    ValueError
        If ``mask`` has fewer than 2 axes or an empty one, is not binary, ``eps`` is outside
        :math:`[0, 1]` or ``width < 1``.

    Notes
    -----
    With :math:`B = \{i : \exists j,\ y_j \ne y_i,\ \|i - j\|_\infty \le \mathrm{width}\}`
    (windows clipped at the image border; outside the image is neither class):

    .. math::

        y^{\mathrm{BLS}}_i = \begin{cases} (1 - \epsilon)\, y_i + \epsilon / 2 & i \in B \\
        y_i & i \notin B. \end{cases}

    Neither paper prints a formula for BLS; this follows the description of Wang & Blaschko's
    Jaccard metric losses (label smoothing restricted to pixels near class boundaries) with the
    two-class smoothing of :func:`label_smoothing`.

    References
    ----------
    SAUNA paper, Sect. 4.1 and Tables 1–2 (baseline "BLS [36]"); Wang & Blaschko, "Jaccard
    metric losses", ref. [36] of the SAUNA paper / [47] of the Dice semimetric paper.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.array([[0, 0, 0, 0, 1, 1]])
    >>> boundary_label_smoothing(m, 0.2, 1)
    array([[0. , 0. , 0. , 0.1, 0.9, 1. ]], dtype=float32)
    """
    e = check_fraction("eps", eps)
    r = check_int("width", width, 1)
    arr, device = _to_numpy("mask", mask)
    if arr.ndim < 2:
        raise ValueError(f"mask: expected shape (..., H, W) (at least 2 dims), got {tuple(arr.shape)}")
    if arr.shape[-1] == 0 or arr.shape[-2] == 0:
        raise ValueError(f"mask: expected non-empty spatial axes (H, W >= 1), got {tuple(arr.shape)}")
    lab = _binary("mask", arr)
    shape = lab.shape
    h, w = shape[-2:]
    stack = lab.reshape(-1, h, w)
    r = min(r, max(h, w))                      # a larger radius changes nothing
    padded = _padded_shape(stack.shape, r)
    buf, out_fg, out_bg = (np.zeros(padded, dtype=np.uint8) for _ in range(3))
    scratch, tmp = np.empty_like(buf), np.empty_like(buf)
    np.copyto(_data(buf, r, h, w), stack)
    _box_max(buf, r, out_fg, scratch, tmp)     # 1 where a foreground pixel is within r
    np.logical_not(stack, out=_data(buf, r, h, w), casting="unsafe")
    _box_max(buf, r, out_bg, scratch, tmp)     # 1 where a background pixel is within r
    band = (_data(out_fg, r, h, w) & _data(out_bg, r, h, w)).astype(bool).reshape(shape)
    out = lab.astype(np.float32)
    out[band] = np.where(lab[band], np.float32(1.0 - e / 2), np.float32(e / 2))
    return _back(out, device)


def fuse_raters(masks: ArrayLike, method: Literal["mean", "majority", "random", "weighted"] = "mean",
                *, seed: int | np.random.Generator | None = None) -> ArrayLike:
    r"""Fuse the binary masks of several raters of one case into one (soft or hard) label.

    Parameters
    ----------
    masks : numpy.ndarray or torch.Tensor
        Shape ``(R, *spatial)``: ``R >= 1`` raters on the leading axis, the rest one case
        (weights of ``"weighted"`` are computed over all non-rater axes, so fuse one case per
        call). Bool, or integer/floating with values 0 and 1.
    method : {"mean", "majority", "random", "weighted"}, default "mean"
        ``"mean"``: uniform average (soft). ``"majority"``: majority vote (hard).
        ``"random"``: the mask of one rater drawn uniformly (hard). ``"weighted"``: average
        weighted by each rater's Dice score with the majority vote (soft).
    seed : int, numpy.random.Generator or None, default None
        Randomness of ``"random"`` (``numpy.random.default_rng(seed)``). Ignored, with a
        warning, by the other methods.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``float32`` label of shape ``spatial``, same kind as ``masks``, in :math:`[0, 1]`.

    Raises
    ------
    TypeError
        If ``masks`` is not an array/tensor of a numeric dtype, or ``seed`` has a wrong type.
    ValueError
        If ``masks`` has fewer than 2 axes or no rater, is not binary, or ``method`` is unknown.

    Notes
    -----
    With raters :math:`y^{(1)}, \dots, y^{(R)}`:

    .. math::

        \bar y = \frac1R \sum_r y^{(r)}, \qquad
        y^{\mathrm{MV}} = [\bar y > \tfrac12], \qquad
        y^{\mathrm{W}} = \frac{\sum_r w_r\, y^{(r)}}{\sum_r w_r}, \quad
        w_r = \mathrm{Dice}(y^{(r)}, y^{\mathrm{MV}}) = \frac{2 |y^{(r)} \cap y^{\mathrm{MV}}|}
        {|y^{(r)}| + |y^{\mathrm{MV}}|}.

    * **Majority ties** (possible for an even :math:`R`): a pixel is foreground only with a
      strict majority, :math:`\bar y > 1/2`; ties go to background. The paper does not say.
    * **Weights** follow the paper (Sect. 3.4: "weighting each rater's annotation by its Dice
      score with respect to the majority votes"), normalised to sum to 1. Two empty masks
      have Dice 1 (perfect agreement); if every weight is 0 (each rater disagrees completely
      with an empty or disjoint majority vote) the uniform mean is returned.
    * **Random**: one rater for the whole case, as random sampling of each rater's annotation
      in the paper (Sect. 3.4, after Jensen et al. [22]).

    References
    ----------
    Wang et al., "Dice Semimetric Losses", MICCAI 2023, Sect. 3.4 and Table 2 (Majority,
    Random, Uniform, Weighted).

    Examples
    --------
    >>> import numpy as np
    >>> raters = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0]])
    >>> fuse_raters(raters, "mean")
    array([1.        , 0.6666667 , 0.33333334, 0.        ], dtype=float32)
    >>> fuse_raters(raters, "majority")
    array([1., 1., 0., 0.], dtype=float32)
    """
    check_option("method", method, _FUSIONS)
    if seed is not None and not isinstance(seed, np.random.Generator) and (
            isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed: expected None, an integer or a numpy.random.Generator, got {type(seed).__name__}")
    if seed is not None and method != "random":
        warnings.warn(f"seed: ignored by method={method!r} (only 'random' is random)", stacklevel=2)
    arr, device = _to_numpy("masks", masks)
    if arr.ndim < 2:
        raise ValueError(f"masks: expected shape (R, *spatial) (at least 2 dims), got {tuple(arr.shape)}")
    if arr.shape[0] == 0:
        raise ValueError(f"masks: expected at least one rater on the leading axis, got shape {tuple(arr.shape)}")
    lab = _binary("masks", arr)
    n_raters = lab.shape[0]
    if method == "random":
        r = int(np.random.default_rng(seed).integers(n_raters))
        out = lab[r].astype(np.float32)
    else:
        votes = lab.reshape(n_raters, -1).sum(axis=0, dtype=np.int64).reshape(lab.shape[1:])
        if method == "mean":
            out = (votes / n_raters).astype(np.float32)
        else:
            majority = 2 * votes > n_raters      # strict majority; ties -> background
            if method == "majority":
                out = majority.astype(np.float32)
            else:
                flat = lab.reshape(n_raters, -1)
                mv = majority.reshape(-1)
                inter = (flat & mv).sum(axis=1, dtype=np.int64)
                size = flat.sum(axis=1, dtype=np.int64) + int(mv.sum())
                dice = np.where(size > 0, 2.0 * inter / np.maximum(size, 1), 1.0)
                weights = dice / dice.sum() if dice.sum() > 0 else np.full(n_raters, 1.0 / n_raters)
                out = np.tensordot(weights, flat.astype(np.float64), axes=1)
                out = out.reshape(lab.shape[1:]).astype(np.float32)
    return _back(out, device)
