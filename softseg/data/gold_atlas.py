"""Loader of the Gold Atlas male pelvis data (experiment (G) of the soft-Dice paper).

The data set (Nyholm et al. 2018; Zenodo 10.5281/zenodo.583096, access on request, not
downloadable here) holds 19 patients, each distributed as one zip (``1_01_P.zip`` ... ``3_04_P.zip``;
Zenodo serves ``3_03_P.zip`` as ``3_03_P(1).zip``: rename it) of one flat folder of DICOM files:
MR and CT series and RT structure sets with the nine ROIs of the paper's Table 1, each delineated
by five observers. Nordström et al. form soft labels "by taking the voxel-wise average of the
segmentations done by the different practitioners" and cut "patches centered in each of the
structures of size 128 x 128" (Sect. 6.2; supplement Sect. 2.1, where Plastimatch 1.9.3 does the
conversion). This module does the same with pydicom, without Plastimatch:

1. :func:`read_case` reads the headers of every DICOM file of a case (zip or folder; no pixel
   data is needed: masks depend only on the image geometry), finds the RT structure sets, the
   image series each one references, and rasterizes every contour onto that series' voxel grid
   (:func:`rasterize_contours`).
2. ROI names are mapped to ``(organ, rater)`` by ``roi_parser`` (default
   :func:`default_roi_parser`); how the five observers are stored in the distributed files is
   not documented publicly, so both layouts are handled: one RT structure set per observer
   (rater = the file's index) or observer-tagged names in one file (rater = the last number in
   the ROI name, e.g. ``"Prostate_3"``). Pass your own parser if the names differ.
3. The raters' binary masks of one organ are averaged into ``m`` (values in ``{0, 1/5, ..., 1}``)
   and :func:`extract_patch` cuts the ``128 x 128`` in-plane window centred at the centre of
   mass of ``m``, over every slice of the scan (or, with ``slices="roi"``, over the slices
   where any rater marks the organ).

:func:`load_gold_atlas` runs this over the 19 cases. Missing files and unknown layouts raise a
``ValueError`` that names the files expected; nothing is fetched from the network.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .blobs import GOLD_ATLAS_ROIS

__all__ = [
    "GOLD_ATLAS_CASES",
    "GOLD_ATLAS_ROIS",
    "ImageGeometry",
    "default_roi_parser",
    "rasterize_contours",
    "read_case",
    "extract_patch",
    "load_gold_atlas",
]

#: The 19 cases of the data set as distributed (file stems of the zips), in the paper's order.
GOLD_ATLAS_CASES: tuple[str, ...] = (
    "1_01_P", "1_02_P", "1_03_P", "1_04_P", "1_05_P", "1_06_P", "1_07_P", "1_08_P",
    "2_03_P", "2_04_P", "2_05_P", "2_06_P", "2_09_P", "2_10_P", "2_11_P",
    "3_01_P", "3_02_P", "3_03_P", "3_04_P",
)

RoiParser = Callable[[str, int, str], "tuple[str, str] | None"]

_RTSTRUCT_SOP = "1.2.840.10008.5.1.4.1.1.481.3"


def _pydicom():
    try:
        import pydicom
    except ImportError as err:  # pragma: no cover - pydicom is in requirements.txt
        raise ImportError("softseg.data.gold_atlas needs pydicom (pip install pydicom==3.0.2)") from err
    return pydicom


# --------------------------------------------------------------------------- ROI names


_ORGAN_PATTERNS: tuple[tuple[str, str], ...] = (  # checked in order; first match wins
    ("Seminal vesicles", r"semin|vesicle|\bsv\b|vesiklar"),
    ("Neurovascular b.", r"neuro|\bnvb|bundle"),
    ("Penile bulb", r"penil|bulb"),
    ("Anal canal", r"anal|anus"),
    ("Rectum", r"rect"),
    ("Urinary bladder", r"bladder|bl[aå]sa|vesica"),
    ("Prostate", r"prostat"),
    ("Femoral head", r"fem|caput"),
)
_RIGHT = {"r", "right", "dx", "dex", "dexter", "hoger", "höger", "h"}
_LEFT = {"l", "left", "sin", "sinister", "vanster", "vänster", "v"}


def default_roi_parser(roi_name: str, structure_set_index: int, structure_set_label: str = "") -> tuple[str, str] | None:
    """Map an RT structure ROI name to ``(organ, rater)``, or None for other structures.

    Parameters
    ----------
    roi_name : str
        ``ROIName`` from the structure set, e.g. ``"Prostate"``, ``"Femoral_head_R_2"``.
    structure_set_index : int
        0-based index of the structure set among the case's RT structure sets (sorted by
        ``StructureSetLabel``, then series and SOP instance UID).
    structure_set_label : str
        Its ``StructureSetLabel`` (unused by the default parser; custom parsers may use it).

    Returns
    -------
    (str, str) or None
        The organ as one of :data:`GOLD_ATLAS_ROIS` and a rater id: the last number in the ROI
        name (observer-tagged names in one file), else ``"set<index>"`` (one file per observer).

    Notes
    -----
    Organs are recognized by case-insensitive patterns (English, Latin and Swedish names);
    femoral heads need a side token (``R``/``right``/``dx`` or ``L``/``left``/``sin``). The real
    names in the distributed files are not documented publicly; pass your own parser to
    :func:`load_gold_atlas` if they differ.

    Examples
    --------
    >>> default_roi_parser("Femoral_head_R_2", 0)
    ('Femoral head R', '2')
    >>> default_roi_parser("Prostate", 3)
    ('Prostate', 'set3')
    >>> default_roi_parser("BODY", 0) is None
    True
    """
    name = roi_name.strip()
    number = re.search(r"(\d+)\D*$", name)
    rater = number.group(1) if number else f"set{structure_set_index}"
    core = name[: number.start()] if number else name
    low = core.lower()
    for organ, pattern in _ORGAN_PATTERNS:
        if re.search(pattern, low):
            break
    else:
        return None
    if organ == "Femoral head":
        tokens = [t for t in re.split(r"[^a-zåäö]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", core).lower()) if t]
        side = next((t for t in reversed(tokens) if t in _RIGHT | _LEFT), None)
        if side is None:
            return None
        organ = "Femoral head R" if side in _RIGHT else "Femoral head L"
    return organ, rater


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class ImageGeometry:
    """Voxel grid of an image series: slice origins, in-plane axes and spacing (patient mm).

    ``origins`` is ``(Z, 3)`` (ImagePositionPatient of each slice, sorted along ``normal``),
    ``row_dir`` the direction of increasing column index and ``col_dir`` of increasing row
    index (ImageOrientationPatient), ``spacing`` = (row spacing, column spacing)
    (PixelSpacing), ``shape`` = (Z, Rows, Columns).
    """

    origins: np.ndarray
    row_dir: np.ndarray
    col_dir: np.ndarray
    spacing: tuple[float, float]
    shape: tuple[int, int, int]

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_dir, self.col_dir)

    @classmethod
    def from_datasets(cls, slices: Sequence[Any]) -> "ImageGeometry":
        """Geometry of one series from its per-slice datasets (headers suffice)."""
        first = slices[0]
        iop = np.asarray(first.ImageOrientationPatient, dtype=np.float64)
        row_dir, col_dir = iop[:3], iop[3:]
        normal = np.cross(row_dir, col_dir)
        origins = np.array([np.asarray(s.ImagePositionPatient, dtype=np.float64) for s in slices])
        order = np.argsort(origins @ normal, kind="stable")
        spacing = tuple(float(v) for v in first.PixelSpacing)
        return cls(origins[order], row_dir, col_dir, (spacing[0], spacing[1]),
                   (len(slices), int(first.Rows), int(first.Columns)))


def rasterize_contours(contours: Iterable[np.ndarray], geometry: ImageGeometry) -> np.ndarray:
    """Fill closed planar contours (patient mm) into a boolean mask on ``geometry``'s grid.

    Parameters
    ----------
    contours : iterable of numpy.ndarray
        Each ``(K, 3)``: the points of one ``ContourData`` (x, y, z in mm), K >= 3.
    geometry : ImageGeometry
        The image series the contours are drawn on.

    Returns
    -------
    numpy.ndarray
        ``geometry.shape`` bool: a voxel is inside when its centre is inside an odd number of
        the contours of its slice (even-odd rule: a contour inside another is a hole, as
        Plastimatch and most RT systems read them).

    Raises
    ------
    ValueError
        If a contour has fewer than 3 points or lies more than half a slice spacing away from
        every slice of the series.

    Notes
    -----
    A point :math:`x` maps to column :math:`j = (x - p)\\cdot r / \\Delta_c` and row
    :math:`i = (x - p)\\cdot c / \\Delta_r`, with :math:`p` the slice origin, :math:`r, c` the
    direction cosines of ImageOrientationPatient and :math:`(\\Delta_r, \\Delta_c)` =
    PixelSpacing (DICOM PS3.3 C.7.6.2.1.1); its slice is the nearest along the normal.
    """
    from matplotlib.path import Path as MplPath

    z, rows, cols = geometry.shape
    mask = np.zeros((z, rows, cols), dtype=bool)
    normal = geometry.normal
    positions = geometry.origins @ normal
    gaps = np.diff(positions)
    tolerance = 0.5 * (float(np.median(gaps)) if gaps.size else 1.0) + 1e-3
    for pts in contours:
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
        if pts.shape[0] < 3:
            raise ValueError(f"contour: expected at least 3 points, got {pts.shape[0]}")
        level = float(np.mean(pts @ normal))
        k = int(np.argmin(np.abs(positions - level)))
        if abs(positions[k] - level) > tolerance:
            raise ValueError(
                f"contour: expected it on a slice of the image series (slice positions "
                f"{positions.min():.2f} ... {positions.max():.2f} mm), got a contour at {level:.2f} mm"
            )
        rel = pts - geometry.origins[k]
        col = rel @ geometry.row_dir / geometry.spacing[1]
        row = rel @ geometry.col_dir / geometry.spacing[0]
        r0, r1 = max(0, int(np.floor(row.min()))), min(rows - 1, int(np.ceil(row.max())))
        c0, c1 = max(0, int(np.floor(col.min()))), min(cols - 1, int(np.ceil(col.max())))
        if r0 > r1 or c0 > c1:
            continue  # entirely outside the image
        rr, cc = np.mgrid[r0:r1 + 1, c0:c1 + 1]
        inside = MplPath(np.stack([col, row], 1)).contains_points(np.stack([cc.ravel(), rr.ravel()], 1))
        mask[k, r0:r1 + 1, c0:c1 + 1] ^= inside.reshape(rr.shape)
    return mask


# --------------------------------------------------------------------------- reading a case


def _read_headers(source: Path) -> list[Any]:
    pydicom = _pydicom()
    out = []
    if source.is_file():
        with zipfile.ZipFile(source) as zf:
            for name in sorted(n for n in zf.namelist() if not n.endswith("/")):
                try:
                    out.append(pydicom.dcmread(io.BytesIO(zf.read(name)), stop_before_pixels=True))
                except Exception:  # noqa: BLE001 - not a DICOM file (README, DICOMDIR payloads, ...)
                    continue
        return out
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        try:
            out.append(pydicom.dcmread(path, stop_before_pixels=True))
        except Exception:  # noqa: BLE001
            continue
    return out


def _structure_sets(datasets: Sequence[Any]) -> list[Any]:
    sets = [d for d in datasets
            if getattr(d, "Modality", "") == "RTSTRUCT" or str(getattr(d, "SOPClassUID", "")) == _RTSTRUCT_SOP]
    return sorted(sets, key=lambda d: (str(getattr(d, "StructureSetLabel", "")), str(getattr(d, "SeriesInstanceUID", "")),
                                       str(getattr(d, "SOPInstanceUID", ""))))


def _referenced_series(rts: Any, series: Mapping[str, list[Any]], modality: str | None) -> str | None:
    for fr in getattr(rts, "ReferencedFrameOfReferenceSequence", []) or []:
        for study in getattr(fr, "RTReferencedStudySequence", []) or []:
            for ser in getattr(study, "RTReferencedSeriesSequence", []) or []:
                uid = str(getattr(ser, "SeriesInstanceUID", ""))
                if uid in series:
                    return uid
    frames = {str(getattr(fr, "FrameOfReferenceUID", "")) for fr in getattr(rts, "ReferencedFrameOfReferenceSequence", []) or []}
    frames |= {str(getattr(r, "ReferencedFrameOfReferenceUID", "")) for r in getattr(rts, "StructureSetROISequence", []) or []}
    candidates = [uid for uid, sl in series.items() if str(getattr(sl[0], "FrameOfReferenceUID", "")) in frames]
    if modality is not None:
        preferred = [uid for uid in candidates if getattr(series[uid][0], "Modality", "") == modality]
        candidates = preferred or candidates
    return candidates[0] if candidates else None


def read_case(source: str | Path, *, roi_parser: RoiParser = default_roi_parser,
              modality: str | None = "CT") -> dict[str, torch.Tensor]:
    """Soft labels of one Gold Atlas case: the voxel-wise mean of the raters' masks per organ.

    Parameters
    ----------
    source : path
        A case zip (``1_01_P.zip``) or a folder holding the case's DICOM files.
    roi_parser : callable, optional
        ``(roi_name, structure_set_index, structure_set_label) -> (organ, rater) | None``
        (default :func:`default_roi_parser`).
    modality : str or None
        Preferred modality of the image series when a structure set references no series
        present by UID and several share its frame of reference (default ``"CT"``).

    Returns
    -------
    dict[str, torch.Tensor]
        Organ -> ``(Z, Rows, Columns)`` float32 marginal ``m`` on the referenced series' grid,
        for the organs found, in :data:`GOLD_ATLAS_ROIS` order. A rater who has no contour of an
        organ is not counted for that organ (the mean is over the raters who drew it).

    Raises
    ------
    ValueError
        If the case holds no RT structure set, a structure set references no image series of
        the case, or a contour lies off the referenced series.
    """
    source = Path(source)
    datasets = _read_headers(source)
    sets = _structure_sets(datasets)
    if not sets:
        raise ValueError(
            f"source: expected DICOM RT structure sets (Modality RTSTRUCT) among the files of {source}, "
            f"found {len(datasets)} DICOM files and none of them an RT structure set"
        )
    series: dict[str, list[Any]] = {}
    for d in datasets:
        if hasattr(d, "ImagePositionPatient") and hasattr(d, "ImageOrientationPatient") and hasattr(d, "PixelSpacing"):
            series.setdefault(str(d.SeriesInstanceUID), []).append(d)
    masks: dict[str, dict[str, np.ndarray]] = {}
    grids: dict[str, ImageGeometry] = {}
    for index, rts in enumerate(sets):
        uid = _referenced_series(rts, series, modality)
        if uid is None:
            raise ValueError(
                f"source: expected the image series referenced by RT structure set {index} "
                f"({getattr(rts, 'StructureSetLabel', '?')!r}) among the files of {source}, found series "
                f"{sorted(series) or 'none'}"
            )
        geometry = grids.setdefault(uid, ImageGeometry.from_datasets(series[uid]))
        names = {int(r.ROINumber): str(r.ROIName) for r in getattr(rts, "StructureSetROISequence", []) or []}
        label = str(getattr(rts, "StructureSetLabel", ""))
        for roi in getattr(rts, "ROIContourSequence", []) or []:
            name = names.get(int(roi.ReferencedROINumber))
            key = None if name is None else roi_parser(name, index, label)
            if key is None:
                continue
            organ, rater = key
            contours = [np.asarray(c.ContourData, dtype=np.float64) for c in getattr(roi, "ContourSequence", []) or []
                        if str(getattr(c, "ContourGeometricType", "CLOSED_PLANAR")) == "CLOSED_PLANAR"]
            mask = rasterize_contours(contours, geometry)
            store = masks.setdefault(organ, {})
            if rater in store:
                if store[rater].shape != mask.shape:
                    raise ValueError(f"source: organ {organ!r}, rater {rater!r} is drawn on two different grids")
                store[rater] |= mask
            else:
                store[rater] = mask
    out: dict[str, torch.Tensor] = {}
    for organ in sorted(masks, key=lambda o: GOLD_ATLAS_ROIS.index(o) if o in GOLD_ATLAS_ROIS else 99):
        stack = list(masks[organ].values())
        if len({s.shape for s in stack}) != 1:
            raise ValueError(f"source: organ {organ!r}: expected every rater on one image grid, got {[s.shape for s in stack]}")
        out[organ] = torch.from_numpy(np.mean(np.stack(stack), axis=0).astype(np.float32))
    return out


def extract_patch(m: torch.Tensor, size: int = 128, *, slices: str = "all") -> torch.Tensor:
    """The ``size x size`` in-plane patch centred at the centre of mass of ``m``.

    Parameters
    ----------
    m : torch.Tensor
        ``(Z, H, W)`` marginal volume of one organ (e.g. from :func:`read_case`), not all zero.
    size : int
        Patch side (the paper: 128).
    slices : {"all", "roi"}
        ``"all"`` (default) keeps every slice of the scan, ``"roi"`` only the slab from the first
        to the last slice where ``m > 0``. The paper says only that (G) is 3-D with patches of
        128 x 128; keeping the whole scan makes the organ a small fraction of the patch, which
        is what the slow convergence of the small ROIs in Table 1 (anal canal, penile bulb)
        needs: the descent's push on the background scales with that fraction.

    Returns
    -------
    torch.Tensor
        ``(Z', size, size)``: the slices chosen by ``slices``, the window
        centred (rounded) at the in-plane centre of mass of ``m``, shifted inside the image
        when it would cross the border, zero-padded when the image is smaller than ``size``.

    Raises
    ------
    ValueError
        If ``m`` is not 3-d or is zero everywhere, or ``slices`` is not "all" or "roi".

    Examples
    --------
    >>> m = torch.zeros(3, 200, 200); m[1, 10:20, 30:50] = 1
    >>> extract_patch(m, 64).shape, extract_patch(m, 64, slices="roi").shape
    (torch.Size([3, 64, 64]), torch.Size([1, 64, 64]))
    """
    if m.ndim != 3:
        raise ValueError(f"m: expected shape (Z, H, W), got {tuple(m.shape)}")
    if slices not in ("all", "roi"):
        raise ValueError(f"slices: expected one of ('all', 'roi'), got {slices!r}")
    present = (m > 0).flatten(1).any(1).nonzero().flatten()
    if present.numel() == 0:
        raise ValueError("m: expected a marginal with at least one voxel > 0, got all zeros")
    slab = (m if slices == "all" else m[int(present[0]): int(present[-1]) + 1]).to(torch.float64)
    z, h, w = slab.shape
    plane = slab.sum(0)
    total = plane.sum()
    cy = float((plane.sum(1) * torch.arange(h, dtype=torch.float64)).sum() / total)
    cx = float((plane.sum(0) * torch.arange(w, dtype=torch.float64)).sum() / total)
    out = torch.zeros(z, size, size, dtype=m.dtype)

    def window(center: float, extent: int) -> tuple[int, int, int]:
        if extent <= size:
            off = (size - extent) // 2
            return 0, extent, off
        start = int(round(center - size / 2))
        start = min(max(start, 0), extent - size)
        return start, start + size, 0

    y0, y1, oy = window(cy, h)
    x0, x1, ox = window(cx, w)
    out[:, oy:oy + (y1 - y0), ox:ox + (x1 - x0)] = slab[:, y0:y1, x0:x1].to(m.dtype)
    return out


def _locate_cases(root: Path, cases: Sequence[str]) -> dict[str, Path]:
    if not root.is_dir():
        raise ValueError(
            f"data: expected a folder holding the Gold Atlas cases ({', '.join(c + '.zip' for c in cases[:3])}, ...), "
            f"got {root}, which is not a folder"
        )
    found: dict[str, Path] = {}
    for case in cases:
        for candidate in (root / f"{case}.zip", root / case, root / "dicom" / f"{case}.zip", root / "dicom" / case):
            if candidate.is_file() and zipfile.is_zipfile(candidate) or candidate.is_dir():
                found[case] = candidate
                break
    missing = [c for c in cases if c not in found]
    if missing:
        hint = ""
        if "3_03_P" in missing and (root / "3_03_P(1).zip").exists():
            hint = " (rename 3_03_P(1).zip to 3_03_P.zip)"
        raise ValueError(
            f"data: expected the Gold Atlas case files {', '.join(c + '.zip' for c in missing)} (or folders of that "
            f"name holding the DICOM files) in {root}{hint}; found {sorted(p.name for p in root.iterdir())[:10]}"
        )
    return found


def load_gold_atlas(root: str | Path, *, cases: Sequence[str] | None = None, rois: Sequence[str] = GOLD_ATLAS_ROIS,
                    roi_parser: RoiParser = default_roi_parser, patch: int = 128, slices: str = "all",
                    modality: str | None = "CT", progress: bool = False) -> dict[str, list[torch.Tensor]]:
    """Soft-label patches of the Gold Atlas data as the paper's experiment (G) uses them.

    Parameters
    ----------
    root : path
        Folder holding the cases as distributed: ``1_01_P.zip`` ... ``3_04_P.zip`` (or a
        ``dicom/`` subfolder with them, the paper's ``Experiments_G/dicom``), or folders named
        after the cases with the extracted DICOM files.
    cases : sequence of str, optional
        Case names to read (default: all 19 of :data:`GOLD_ATLAS_CASES`).
    rois : sequence of str
        Organs to return (default: the nine of Table 1).
    roi_parser : callable
        ROI name -> (organ, rater); see :func:`default_roi_parser`.
    patch : int
        In-plane patch size (default 128).
    slices : {"all", "roi"}
        Slices of each patch, see :func:`extract_patch` (default: the whole scan).
    modality : str or None
        See :func:`read_case`.
    progress : bool
        tqdm bar over the cases.

    Returns
    -------
    dict[str, list[torch.Tensor]]
        Organ -> one ``(Z, patch, patch)`` float32 marginal per case that has the organ.

    Raises
    ------
    ValueError
        If ``root`` is not a folder or a case file is missing (the message lists the expected
        file names), or a case cannot be read (see :func:`read_case`).
    """
    from tqdm.auto import tqdm

    root = Path(root)
    names = list(GOLD_ATLAS_CASES if cases is None else cases)
    unknown = [r for r in rois if r not in GOLD_ATLAS_ROIS]
    if unknown:
        raise ValueError(f"rois: expected names from {list(GOLD_ATLAS_ROIS)}, got {unknown}")
    located = _locate_cases(root, names)
    out: dict[str, list[torch.Tensor]] = {r: [] for r in rois}
    for case in tqdm(names, desc="Gold Atlas cases", disable=not progress, leave=False):
        marginals = read_case(located[case], roi_parser=roi_parser, modality=modality)
        for organ, m in marginals.items():
            if organ in out and bool((m > 0).any()):
                out[organ].append(extract_patch(m, patch, slices=slices))
    return {r: v for r, v in out.items() if v}
