"""Tests of :mod:`softseg.experiments.dml_qubiq` (Dice semimetric paper, Sect. 3.2-3.4, Table 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from softseg import reproduce, results
from softseg.data.raters import SyntheticRaters
from softseg.experiments import dml_qubiq as dq

TINY = {"size": 16, "n_train": 8, "n_val": 4, "raters": 3, "synthetic": {}, "epochs": 1, "batch_size": 4,
        "width": 2, "depth": 1, "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "labels": ("majority", "mean"), "device": "cpu", "qubiq": {"size": 16, "folds": 2, "max_folds": 2}}


def test_training_loss_terms_and_theorem2():
    sdl, dml = dq.training_loss("CE+SDL"), dq.training_loss("CE+DML")
    assert sdl.weights == dml.weights == [0.25, 0.75]
    logits = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    hard = (torch.rand(2, 1, 8, 8) < 0.5).double()
    soft = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(sdl(logits, hard), dml(logits, hard))  # Theorem 2: equal on hard targets
    assert not torch.allclose(sdl(logits, soft), dml(logits, soft))
    # the CE term is the binary cross-entropy with logits; lambda 0 leaves only it
    ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, soft)
    torch.testing.assert_close(dq.training_loss("CE+DML", lambda_dice=0.0)(logits, soft), ce)


@pytest.mark.parametrize(("args", "kw", "match"), [
    (("CE+XYZ",), {}, "loss: expected one of"),
    (("CE+DML",), {"lambda_dice": 1.5}, r"lambda_dice: expected a number in \[0, 1\]"),
])
def test_training_loss_errors(args, kw, match):
    with pytest.raises(ValueError, match=match):
        dq.training_loss(*args, **kw)


def test_evaluate_predictions_ends_of_range():
    ds = SyntheticRaters(3, size=(12, 16), raters=5)
    val = ds.stack()
    perfect = dq.evaluate_predictions(val["majority"], val["majority"], val["mean"])
    assert perfect["Dice (%)"] == 100.0 and perfect["ECE (%)"] == 0.0
    at_mean = dq.evaluate_predictions(val["mean"], val["majority"], val["mean"])
    assert at_mean["L1 to mean (%)"] == 0.0 and at_mean["ECE vs mean (%)"] == pytest.approx(0.0, abs=1e-9)
    assert at_mean["BDice (%)"] == 100.0  # prediction = soft target at every threshold
    empty = torch.zeros_like(val["mean"])
    worst = dq.evaluate_predictions(empty, val["majority"], val["mean"])
    assert worst["Dice (%)"] == 0.0  # every case has a foreground majority


def test_grid_rows_paper_values():
    grid = [{"label": lab, "loss": loss, **{m: 1.0 for m in dq.METRIC_COLUMNS}}
            for lab in ("weighted", "ls", "bls") for loss in dq.LOSSES]
    rows = dq.grid_rows(grid, table="T", dataset=None, paper_row="All")
    assert len(rows) == 6 * len(dq.METRIC_COLUMNS)
    by_key = {(r["row"], r["column"]): r for r in rows}
    assert by_key["Weighted", "CE+DML Dice (%)"]["paper"] == 79.85  # Table 2, All, Weighted
    assert by_key["Weighted", "CE+DML ECE (%)"]["paper"] == 0.29
    assert by_key["Weighted", "CE+SDL Dice (%)"]["paper"] is None  # Table 6 is not in the paper text
    # Table 2's "LS" (All: Dice 79.15, ECE 0.35) beside boundary LS, the LS of the authors' code;
    # global LS, with ECE ~ eps/2 by construction, has no paper counterpart
    assert by_key["boundary LS", "CE+DML Dice (%)"]["paper"] == 79.15
    assert by_key["boundary LS", "CE+DML ECE (%)"]["paper"] == 0.35
    assert all(by_key["global LS", f"{loss} {m}"]["paper"] is None for loss in dq.LOSSES for m in dq.METRIC_COLUMNS)
    assert by_key["Weighted", "CE+DML L1 to mean (%)"]["paper"] is None
    assert all(r["note"] == "dml-training" and "tolerance" not in r for r in rows)
    rows = dq.grid_rows(grid, table="Table 2", dataset="Kidney", paper_row="Kidney")
    assert {(r["row"], r["column"]): r["paper"] for r in rows}["Kidney: Weighted", "CE+DML BDice (%)"] == 75.67


def test_paper_all_row_is_mean_of_tasks():
    """Table 2's "All" row is the unweighted mean of its 7 task rows (to the table's rounding,
    which truncates: within 0.01), which is how _qubiq forms ours."""
    tasks = [k for k in dq.PAPER_TABLE2 if k != "All"]
    for metric, values in dq.PAPER_TABLE2["All"].items():
        mean = np.mean([dq.PAPER_TABLE2[t][metric] for t in tasks], axis=0)
        np.testing.assert_allclose(mean, values, rtol=0, atol=0.0101)


def test_label_options_match_the_authors_boundary_ls():
    """bls: the authors' code (JDTLosses get_soft_label, ls.yaml: epsilon 0.5, k = 3) smooths the
    pixels with a pixel of the other class in their 3 x 3 window to 1 - eps + eps/2 = 0.75 (and
    eps/2 = 0.25), nothing else; ls smooths every pixel with eps = 0.1 (0.95 / 0.05)."""
    for lab, values in (("bls", {0.0, 0.25, 0.75, 1.0}), ("ls", {0.05, 0.95})):
        ds = SyntheticRaters(2, size=24, raters=5, label=lab, **dq.PRESETS["fast"]["label_options"][lab])
        _, target = ds[0]
        np.testing.assert_allclose(sorted(set(target.flatten().tolist())), sorted(values), atol=1e-7)
    ds = SyntheticRaters(2, size=24, raters=5, label="bls", **dq.LABEL_OPTIONS["bls"])
    _, target = ds[0]
    majority = ds.stack()["majority"][0, 0].numpy().astype(bool)
    pad = np.pad(majority, 1, mode="edge")
    shifted = [pad[1 + i:25 + i, 1 + j:25 + j] for i in (-1, 0, 1) for j in (-1, 0, 1)]
    band = np.any([s != majority for s in shifted], axis=0)  # the other class in the 3 x 3 window
    t = target[0].numpy()
    np.testing.assert_array_equal(t[~band], majority[~band].astype(np.float32))
    np.testing.assert_allclose(t[band], np.where(majority[band], 0.75, 0.25))
    assert dq.PRESETS["full"]["label_options"] == dq.PRESETS["fast"]["label_options"] == dq.LABEL_OPTIONS


def _table(values):
    """A metric table with ``values[label, loss] = {metric: v}`` filled up with 0 elsewhere."""
    return {(lab, loss): {m: values.get((lab, loss), {}).get(m, 0.0) for m in dq.METRIC_COLUMNS}
            for lab in dq.LABEL_COLUMNS for loss in dq.LOSSES}


def test_soft_vs_hard_verdicts():
    # the paper's Table 2, "All": every soft label beats every hard one on Dice, BDice and ECE
    paper = dq.soft_vs_hard(dq.paper_metric_table("All"))
    assert [r["verdict"] for r in paper] == ["soft better"] * 3 and all(r["soft wins"] == "4/4" for r in paper)
    dice, bdice, ece = paper
    assert dice["margin"] == pytest.approx(77.31 - 76.80)        # worst soft (Uniform) - best hard (Majority)
    assert bdice["margin"] == pytest.approx(76.59 - 75.59)       # Weighted - Random
    assert ece["margin"] == pytest.approx(0.57 - 0.38)           # best hard ECE - worst soft ECE
    # Brain Tumor T2 (Table 2): Dice majority 58.58 > uniform 52.42, weighted 61.01 > both hard
    bt2 = dq.soft_vs_hard(dq.paper_metric_table("Brain Tumor T2"), metrics=("Dice (%)",))[0]
    assert bt2["verdict"] == "mixed" and bt2["soft wins"] == "3/4"
    assert bt2["margin"] == pytest.approx(52.42 - 58.58)
    # lower is better for ECE: soft labels with a larger ECE lose
    t = _table({("majority", "CE+SDL"): {"ECE (%)": 1.0}, ("random", "CE+SDL"): {"ECE (%)": 1.5},
                ("mean", "CE+SDL"): {"ECE (%)": 2.0}, ("weighted", "CE+SDL"): {"ECE (%)": 3.0}})
    row = dq.soft_vs_hard(t, loss="CE+SDL", metrics=("ECE (%)",))[0]
    assert row["verdict"] == "hard better" and row["soft wins"] == "0/4" and row["margin"] == pytest.approx(-2.0)
    assert row["Majority"] == 1.0 and row["Weighted"] == 3.0
    with pytest.raises(ValueError, match="metric: expected one of"):
        dq.soft_vs_hard(t, metrics=("IoU",))
    with pytest.raises(ValueError, match="row: expected one of"):
        dq.paper_metric_table("Liver")


def test_dml_minus_sdl_directions():
    t = _table({("mean", "CE+SDL"): {"Dice (%)": 80.0, "ECE (%)": 3.0},
                ("mean", "CE+DML"): {"Dice (%)": 80.5, "ECE (%)": 2.0}})
    rows = {(r["labels"], r["metric"]): r for r in dq.dml_minus_sdl(t, labels=("mean",))}
    assert rows["Uniform", "Dice (%)"]["DML - SDL"] == pytest.approx(0.5) and rows["Uniform", "Dice (%)"]["DML better"]
    assert rows["Uniform", "ECE (%)"]["DML - SDL"] == pytest.approx(-1.0) and rows["Uniform", "ECE (%)"]["DML better"]
    assert not rows["Uniform", "BDice (%)"]["DML better"]  # a tie is not better
    assert len(rows) == len(dq.METRIC_COLUMNS)


def test_metric_table_from_grid_and_record_and_committed_comparison():
    grid = [{"label": lab, "loss": loss, **{m: float(i) for i, m in enumerate(dq.METRIC_COLUMNS)}}
            for lab in ("majority", "bls") for loss in dq.LOSSES]
    table = dq.metric_table(grid)
    record = {"rows": dq.grid_rows(grid, table="T", dataset=None, paper_row="All")}
    assert dq.metric_table(record) == table
    qubiq = {"rows": dq.grid_rows(grid, table="T", dataset="Kidney", paper_row="Kidney")
             + dq.grid_rows(grid, table="T", dataset="All", paper_row="All")}
    assert dq.metric_table(qubiq, dataset="Kidney") == table and dq.metric_table(qubiq) == {}
    with pytest.raises(ValueError, match="record row: expected a label column"):
        dq.metric_table({"rows": [{"row": "Soft", "column": "CE+DML Dice (%)", "ours": 1.0}]})
    # the live run beside the record: within the per-metric tolerance, or not
    live = {k: dict(v) for k, v in table.items()}
    live["bls", "CE+DML"]["Dice (%)"] += 0.05
    live["majority", "CE+SDL"]["L1 to mean (%)"] += 0.05  # L1's tolerance is 0.01
    rows = dq.compare_with_committed(live, record)
    assert len(rows) == len(record["rows"])
    off = {(r["labels"], r["column"]) for r in rows if not r["within"]}
    assert off == {("Majority", "CE+SDL L1 to mean (%)")}
    moved = next(r for r in rows if (r["labels"], r["column"]) == ("boundary LS", "CE+DML Dice (%)"))
    assert moved["difference"] == pytest.approx(0.05) and moved["paper"] == 79.15 and moved["tolerance"] == 0.1


def test_gradient_gap_theorem2_in_one_step():
    """Hard targets: the two losses' parameter gradients agree to float rounding (a few ulps);
    soft targets: they differ."""
    for dtype in (torch.float32, torch.float64):
        eps = torch.finfo(dtype).eps
        assert dq.gradient_gap("majority", TINY, dtype=dtype) <= 16 * eps
    assert dq.gradient_gap("mean", TINY) > 1e-3
    with pytest.raises(ValueError, match="label: expected one of"):
        dq.gradient_gap("soft", TINY)


def test_paper_table2_shape():
    assert set(dq.PAPER_TABLE2) == {"Prostate T1", "Prostate T2", "Brain Growth", "Brain Tumor T1", "Brain Tumor T2",
                                    "Brain Tumor T3", "Kidney", "All"}
    for metrics_ in dq.PAPER_TABLE2.values():
        assert all(len(v) == 5 for v in metrics_.values())


def test_run_grid_hard_labels_train_identically():
    """Theorem 2 in training: with hard targets CE+SDL and CE+DML take the same steps."""
    val = SyntheticRaters(4, size=16, raters=3, seed=1).stack()
    grid = dq.run_grid(lambda lab: SyntheticRaters(8, size=16, raters=3, label=lab), val, labels=("majority",),
                       progress=False, width=2, depth=1, epochs=2, batch_size=4, device="cpu")
    assert [g["loss"] for g in grid] == list(dq.LOSSES)
    torch.testing.assert_close(grid[0]["prob"], grid[1]["prob"], atol=1e-4, rtol=0)
    assert torch.get_num_threads() >= 1


def test_run_grid_is_repeatable():
    val = SyntheticRaters(4, size=16, raters=3, seed=1).stack()
    kw = dict(labels=("mean",), losses=("CE+DML",), progress=False, width=2, depth=1, epochs=1, batch_size=4,
              device="cpu")
    a = dq.run_grid(lambda lab: SyntheticRaters(8, size=16, raters=3, label=lab), val, **kw)
    b = dq.run_grid(lambda lab: SyntheticRaters(8, size=16, raters=3, label=lab), val, **kw)
    assert torch.equal(a[0]["prob"], b[0]["prob"])


def test_run_grid_rejects_unknown_label():
    with pytest.raises(ValueError, match="label: expected one of"):
        dq.run_grid(lambda lab: None, {}, labels=("soft",), progress=False)


def test_registered_and_fast_rows_validate(monkeypatch, tmp_path):
    assert "dml-qubiq" in reproduce.registry()
    monkeypatch.setitem(dq.PRESETS, "fast", TINY)
    path = reproduce.run_reproduction("dml-qubiq", preset="fast", out_dir=tmp_path, command="test")
    record = results.load_results(tmp_path)[0]
    assert record["name"] == "dml-qubiq" and path.name == "dml-qubiq.json"
    assert len(record["rows"]) == 2 * 2 * len(dq.METRIC_COLUMNS)
    assert {r["row"] for r in record["rows"]} == {"Majority", "Uniform"}


def test_qubiq_path(monkeypatch, tmp_path):
    nib = pytest.importorskip("nibabel")
    for case in ("case01", "case02", "case03", "case04"):
        d = tmp_path / "kidney" / "Training" / case
        d.mkdir(parents=True)
        nib.save(nib.Nifti1Image(np.random.default_rng(0).uniform(0, 1, (20, 18)).astype(np.float32), np.eye(4)),
                 str(d / "image.nii.gz"))
        for r in range(3):
            m = np.zeros((20, 18), np.uint8)
            m[5:12 + r, 4:10] = 1
            nib.save(nib.Nifti1Image(m, np.eye(4)), str(d / f"task01_seg{r + 1:02d}.nii.gz"))
    import softseg.data.qubiq as qubiq

    monkeypatch.setattr(qubiq, "QUBIQ_TASKS", (("Kidney", "kidney", 1),))
    monkeypatch.setitem(dq.PRESETS, "fast", TINY)
    rows = dq.run("fast", data=str(tmp_path), progress=False)
    names = {r["row"] for r in rows}
    assert names == {"Kidney: Majority", "Kidney: Uniform", "All: Majority", "All: Uniform"}
    paper = {(r["row"], r["column"]): r["paper"] for r in rows}
    assert paper["Kidney: Uniform", "CE+DML Dice (%)"] == 71.33 and paper["All: Majority", "CE+DML ECE (%)"] == 0.57


def test_run_rejects_unknown_preset():
    with pytest.raises(ValueError, match="preset: expected one of"):
        dq.run("medium")


def test_committed_results_file():
    path = Path(__file__).resolve().parent.parent / "results" / "dml-qubiq.json"
    if not path.exists():
        pytest.skip("no committed results/dml-qubiq.json")
    record = [r for r in results.load_results(path.parent) if r["name"] == "dml-qubiq"][0]
    per_grid = len(dq.LOSSES) * len(dq.LABEL_COLUMNS) * len(dq.METRIC_COLUMNS)  # one per data set/task
    assert record["rows"] and len(record["rows"]) % per_grid == 0
    assert all(r["note"] == "dml-training" and "tolerance" not in r for r in record["rows"])


def test_agreement_curve():
    mean = torch.tensor([[0.0, 0.2, 0.2, 1.0], [0.6, 0.6, 1.0, 0.0]])
    prob = torch.tensor([[0.1, 0.3, 0.1, 0.9], [0.5, 0.7, 1.0, 0.3]])
    levels, curve = dq.agreement_curve(prob, mean, 5)
    np.testing.assert_allclose(levels, [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(curve[[0, 1, 3, 5]], [0.2, 0.2, 0.6, 0.95])
    assert np.isnan(curve[2]) and np.isnan(curve[4])  # no pixel at 2/5 or 4/5
    _, on_diagonal = dq.agreement_curve(mean, mean, 5)
    np.testing.assert_allclose(on_diagonal[[0, 1, 3, 5]], [0, 0.2, 0.6, 1.0])
    with pytest.raises(ValueError, match="prob and mean: expected equal shapes"):
        dq.agreement_curve(prob, mean[0], 5)
    with pytest.raises(ValueError, match="raters: expected an integer >= 1"):
        dq.agreement_curve(prob, mean, 0)
