"""Tests of :mod:`softseg.labels`: the SAUNA transform (SAUNA paper, Sect. 3.2, eqs. 1-5, both
readings of eq. 2: "foreground" and "same-class"), label smoothing, boundary label smoothing and
rater fusion (Dice semimetric paper, Sect. 3.4).

Expected SAUNA values are either derived by hand (tables below, with the derivation) or come
from :func:`sauna_reference`, an independent float64 transcription of eqs. 1-5 built on
``scipy.ndimage.distance_transform_edt`` (exact EDT) and ``scipy.ndimage.maximum_filter``,
itself checked against a pixel-by-pixel loop on small masks.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage

from softseg.labels import boundary_label_smoothing, fuse_raters, label_smoothing, sauna_transform

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
PROPS = settings(deadline=None, max_examples=60)
WINDOWS = ["paper", "half"]
THICKNESS = ["foreground", "same-class"]


# --------------------------------------------------------------------------- references


def _distances(mask: np.ndarray) -> tuple[np.ndarray, float]:
    """Eq. 1 (exact EDT to the other class) and m = max over the foreground."""
    d = np.where(mask, ndimage.distance_transform_edt(mask), ndimage.distance_transform_edt(~mask))
    return d, float(d[mask].max())


def _radius(m: float, window: str) -> int:
    if window == "paper":                       # ||i - j||_inf <= m
        return int(math.floor(m + 1e-9))
    side = int(math.ceil(m - 1e-9))             # authors' code: ceil(m), made odd
    side += side % 2 == 0
    return (side - 1) // 2


def sauna_reference(mask: np.ndarray, window: str = "paper", thickness: str = "foreground") -> np.ndarray:
    """Eqs. 1-5 in float64: t of eq. 2 for every pixel (C restricts the pooled pixels j), pooling
    the foreground distances ("foreground") or those of the pixel's own class ("same-class");
    clip of eq. 5."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.full(mask.shape, -1.0)
    if mask.all():
        return np.full(mask.shape, 1.0)
    d, m = _distances(mask)
    in_c = d <= m + 1e-9
    size = 2 * _radius(m, window) + 1
    pool = lambda sel: ndimage.maximum_filter(np.where(sel, d, 0.0), size=size, mode="constant", cval=0.0)  # noqa: E731
    if thickness == "foreground":
        t = pool(mask & in_c)                                                                      # eq. 2
    else:
        t = np.where(mask, pool(mask & in_c), pool(~mask & in_c))                                  # eq. 2
    s = np.where(mask, 1.0, -1.0)
    y_b = s * np.minimum(1.0, d / m)                                                               # eq. 3
    y_t = s * (1.0 - np.minimum(1.0, t / m))                                                       # eq. 4
    return np.clip(y_b + y_t, -1.0, 1.0)                                                           # eq. 5


def sauna_loop(mask: np.ndarray, window: str = "paper", thickness: str = "foreground") -> np.ndarray:
    """The same, pixel by pixel over the window as eq. 2 is written (small masks only)."""
    mask = np.asarray(mask, dtype=bool)
    d, m = _distances(mask)
    r = _radius(m, window)
    h, w = mask.shape
    out = np.empty((h, w))
    for i in range(h):
        for j in range(w):
            pooled_class = True if thickness == "foreground" else mask[i, j]
            ts = [d[a, b] for a in range(max(0, i - r), min(h, i + r + 1))
                  for b in range(max(0, j - r), min(w, j + r + 1))
                  if mask[a, b] == pooled_class and d[a, b] <= m + 1e-9]
            t = max(ts, default=0.0)
            s = 1.0 if mask[i, j] else -1.0
            out[i, j] = min(1.0, max(-1.0, s * min(1.0, d[i, j] / m) + s * (1.0 - min(1.0, t / m))))
    return out


def disk(h: int, w: int, center: tuple[float, float], radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius ** 2


@st.composite
def masks(draw, max_side: int = 14):
    """Random binary masks of random (often non-square) shape, from sparse to dense."""
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    p = draw(st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9]))
    seed = draw(st.integers(0, 2 ** 31))
    return np.random.default_rng(seed).random((h, w)) < p


# --------------------------------------------------------------------------- hand-derived


# A 20 x 40 mask, uniform along the rows: a thick bar on rows 2-6 (5 px) and a thin line on row
# 15 (1 px). Distances (eq. 1, vertical here): rows 0..19
#   d = 2 1 | 1 2 3 2 1 | 1 2 3 4 4 3 2 1 | 1 | 1 2 3 4
# m = 3 (bar centre), so rows 10, 11, 19 (d = 4) are outside C. Paper window: |row offset| <= 3.
# With d' = min(d, m), every pixel gets y = s (1 - max(0, t - d') / m).
#   FG bar: t = 3 (the centre row is in every window) -> y = 1 - (3 - d)/3 = 1/3 2/3 1 2/3 1/3.
#   FG line: t = 1 (only the line in its window)    -> y = 1 - 0 = 1.
#   (The foreground is the same under both readings.)
# "foreground" reading, BG: t = largest FG d within 3 rows (0 if none):
#     row 0: t = 2 (rows 2, 3), d = 2 -> -1;  row 1: t = 3, d = 1 -> -1/3;
#     row 7: t = 3, d = 1 -> -1/3;  row 8: t = 2 (rows 5, 6), d = 2 -> -1;  row 9: t = 1 -> -1;
#     rows 10, 11: no FG in the window, t = 0 -> -1;  rows 12-14, 16-18: t = 1 (the line) <= d -> -1;
#     row 19: -1. The background mirrors the foreground next to the bar and is -1 next to the line.
# "same-class" reading, BG: t = largest BG d <= 3 within 3 rows:
#     row 0: t = 2 (rows 0, 1 only: the thin BG strip) -> -1;  row 1: t = 2 -> -2/3;
#     row 7: t = 3 (row 9) -> -1/3;  row 8 -> -2/3;  row 9 (d = m) -> -1;  rows 10, 11: t = 3 <= d' = 3 -> -1;
#     row 12 -> -1;  row 13: t = 3 -> -2/3;  row 14 -> -1/3;  row 16: t = 3 (row 18) -> -1/3;
#     row 17 -> -2/3;  row 18 -> -1;  row 19: -1.
# Half window (side ceil(3) = 3, |row offset| <= 1):
#   FG bar: rows 2, 6 see rows 1-3 / 5-7: t = 2 -> 2/3; rows 3, 5: t = 3 -> 2/3; row 4: 1. Line: 1.
#   "foreground" BG: row 0: no FG -> -1; row 1: t = 1 (row 2), d = 1 -> -1; row 7 likewise -1;
#     rows 14, 16: t = 1, d = 1 -> -1; every other BG row has no FG within 1 row -> -1.
#   "same-class" BG: row 0: t = 2 -> -1; row 1: t = 2 -> -2/3; row 7: t = 2 -> -2/3; row 8: t = 3 -> -2/3;
#     row 9: -1; 10, 11: -1; 12: -1; 13: t = 3 -> -2/3; 14: t = 2 -> -2/3; 16: t = 2 -> -2/3;
#     17: t = 3 -> -2/3; 18: -1; 19: -1.
BAR_LINE_ROWS = {
    ("paper", "foreground"): [-1, -1 / 3, 1 / 3, 2 / 3, 1, 2 / 3, 1 / 3, -1 / 3, -1, -1,
                              -1, -1, -1, -1, -1, 1, -1, -1, -1, -1],
    ("half", "foreground"): [-1, -1, 2 / 3, 2 / 3, 1, 2 / 3, 2 / 3, -1, -1, -1,
                             -1, -1, -1, -1, -1, 1, -1, -1, -1, -1],
    ("paper", "same-class"): [-1, -2 / 3, 1 / 3, 2 / 3, 1, 2 / 3, 1 / 3, -1 / 3, -2 / 3, -1,
                              -1, -1, -1, -2 / 3, -1 / 3, 1, -1 / 3, -2 / 3, -1, -1],
    ("half", "same-class"): [-1, -2 / 3, 2 / 3, 2 / 3, 1, 2 / 3, 2 / 3, -2 / 3, -2 / 3, -1,
                             -1, -1, -1, -2 / 3, -2 / 3, 1, -2 / 3, -2 / 3, -1, -1],
}


def bar_and_line() -> np.ndarray:
    mask = np.zeros((20, 40), dtype=bool)
    mask[2:7] = True
    mask[15] = True
    return mask


@pytest.mark.parametrize("thickness", THICKNESS)
@pytest.mark.parametrize("window", WINDOWS)
def test_sauna_hand_derived_bar_and_line(window, thickness):
    expected = np.repeat(np.array(BAR_LINE_ROWS[window, thickness], dtype=np.float32)[:, None], 40, axis=1)
    got = sauna_transform(bar_and_line(), window=window, thickness=thickness)
    assert got.shape == (20, 40) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # transposed (40 x 20, structures vertical): catches H/W swaps in either pass
    np.testing.assert_allclose(sauna_transform(bar_and_line().T, window=window, thickness=thickness),
                               expected.T, atol=1e-6)


def test_sauna_default_is_foreground_reading():
    np.testing.assert_array_equal(sauna_transform(bar_and_line()),
                                  sauna_transform(bar_and_line(), thickness="foreground"))


def test_sauna_thin_vs_thick_vessel():
    """What eqs. 1-5 do with thickness (hand-derived above): across the thick bar the map is the
    ramp y^B = d/m (1/3, 2/3, 1: boundary pixels uncertain, the centre certain), while every pixel
    of the thin line has t = d and gets +1. So a thin vessel gets a wide margin, not lower
    foreground values. The readings differ on the background: "foreground" mirrors the
    foreground side (-1/3 beside the bar, -1 beside the line: jumps 2/3 and 2); "same-class"
    puts -1/3 beside both (jumps 2/3 and 4/3)."""
    fg = sauna_transform(bar_and_line(), thickness="foreground")[:, 0]
    same = sauna_transform(bar_and_line(), thickness="same-class")[:, 0]
    for y in (fg, same):
        assert y[15] == 1.0
        np.testing.assert_allclose(y[2:7], [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3], atol=1e-6)
        assert y[15] - y[14] > y[2] - y[1]      # the thin line's jump is the larger margin
    assert fg[14] == fg[16] == -1.0 and fg[1] == pytest.approx(-1 / 3) and fg[7] == pytest.approx(-1 / 3)
    assert same[14] == same[16] == pytest.approx(-1 / 3)
    assert same[1] == pytest.approx(-2 / 3) and same[7] == pytest.approx(-1 / 3)


@pytest.mark.parametrize("thickness", THICKNESS)
def test_sauna_vessel_at_image_border(thickness):
    """A 1 x 8 image, vessel on columns 0-2 touching the left border. Outside the image is neither
    class (eq. 1 takes j in Omega), so d = 3 2 1 | 1 2 3 4 5 and m = 3 at the border pixel;
    windows (|offset| <= 3) are clipped at the border.
    FG: t = 3 everywhere -> 1, 2/3, 1/3 (both readings).
    "foreground": col 3: t = 3 (cols 0-2), d = 1 -> -1/3; col 4: window cols 1-7, t = 2 = d -> -1;
    cols 5-7: t = 1, 0, 0 <= d -> -1. Thickness map 3 3 3 3 2 1 0 0.
    "same-class": col 3: t = 3 (col 5) -> -1/3; col 4: t = 3, d = 2 -> -2/3; col 5: -1; cols 6, 7
    (d > m, outside C, but eq. 2 still pools the BG pixels of C in their window: t = 3) -> -1."""
    from softseg.labels import sauna_terms

    mask = np.zeros((1, 8), dtype=bool)
    mask[0, :3] = True
    expected = {"foreground": [1, 2 / 3, 1 / 3, -1 / 3, -1, -1, -1, -1],
                "same-class": [1, 2 / 3, 1 / 3, -1 / 3, -2 / 3, -1, -1, -1]}[thickness]
    np.testing.assert_allclose(sauna_transform(mask, thickness=thickness)[0], expected, atol=1e-6)
    np.testing.assert_allclose(sauna_transform(mask[:, ::-1].copy(), thickness=thickness)[0], expected[::-1], atol=1e-6)
    terms = sauna_terms(mask, thickness=thickness)
    assert terms["m"] == 3.0
    np.testing.assert_array_equal(terms["distance"][0], [3, 2, 1, 1, 2, 3, 4, 5])
    t = {"foreground": [3, 3, 3, 3, 2, 1, 0, 0], "same-class": [3] * 8}[thickness]
    np.testing.assert_array_equal(terms["thickness"][0], t)


@pytest.mark.parametrize("thickness", THICKNESS)
def test_sauna_monotone_in_distance_from_boundary(thickness):
    """A disk of radius 9: m = sqrt(82) (the centre's nearest BG pixel is at offset (1, 9)), and every
    FG pixel is within Chebyshev distance floor(m) = 9 of the centre, so its paper window holds the
    centre: t = m and y = y^B = d/m, strictly increasing with the distance d to the boundary.
    Outside, y = -1 + max(0, t - d)/m decreases to -1 as d grows (t never grows moving away)."""
    mask = disk(41, 45, (20, 22), 9.0)
    y = sauna_transform(mask, thickness=thickness).astype(np.float64)
    d, m = _distances(mask)
    assert m == pytest.approx(math.sqrt(82))
    np.testing.assert_allclose(y[mask], d[mask] / m, atol=1e-6)
    row = y[20, 22:]                             # from the centre outwards along a row
    inside = row[: int(np.sum(mask[20, 22:]))]
    assert (np.diff(inside) < 0).all()           # FG: decreasing towards the boundary
    outside = row[len(inside):]
    assert (np.diff(outside) <= 1e-7).all() and outside[-1] == -1.0


@pytest.mark.parametrize("thickness", THICKNESS)
def test_sauna_doc_example_values(thickness):
    mask = np.zeros((7, 5), dtype=bool)
    mask[1:6, 1:4] = True                        # m = 2 at (3, 2)
    y = sauna_transform(mask, thickness=thickness)
    # corner (0, 0): d = sqrt(2) <= m. "foreground": the FG pixel (2, 2) with d = 2 is in its window,
    # t = 2, y = -(1 - (2 - sqrt(2))/2) = -sqrt(2)/2; "same-class": t = sqrt(2) = d -> -1.
    corner = {"foreground": -math.sqrt(2) / 2, "same-class": -1.0}[thickness]
    assert y[3, 2] == 1.0 and y[0, 0] == pytest.approx(corner, abs=1e-6)
    np.testing.assert_allclose(y, sauna_loop(mask, thickness=thickness), atol=1e-6)


# --------------------------------------------------------------------------- against the reference


@pytest.mark.parametrize("thickness", THICKNESS)
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 2), (7, 13), (13, 7)])
def test_reference_matches_pixel_loop(shape, window, thickness):
    """The test reference itself agrees with eq. 2 written as a loop."""
    rng = np.random.default_rng(sum(shape))
    for p in (0.3, 0.6):
        mask = rng.random(shape) < p
        if mask.any() and not mask.all():
            np.testing.assert_allclose(sauna_reference(mask, window, thickness), sauna_loop(mask, window, thickness),
                                       atol=1e-12)


@PROPS
@given(masks(), st.sampled_from(WINDOWS), st.sampled_from(THICKNESS))
def test_sauna_matches_reference(mask, window, thickness):
    np.testing.assert_allclose(sauna_transform(mask, window=window, thickness=thickness),
                               sauna_reference(mask, window, thickness), atol=2e-6)


@pytest.mark.parametrize("thickness", THICKNESS)
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("radius", [3.5, 12.2, 14.1, 17.0, 66.0])
def test_sauna_thick_objects_match_reference(radius, window, thickness):
    """Disks cut by the image border (non-square images) plus a line on the right edge, with m on
    both sides of the internal precision tiers (m < 15: uint8 distances; m < 65: uint16; larger:
    scipy's EDT)."""
    h, w = int(1.4 * radius) + 3, int(2.3 * radius) + 5
    mask = disk(h, w, (2, w // 2), radius)
    mask[:, -1] = True
    np.testing.assert_allclose(sauna_transform(mask, window=window, thickness=thickness),
                               sauna_reference(mask, window, thickness), atol=2e-6)


@pytest.mark.parametrize("thickness", THICKNESS)
@pytest.mark.parametrize("window", WINDOWS)
def test_sauna_vessel_like_tree(window, thickness):
    """Thin and thick lines, crossings and a blob on a 96 x 128 image."""
    yy, xx = np.mgrid[:96, :128]
    mask = np.abs(yy - 0.5 * xx - 10) <= 1.0     # thin diagonal
    mask |= np.abs(xx - 70) <= 4                  # thick vertical
    mask |= np.abs(yy - 80 + 0.2 * xx) <= 0.6     # very thin
    mask |= disk(96, 128, (30, 100), 6)
    np.testing.assert_allclose(sauna_transform(mask, window=window, thickness=thickness),
                               sauna_reference(mask, window, thickness), atol=2e-6)


# --------------------------------------------------------------------------- properties


@PROPS
@given(masks(), st.sampled_from(THICKNESS))
def test_sauna_range_and_sign(mask, thickness):
    """Values in [-1, 1]; positive exactly on the foreground (thresholding at 0 gives the mask)."""
    y = sauna_transform(mask, thickness=thickness)
    assert y.dtype == np.float32 and y.shape == mask.shape
    assert (y >= -1).all() and (y <= 1).all()
    assert ((y > 0) == mask).all() and ((y < 0) == ~mask).all()


@PROPS
@given(masks(), st.sampled_from(WINDOWS), st.sampled_from(THICKNESS))
def test_sauna_transpose_and_flip_equivariance(mask, window, thickness):
    kw = {"window": window, "thickness": thickness}
    y = sauna_transform(mask, **kw)
    np.testing.assert_array_equal(sauna_transform(np.ascontiguousarray(mask.T), **kw), y.T)
    np.testing.assert_array_equal(sauna_transform(np.ascontiguousarray(mask[::-1, ::-1]), **kw), y[::-1, ::-1])


@pytest.mark.parametrize("thickness", THICKNESS)
@pytest.mark.parametrize("window", WINDOWS)
def test_sauna_batch_is_stack_of_singles(window, thickness):
    """Per-mask m and window (different sizes in one batch), with an empty and a full mask."""
    rng = np.random.default_rng(0)
    batch = np.stack([
        disk(23, 31, (11, 15), 8.5),             # m ~ 8.5
        rng.random((23, 31)) < 0.5,              # m ~ 1-2
        np.zeros((23, 31), dtype=bool),          # empty
        np.ones((23, 31), dtype=bool),           # full
        disk(23, 31, (0, 0), 20.0),              # m large, touches the border
    ])
    got = sauna_transform(batch, window=window, thickness=thickness)
    assert got.shape == batch.shape and got.dtype == np.float32
    for k in range(len(batch)):
        np.testing.assert_array_equal(got[k], sauna_transform(batch[k], window=window, thickness=thickness))


@pytest.mark.parametrize("thickness", THICKNESS)
def test_sauna_empty_and_full_masks(thickness):
    """No foreground: m undefined, all certain background (-1); no background: all +1."""
    for shape in ((5, 7), (1, 1), (3, 5, 7)):
        assert (sauna_transform(np.zeros(shape, dtype=np.uint8), thickness=thickness) == -1).all()
        assert (sauna_transform(np.ones(shape, dtype=bool), thickness=thickness) == 1).all()


@pytest.mark.parametrize("thickness", THICKNESS)
def test_sauna_single_pixel(thickness):
    """One FG pixel: d = 1, so m = 1 and y = 1 - (1 - 1)/1 = 1. Its 4-neighbours (d = 1) have t = 1
    under both readings (the pixel itself, or a BG neighbour with d = 1): y = -1 + 0 = -1; every
    other BG pixel has d >= sqrt(2) > m: -1. Same on the image border and in a corner."""
    for r, c in ((2, 3), (0, 3), (0, 0), (4, 5)):
        mask = np.zeros((5, 6), dtype=bool)
        mask[r, c] = True
        y = sauna_transform(mask, thickness=thickness)
        expected = np.full((5, 6), -1.0, dtype=np.float32)
        expected[r, c] = 1.0
        np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("device", DEVICES)
def test_sauna_input_kinds(device):
    mask = bar_and_line()
    expected = sauna_transform(mask)
    for variant in (mask.astype(np.uint8), mask.astype(np.int64), mask.astype(np.float64), mask.astype(np.float32)):
        np.testing.assert_array_equal(sauna_transform(variant), expected)
    for t in (torch.from_numpy(mask), torch.from_numpy(mask).float(), torch.from_numpy(mask).half()):
        out = sauna_transform(t.to(device))
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.device.type == device
        np.testing.assert_array_equal(out.cpu().numpy(), expected)


def test_sauna_errors():
    with pytest.raises(TypeError, match="mask: expected a numpy.ndarray or torch.Tensor, got list"):
        sauna_transform([[0, 1]])
    with pytest.raises(TypeError, match="mask: expected a bool, integer or real floating array, got dtype complex128"):
        sauna_transform(np.zeros((2, 2), dtype=complex))
    with pytest.raises(ValueError, match=r"mask: expected shape \(H, W\) or \(N, H, W\), got \(4,\)"):
        sauna_transform(np.zeros(4))
    with pytest.raises(ValueError, match=r"mask: expected shape \(H, W\) or \(N, H, W\), got \(1, 1, 2, 2\)"):
        sauna_transform(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match=r"mask: expected non-empty spatial axes"):
        sauna_transform(np.zeros((3, 0)))
    with pytest.raises(ValueError, match=r"mask: expected a binary mask \(values 0 and 1\), got values in \[0, 2\]"):
        sauna_transform(np.array([[0, 2], [1, 0]]))
    with pytest.raises(ValueError, match="mask: expected a binary mask .* got non-binary values in"):
        sauna_transform(np.array([[0.0, 0.5], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="mask: expected a binary mask .* got NaN or inf"):
        sauna_transform(np.array([[0.0, np.nan], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="mask: expected a binary mask .* got values in \\[-1, 1\\]"):
        sauna_transform(torch.tensor([[-1, 1], [0, 0]]))
    with pytest.raises(ValueError, match="window: expected one of \\('paper', 'half'\\), got 'full'"):
        sauna_transform(np.zeros((2, 2)), window="full")
    with pytest.raises(ValueError, match="thickness: expected one of \\('foreground', 'same-class'\\), got 'background'"):
        sauna_transform(np.zeros((2, 2)), thickness="background")


# --------------------------------------------------------------------------- label smoothing


@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0])
def test_label_smoothing_values(eps):
    """(1 - eps) y + eps / 2: FG 1 - eps/2, BG eps/2; eps = 0 identity, eps = 1 constant 1/2."""
    mask = np.array([[0, 1, 1], [1, 0, 0]], dtype=np.uint8)
    got = label_smoothing(mask, eps)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.where(mask == 1, 1 - eps / 2, eps / 2), rtol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
def test_label_smoothing_torch(device):
    mask = torch.tensor([[True, False]], device=device)
    got = label_smoothing(mask, 0.2)
    assert isinstance(got, torch.Tensor) and got.device.type == device and got.dtype == torch.float32
    torch.testing.assert_close(got.cpu(), torch.tensor([[0.9, 0.1]]))


def test_label_smoothing_errors():
    with pytest.raises(ValueError, match=r"eps: expected a number in \[0, 1\], got 1.5"):
        label_smoothing(np.zeros(3), 1.5)
    with pytest.raises(ValueError, match=r"eps: expected a number in \[0, 1\], got -0.1"):
        label_smoothing(np.zeros(3), -0.1)
    with pytest.raises(ValueError, match=r"eps: expected a number in \[0, 1\], got nan"):
        label_smoothing(np.zeros(3), float("nan"))
    with pytest.raises(TypeError, match="eps: expected a real number, got bool"):
        label_smoothing(np.zeros(3), True)
    with pytest.raises(ValueError, match="mask: expected a binary mask"):
        label_smoothing(np.array([0.0, 0.3]), 0.1)


def bls_loop(mask: np.ndarray, eps: float, width: int) -> np.ndarray:
    """BLS by definition: smooth a pixel iff the other class is within Chebyshev distance width."""
    h, w = mask.shape
    out = mask.astype(np.float64)
    for i in range(h):
        for j in range(w):
            window = mask[max(0, i - width):i + width + 1, max(0, j - width):j + width + 1]
            if (window != mask[i, j]).any():
                out[i, j] = (1 - eps) * mask[i, j] + eps / 2
    return out


def test_boundary_label_smoothing_hand_derived():
    """Width 1 on a 4 x 6 mask with a 2 x 2 square at rows 1-2, cols 2-3: the square itself and
    its 8-neighbourhood ring (rows 0-3, cols 1-4) are smoothed; cols 0 and 5 stay hard."""
    mask = np.zeros((4, 6), dtype=bool)
    mask[1:3, 2:4] = True
    got = boundary_label_smoothing(mask, 0.2, 1)
    expected = np.zeros((4, 6))
    expected[:, 1:5] = 0.1
    expected[1:3, 2:4] = 0.9
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@PROPS
@given(masks(max_side=12), st.integers(1, 4), st.sampled_from([0.0, 0.1, 1.0]))
def test_boundary_label_smoothing_matches_definition(mask, width, eps):
    np.testing.assert_allclose(boundary_label_smoothing(mask, eps, width), bls_loop(mask, eps, width), rtol=1e-6)


def test_boundary_label_smoothing_batched_and_kinds():
    rng = np.random.default_rng(1)
    batch = rng.random((2, 3, 9, 11)) < 0.4
    got = boundary_label_smoothing(batch, 0.3, 2)
    assert got.shape == batch.shape and got.dtype == np.float32
    for a in range(2):
        for b in range(3):
            np.testing.assert_allclose(got[a, b], bls_loop(batch[a, b], 0.3, 2), rtol=1e-6)
    t = boundary_label_smoothing(torch.from_numpy(batch[0, 0]).int(), 0.3, 2)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    np.testing.assert_allclose(t.numpy(), got[0, 0])
    # uniform masks have no boundary; a huge width smooths every pixel of a two-class image
    assert (boundary_label_smoothing(np.ones((4, 4)), 0.5, 3) == 1).all()
    assert np.allclose(boundary_label_smoothing(np.eye(5), 0.5, 100), np.where(np.eye(5), 0.75, 0.25))


def test_boundary_label_smoothing_errors():
    with pytest.raises(ValueError, match=r"width: expected an integer >= 1, got 0"):
        boundary_label_smoothing(np.zeros((3, 3)), 0.1, 0)
    with pytest.raises(TypeError, match="width: expected an integer >= 1, got float"):
        boundary_label_smoothing(np.zeros((3, 3)), 0.1, 1.5)
    with pytest.raises(TypeError, match="width: expected an integer >= 1, got bool"):
        boundary_label_smoothing(np.zeros((3, 3)), 0.1, True)
    with pytest.raises(ValueError, match=r"mask: expected shape \(\.\.\., H, W\)"):
        boundary_label_smoothing(np.zeros(3), 0.1, 1)
    with pytest.raises(ValueError, match=r"eps: expected a number in \[0, 1\]"):
        boundary_label_smoothing(np.zeros((3, 3)), 2.0, 1)
    with pytest.raises(ValueError, match="mask: expected a binary mask"):
        boundary_label_smoothing(np.full((3, 3), 3), 0.1, 1)


# --------------------------------------------------------------------------- rater fusion

RATERS = np.array([[1, 1, 0, 0],
                   [1, 0, 0, 0],
                   [1, 1, 1, 0]], dtype=np.uint8)


def test_fuse_raters_hand_derived():
    """votes 3 2 1 0 of 3 -> mean 1, 2/3, 1/3, 0; majority (> 3/2) 1 1 0 0.
    Weighted: Dice with the majority 1 1 0 0: rater 1: 1; rater 2: 2*1/(1+2) = 2/3;
    rater 3: 2*2/(3+2) = 4/5 -> weights (15, 10, 12)/37 -> 1, 27/37, 12/37, 0."""
    np.testing.assert_allclose(fuse_raters(RATERS, "mean"), [1, 2 / 3, 1 / 3, 0], rtol=1e-6)
    np.testing.assert_array_equal(fuse_raters(RATERS, "majority"), [1, 1, 0, 0])
    np.testing.assert_allclose(fuse_raters(RATERS, "weighted"), [1, 27 / 37, 12 / 37, 0], rtol=1e-6)
    assert fuse_raters(RATERS).dtype == np.float32


def test_fuse_raters_majority_ties_go_to_background():
    two = np.array([[1, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(fuse_raters(two, "majority"), [1, 0, 0])


def test_fuse_raters_random_is_one_rater_and_seeded():
    draws = {tuple(fuse_raters(RATERS, "random", seed=s).tolist()) for s in range(40)}
    assert draws == {tuple(r.astype(float)) for r in RATERS}
    np.testing.assert_array_equal(fuse_raters(RATERS, "random", seed=7), fuse_raters(RATERS, "random", seed=7))
    rng = np.random.default_rng(3)
    assert fuse_raters(RATERS, "random", seed=rng).tolist() in RATERS.astype(float).tolist()


def test_fuse_raters_weighted_edge_cases():
    # empty raters and empty majority: Dice(empty, empty) = 1 -> uniform weights -> all 0
    assert (fuse_raters(np.zeros((3, 2, 2)), "weighted") == 0).all()
    # three disjoint raters: empty majority, every Dice 0 -> uniform mean
    disjoint = np.eye(3, 4)
    np.testing.assert_allclose(fuse_raters(disjoint, "weighted"), fuse_raters(disjoint, "mean"))
    # one rater: every method returns it
    one = np.array([[[0, 1], [1, 1]]])
    for method in ("mean", "majority", "random", "weighted"):
        np.testing.assert_array_equal(fuse_raters(one, method), one[0])


@pytest.mark.parametrize("device", DEVICES)
def test_fuse_raters_torch(device):
    got = fuse_raters(torch.from_numpy(RATERS).bool().to(device), "weighted")
    assert isinstance(got, torch.Tensor) and got.device.type == device and got.dtype == torch.float32
    torch.testing.assert_close(got.cpu(), torch.tensor([1, 27 / 37, 12 / 37, 0], dtype=torch.float32))


@PROPS
@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 6)),
                  elements=st.integers(0, 1)))
def test_fuse_raters_properties(raters):
    mean = fuse_raters(raters, "mean")
    np.testing.assert_allclose(mean, raters.mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(fuse_raters(raters, "majority"), (raters.mean(axis=0) > 0.5).astype(np.float32))
    weighted = fuse_raters(raters, "weighted")
    assert (weighted >= 0).all() and (weighted <= 1 + 1e-6).all()
    agree = (raters == raters[0]).all(axis=0)    # unanimous pixels keep the common value
    np.testing.assert_allclose(weighted[agree], raters[0][agree], atol=1e-6)


def test_fuse_raters_errors():
    with pytest.raises(ValueError, match="method: expected one of .*got 'median'"):
        fuse_raters(RATERS, "median")
    with pytest.raises(ValueError, match=r"masks: expected shape \(R, \*spatial\)"):
        fuse_raters(np.zeros(3), "mean")
    with pytest.raises(ValueError, match="masks: expected at least one rater"):
        fuse_raters(np.zeros((0, 3)), "mean")
    with pytest.raises(ValueError, match="masks: expected a binary mask"):
        fuse_raters(np.full((2, 3), 0.5), "mean")
    with pytest.raises(TypeError, match="seed: expected None, an integer or a numpy.random.Generator, got float"):
        fuse_raters(RATERS, "random", seed=1.5)
    with pytest.warns(UserWarning, match="seed: ignored by method='mean'"):
        fuse_raters(RATERS, "mean", seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fuse_raters(RATERS, "random", seed=1)


# --------------------------------------------------------------------------- sauna_terms (intermediate maps)


@PROPS
@given(masks(), st.sampled_from(WINDOWS), st.sampled_from(THICKNESS))
def test_sauna_terms_sum_to_transform(mask, window, thickness):
    """The intermediate maps of eqs. 1-4 add up (eq. 5, clipped) to sauna_transform (the fast path)."""
    from softseg.labels import sauna_terms

    kw = {"window": window, "thickness": thickness}
    if not mask.any() or mask.all():
        with pytest.raises(ValueError, match="expected both classes"):
            sauna_terms(mask, **kw)
        return
    terms = sauna_terms(mask, **kw)
    np.testing.assert_allclose(terms["sauna"], sauna_transform(mask, **kw), atol=2e-6)
    np.testing.assert_allclose(terms["sauna"], np.clip(terms["boundary"] + terms["thickness_term"], -1, 1))
    assert ((terms["boundary"] > 0) == mask).all() and (np.abs(terms["boundary"]) <= 1).all()
    assert (terms["distance"] >= 1).all() and terms["m"] == terms["distance"][mask].max()
    fg = mask
    assert (terms["thickness"][fg] >= terms["distance"][fg]).all()          # t >= d on the foreground
    assert (terms["thickness"] <= terms["m"] + 1e-12).all()                 # t pools distances of C only
    assert (terms["thickness_term"][fg] >= 0).all() and (terms["thickness_term"][~fg] <= 0).all()


@PROPS
@given(masks())
def test_sauna_readings_agree_on_the_foreground(mask):
    """Every foreground pixel is in C, so both readings pool the same pixels there."""
    a = sauna_transform(mask, thickness="foreground")
    b = sauna_transform(mask, thickness="same-class")
    np.testing.assert_array_equal(a[mask], b[mask])


# Thickness maps (eq. 2, every row) of the bar-and-line mask, paper window (|row offset| <= 3), m = 3:
#   "foreground": the largest FG d within 3 rows, 0 where there is none (rows 10, 11, 19);
#   "same-class": FG as above; BG the largest BG d <= 3 within 3 rows (rows 0, 1 see only the
#   2-row strip above the bar; rows 10, 11, 19 have d > m but pool the BG pixels of C near them).
BAR_LINE_THICKNESS = {
    "foreground": [2, 3, 3, 3, 3, 3, 3, 3, 2, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0],
    "same-class": [2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 3, 3, 3, 3],
}


@pytest.mark.parametrize("thickness", THICKNESS)
def test_sauna_terms_hand_derived_bar(thickness):
    """The 20 x 40 bar-and-line mask above: y^B = d / m, y^T = s (1 - t / m), t from eq. 2 everywhere."""
    from softseg.labels import sauna_terms

    terms = sauna_terms(torch.from_numpy(bar_and_line()), thickness=thickness)
    assert terms["m"] == 3.0 and terms["radius"] == 3
    np.testing.assert_array_equal(terms["thickness"][:, 5], BAR_LINE_THICKNESS[thickness])
    np.testing.assert_allclose(terms["boundary"][2:7, 5], [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3])
    np.testing.assert_allclose(terms["thickness_term"][2:7, 5], 0.0)       # thickest vessel: t = m
    np.testing.assert_allclose(terms["thickness_term"][15, 5], 1 - 1 / 3)  # thin line: t = d = 1
    s = np.where(bar_and_line()[:, 5], 1.0, -1.0)
    np.testing.assert_allclose(terms["thickness_term"][:, 5], s * (1 - np.array(BAR_LINE_THICKNESS[thickness]) / 3))
    np.testing.assert_allclose(terms["sauna"][:, 5], BAR_LINE_ROWS["paper", thickness])
    assert terms["sauna"][10, 5] == -1                                      # d = 4 > m: y^B = -1, y^T <= 0


@pytest.mark.parametrize("bad, match", [
    (np.zeros((3, 4, 5), dtype=bool), r"expected shape \(H, W\)"),
    (np.full((3, 4), 0.5), "binary mask"),
    (np.zeros((3, 4), dtype=bool), "empty mask"),
    (np.ones((3, 4), dtype=bool), "full mask"),
])
def test_sauna_terms_errors(bad, match):
    from softseg.labels import sauna_terms

    with pytest.raises(ValueError, match=match):
        sauna_terms(bad)


def test_sauna_terms_option_errors():
    from softseg.labels import sauna_terms

    with pytest.raises(ValueError, match="thickness: expected one of \\('foreground', 'same-class'\\), got 'fg'"):
        sauna_terms(bar_and_line(), thickness="fg")
    with pytest.raises(ValueError, match="window: expected one of"):
        sauna_terms(bar_and_line(), window="full")
