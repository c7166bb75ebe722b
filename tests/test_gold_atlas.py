"""Tests of softseg.data.gold_atlas on small DICOM CT series and RT structure sets written here
with pydicom: both storage variants of the five observers (one structure set per observer;
observer-tagged ROI names in one file), zip and folder layouts, contour rasterization against
hand-derived pixel sets, holes, patches, and the errors for wrong layouts."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

pydicom = pytest.importorskip("pydicom")
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset  # noqa: E402
from pydicom.sequence import Sequence as DicomSequence  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402

from softseg.data import gold_atlas  # noqa: E402
from softseg.data.gold_atlas import (  # noqa: E402
    ImageGeometry,
    default_roi_parser,
    extract_patch,
    load_gold_atlas,
    rasterize_contours,
    read_case,
)

CT_SOP = "1.2.840.10008.5.1.4.1.1.2"
RTSTRUCT_SOP = "1.2.840.10008.5.1.4.1.1.481.3"

# Geometry of the fixture: 4 slices of 20 rows x 24 columns, 2 mm pixels, 3 mm slices, origin
# (-20, -10, 0) mm, axial orientation (row direction +x, column direction +y).
ROWS, COLS, SLICES = 20, 24, 4
ORIGIN = np.array([-20.0, -10.0, 0.0])
SPACING = 2.0
THICKNESS = 3.0


def _meta(sop_class: str, sop_instance: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


def write_ct(folder: Path, frame: str, study: str, *, modality: str = "CT", description: str = "CT") -> str:
    """A 4-slice series; returns its SeriesInstanceUID."""
    series = generate_uid()
    for k in range(SLICES):
        uid = generate_uid()
        ds = FileDataset(str(folder / f"{modality}.{k}.dcm"), {}, file_meta=_meta(CT_SOP, uid), preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CT_SOP, uid
        ds.Modality, ds.SeriesDescription = modality, description
        ds.PatientID = "1_01_P"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [float(v) for v in ORIGIN + [0.0, 0.0, THICKNESS * k]]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [SPACING, SPACING]
        ds.SliceThickness = THICKNESS
        ds.Rows, ds.Columns = ROWS, COLS
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = np.zeros((ROWS, COLS), dtype=np.uint16).tobytes()
        ds.save_as(folder / f"{modality}.{k}.dcm", enforce_file_format=True)
    return series


def rect_contour(r0: int, r1: int, c0: int, c1: int, k: int) -> list[float]:
    """Closed polygon (mm) around the pixel centres rows r0..r1, columns c0..c1 of slice k: the
    corners lie half a pixel outside those centres, so exactly that block is inside."""
    corners = [(r0 - 0.5, c0 - 0.5), (r0 - 0.5, c1 + 0.5), (r1 + 0.5, c1 + 0.5), (r1 + 0.5, c0 - 0.5)]
    pts = []
    for r, c in corners:
        pts += [ORIGIN[0] + c * SPACING, ORIGIN[1] + r * SPACING, ORIGIN[2] + k * THICKNESS]
    return pts


def write_rtstruct(path: Path, frame: str, study: str, series: str | None, rois: dict[str, list[list[float]]],
                   label: str = "observer") -> None:
    """One RT structure set with ROIs name -> list of contours (flat ContourData lists)."""
    uid = generate_uid()
    ds = FileDataset(str(path), {}, file_meta=_meta(RTSTRUCT_SOP, uid), preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = RTSTRUCT_SOP, uid
    ds.Modality, ds.StructureSetLabel = "RTSTRUCT", label
    ds.PatientID = "1_01_P"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
    fr = Dataset()
    fr.FrameOfReferenceUID = frame
    if series is not None:
        ser = Dataset()
        ser.SeriesInstanceUID = series
        st = Dataset()
        st.ReferencedSOPInstanceUID = study
        st.RTReferencedSeriesSequence = DicomSequence([ser])
        fr.RTReferencedStudySequence = DicomSequence([st])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([fr])
    ss, rc = [], []
    for number, (name, contours) in enumerate(rois.items(), start=1):
        item = Dataset()
        item.ROINumber, item.ROIName, item.ReferencedFrameOfReferenceUID = number, name, frame
        ss.append(item)
        roi = Dataset()
        roi.ReferencedROINumber = number
        seq = []
        for pts in contours:
            c = Dataset()
            c.ContourGeometricType = "CLOSED_PLANAR"
            c.NumberOfContourPoints = len(pts) // 3
            c.ContourData = [float(v) for v in pts]
            seq.append(c)
        roi.ContourSequence = DicomSequence(seq)
        rc.append(roi)
    ds.StructureSetROISequence = DicomSequence(ss)
    ds.ROIContourSequence = DicomSequence(rc)
    ds.save_as(path, enforce_file_format=True)


# Five observers of two organs. Prostate: observer k draws rows 6..12 and columns 8..(12 + k) on
# slices 1 and 2, so column 12 + j is marked by observers j..4: m = (5 - j) / 5 there.
# Rectum: observers 0-2 draw a 3 x 3 block on slice 2, observers 3-4 draw nothing.
def prostate(k: int) -> list[list[float]]:
    return [rect_contour(6, 12, 8, 12 + k, s) for s in (1, 2)]


def rectum(k: int) -> list[list[float]]:
    return [rect_contour(14, 16, 2, 4, 2)] if k < 3 else []


def expected_prostate() -> np.ndarray:
    m = np.zeros((SLICES, ROWS, COLS), dtype=np.float32)
    for k in range(5):
        m[1:3, 6:13, 8:13 + k] += 0.2
    return m


def make_case(folder: Path, variant: str) -> Path:
    """Write one case in ``folder``: CT + T2 MR (other frame) + RT structure sets."""
    folder.mkdir(parents=True, exist_ok=True)
    study, frame = generate_uid(), generate_uid()
    series = write_ct(folder, frame, study)
    write_ct(folder, generate_uid(), study, modality="MR", description="T2 tse")  # another frame
    if variant == "per-observer":
        for k in range(5):
            rois = {"Prostate": prostate(k), "BODY": [rect_contour(0, 19, 0, 23, 0)]}
            if rectum(k):
                rois["Rectum"] = rectum(k)
            write_rtstruct(folder / f"RS.obs{k}.dcm", frame, study, series, rois, label=f"obs{k}")
    else:  # observer-tagged names in one file, referenced by frame of reference only
        rois = {}
        for k in range(5):
            rois[f"Prostate_{k + 1}"] = prostate(k)
            if rectum(k):
                rois[f"Rectum_{k + 1}"] = rectum(k)
        write_rtstruct(folder / "RS.all.dcm", frame, study, None, rois, label="all")
    return folder


def zip_case(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, arcname=f"{folder.name}/{p.name}")
    return target


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("gold_atlas")
    out = {}
    for variant in ("per-observer", "tagged"):
        folder = make_case(base / variant / "1_01_P", variant)
        zipped = base / f"zip-{variant}"
        zipped.mkdir()
        zip_case(folder, zipped / "1_01_P.zip")
        out[variant] = folder
        out[f"zip-{variant}"] = zipped
    return out


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("variant", ["per-observer", "tagged"])
def test_read_case_averages_the_five_observers(cases, variant):
    marginals = read_case(cases[variant])
    assert list(marginals) == ["Rectum", "Prostate"]  # Table 1 order; BODY is not an ROI of the paper
    np.testing.assert_allclose(marginals["Prostate"].numpy(), expected_prostate(), atol=1e-6)
    assert marginals["Prostate"].dtype == torch.float32
    # Rectum: only the three observers who drew it count, so m = 1 on their common block.
    rect = marginals["Rectum"].numpy()
    assert rect.shape == (SLICES, ROWS, COLS)
    assert rect[2, 14:17, 2:5].min() == 1.0 and rect.sum() == 9.0


@pytest.mark.parametrize("variant", ["per-observer", "tagged"])
def test_load_gold_atlas_from_zip_and_folder(cases, variant):
    from_zip = load_gold_atlas(cases[f"zip-{variant}"], cases=["1_01_P"], patch=16, slices="roi")
    from_dir = load_gold_atlas(cases[variant].parent, cases=["1_01_P"], patch=16, slices="roi")
    for loaded in (from_zip, from_dir):
        assert sorted(loaded) == ["Prostate", "Rectum"]
        (p,) = loaded["Prostate"]
        assert p.shape == (2, 16, 16)  # slab: slices 1-2 where any rater marks it
        # Values are those of the averaged raters, all of the structure is inside the patch.
        np.testing.assert_allclose(p.sum().item(), expected_prostate().sum(), rtol=1e-6)
        assert sorted(round(v, 4) for v in p.unique().tolist()) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    torch.testing.assert_close(from_zip["Prostate"][0], from_dir["Prostate"][0])
    whole = load_gold_atlas(cases[variant].parent, cases=["1_01_P"], patch=16)  # default: every slice
    assert whole["Prostate"][0].shape == (SLICES, 16, 16)
    torch.testing.assert_close(whole["Prostate"][0][1:3], from_dir["Prostate"][0])


def test_rasterize_hole_and_geometry():
    geometry = ImageGeometry(
        origins=np.array([ORIGIN + [0, 0, THICKNESS * k] for k in range(SLICES)]),
        row_dir=np.array([1.0, 0, 0]), col_dir=np.array([0, 1.0, 0]), spacing=(SPACING, SPACING),
        shape=(SLICES, ROWS, COLS),
    )
    outer, inner = rect_contour(2, 10, 2, 10, 3), rect_contour(5, 7, 5, 7, 3)
    mask = rasterize_contours([np.array(outer), np.array(inner)], geometry)
    expected = np.zeros((SLICES, ROWS, COLS), dtype=bool)
    expected[3, 2:11, 2:11] = True
    expected[3, 5:8, 5:8] = False  # even-odd rule: the inner contour is a hole
    np.testing.assert_array_equal(mask, expected)
    # Non-square pixels: PixelSpacing = (row spacing, column spacing).
    aniso = ImageGeometry(geometry.origins, geometry.row_dir, geometry.col_dir, (1.0, 2.0), geometry.shape)
    pts = np.array([[ORIGIN[0] + 2 * 3.5, ORIGIN[1] + 1 * 0.5, 0], [ORIGIN[0] + 2 * 5.5, ORIGIN[1] + 0.5, 0],
                    [ORIGIN[0] + 2 * 5.5, ORIGIN[1] + 1 * 2.5, 0], [ORIGIN[0] + 2 * 3.5, ORIGIN[1] + 2.5, 0]])
    m = rasterize_contours([pts], aniso)
    assert m[0].nonzero()[0].tolist() == [1, 1, 2, 2] and m[0].nonzero()[1].tolist() == [4, 5, 4, 5]
    off_grid = np.array(rect_contour(2, 4, 2, 4, 0)).reshape(-1, 3) + [0.0, 0.0, 100.0]
    with pytest.raises(ValueError, match="expected it on a slice"):
        rasterize_contours([off_grid], geometry)
    with pytest.raises(ValueError, match="at least 3 points"):
        rasterize_contours([np.zeros((2, 3))], geometry)


def test_extract_patch_border_and_padding():
    m = torch.zeros(5, 300, 200)
    m[2:4, 5:15, 190:198] = 0.6  # near the top-right corner
    p = extract_patch(m, 128, slices="roi")
    assert p.shape == (2, 128, 128)
    assert extract_patch(m, 128).shape == (5, 128, 128)
    assert p.sum().item() == pytest.approx(m.sum().item())  # shifted inside, nothing lost
    small = torch.zeros(1, 20, 24)
    small[0, 3:5, 3:5] = 1.0
    q = extract_patch(small, 32)  # image smaller than the patch: zero-padded, centred
    assert q.shape == (1, 32, 32) and q.sum().item() == 4.0
    with pytest.raises(ValueError, match="all zeros"):
        extract_patch(torch.zeros(2, 8, 8))
    with pytest.raises(ValueError, match="slices: expected one of"):
        extract_patch(m, slices="organ")
    with pytest.raises(ValueError, match=r"expected shape \(Z, H, W\)"):
        extract_patch(torch.zeros(8, 8))


@pytest.mark.parametrize(
    ("name", "index", "expected"),
    [
        ("Prostate", 2, ("Prostate", "set2")),
        ("Prostate_3", 0, ("Prostate", "3")),
        ("Femoral_head_R", 1, ("Femoral head R", "set1")),
        ("FemoralHeadL 4", 0, ("Femoral head L", "4")),
        ("Femur_sin", 0, ("Femoral head L", "set0")),
        ("Seminal vesicles_5", 0, ("Seminal vesicles", "5")),
        ("Vesicula_seminalis", 0, ("Seminal vesicles", "set0")),
        ("Urinary bladder", 0, ("Urinary bladder", "set0")),
        ("NVB_2", 0, ("Neurovascular b.", "2")),
        ("Anal canal", 0, ("Anal canal", "set0")),
        ("PenileBulb", 0, ("Penile bulb", "set0")),
        ("Rectum", 0, ("Rectum", "set0")),
        ("BODY", 0, None),
        ("Femoral head", 0, None),  # no side: not one of the two ROIs
    ],
)
def test_default_roi_parser(name, index, expected):
    assert default_roi_parser(name, index, "") == expected


def test_custom_roi_parser(cases):
    def only_first_two(name, index, label):
        key = default_roi_parser(name, index, label)
        return key if key is not None and index < 2 else None

    marginals = read_case(cases["per-observer"], roi_parser=only_first_two)
    expected = np.zeros((SLICES, ROWS, COLS), dtype=np.float32)
    for k in range(2):
        expected[1:3, 6:13, 8:13 + k] += 0.5
    np.testing.assert_allclose(marginals["Prostate"].numpy(), expected, atol=1e-6)


# --------------------------------------------------------------------------- errors


def test_layout_errors(tmp_path, cases):
    with pytest.raises(ValueError, match=r"expected a folder holding the Gold Atlas cases \(1_01_P.zip"):
        load_gold_atlas(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"expected the Gold Atlas case files 1_01_P.zip, 1_02_P.zip"):
        load_gold_atlas(tmp_path)
    (tmp_path / "3_03_P(1).zip").write_bytes(b"")
    with pytest.raises(ValueError, match=r"rename 3_03_P\(1\).zip to 3_03_P.zip"):
        load_gold_atlas(tmp_path, cases=["3_03_P"])
    with pytest.raises(ValueError, match="rois: expected names from"):
        load_gold_atlas(cases["zip-tagged"], cases=["1_01_P"], rois=["Liver"])
    no_rt = tmp_path / "1_02_P"
    no_rt.mkdir()
    write_ct(no_rt, generate_uid(), generate_uid())
    with pytest.raises(ValueError, match="expected DICOM RT structure sets"):
        read_case(no_rt)
    orphan = tmp_path / "orphan"
    orphan.mkdir()
    write_ct(orphan, generate_uid(), generate_uid())
    write_rtstruct(orphan / "RS.dcm", generate_uid(), generate_uid(), None, {"Prostate": prostate(0)})
    with pytest.raises(ValueError, match="expected the image series referenced by RT structure set 0"):
        read_case(orphan)


def test_module_exports():
    for name in gold_atlas.__all__:
        assert hasattr(gold_atlas, name)
