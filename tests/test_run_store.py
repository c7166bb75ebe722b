"""Tests of :class:`softseg.reproduce.RunStore` — the finished-run store that lets a time-budgeted
``full`` reproduction stop and continue — and of its use by the three training reproductions."""

from __future__ import annotations

import json

import pytest
import torch

from test_dml_experiment import TINY as DML_TINY
from test_margin_experiment import TINY as MARGIN_TINY
from test_sauna_experiment import TINY as SAUNA_TINY

from softseg import cli, reproduce, results
from softseg.experiments import dml_qubiq as dq
from softseg.experiments import margin_calibration as mc
from softseg.experiments import sauna_fives as sf
from softseg.reproduce import BudgetExhausted, RunStore


def ticking(step: float = 10.0):
    """A clock that moves ``step`` seconds at every reading: the store's start reads 0, a budget
    check reads ``step``, a run reads two more (so each run 'takes' ``step`` seconds)."""
    t = [-step]

    def clock() -> float:
        t[0] += step
        return t[0]

    return clock


# --------------------------------------------------------------------------- the store itself


def test_without_directory_computes_every_time_and_returns_the_result_as_is():
    store = RunStore(None, fingerprint={"name": "demo"})
    calls = []
    result = store.run("a", lambda: calls.append(1) or {"x": torch.tensor([1.0, 2.0])})
    assert isinstance(result["x"], torch.Tensor)  # nothing round-trips through JSON
    store.run("a", lambda: calls.append(1) or {})
    assert len(calls) == 2 and store.computed == ["a", "a"] and store.path("a") is None


def test_keep_selects_what_is_stored_and_returned(tmp_path):
    big = {"iou": 0.5, "outputs": torch.zeros(2, 3)}
    assert RunStore(tmp_path, fingerprint={}).run("a", lambda: big, keep=("iou",)) == {"iou": 0.5}
    assert json.loads((tmp_path / "a.json").read_text())["result"] == {"iou": 0.5}
    assert RunStore.transient().run("a", lambda: big, keep=("iou",)) is big  # nothing stored: all of it


def test_stored_run_is_loaded_not_computed(tmp_path):
    first = RunStore(tmp_path, fingerprint={"name": "demo", "seed": 0})
    out = first.run("grid/majority/CE+DML", lambda: {"iou": torch.tensor([0.25, 1.0]), "n": 3})
    assert out == {"iou": [0.25, 1.0], "n": 3}  # returned as stored
    path = first.path("grid/majority/CE+DML")
    assert path.parent == tmp_path and path.name == "grid_majority_CE_DML.json"
    assert json.loads(path.read_text())["key"] == "grid/majority/CE+DML"
    again = RunStore(tmp_path, fingerprint={"name": "demo", "seed": 0})
    assert again.run("grid/majority/CE+DML", lambda: pytest.fail("a stored run was computed again")) == out
    assert again.loaded == ["grid/majority/CE+DML"] and again.computed == []


@pytest.mark.parametrize("damage", ["fingerprint", "torn", "other key"])
def test_a_file_of_other_settings_or_a_torn_file_is_computed_again(tmp_path, damage):
    RunStore(tmp_path, fingerprint={"seed": 0}).run("a", lambda: {"v": 1})
    path = tmp_path / "a.json"
    if damage == "torn":
        path.write_text('{"key": "a", "fingerp')
    elif damage == "other key":
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "key": "b"}))
    fingerprint = {"seed": 1} if damage == "fingerprint" else {"seed": 0}
    store = RunStore(tmp_path, fingerprint=fingerprint)
    assert store.run("a", lambda: {"v": 2}) == {"v": 2} and store.computed == ["a"]
    assert json.loads(path.read_text())["result"] == {"v": 2}  # overwritten


def test_fingerprint_compares_after_json_round_trip(tmp_path):
    RunStore(tmp_path, fingerprint={"size": (256, 320), "lr": 1e-4}).run("a", lambda: {"v": 1})
    store = RunStore(tmp_path, fingerprint={"size": [256, 320], "lr": 1e-4})
    assert store.run("a", lambda: {"v": 2}) == {"v": 1}


def test_add_to_fingerprint_only_before_the_first_run(tmp_path):
    store = RunStore(tmp_path, fingerprint={"name": "demo"})
    store.add_to_fingerprint(settings={"epochs": 3})
    assert store.fingerprint == {"name": "demo", "settings": {"epochs": 3}}
    store.run("a", lambda: {})
    with pytest.raises(RuntimeError, match="before the first run"):
        store.add_to_fingerprint(seed=1)


def test_budget_stops_before_a_run_that_would_overrun_and_the_next_store_continues(tmp_path):
    store = RunStore(tmp_path, fingerprint={}, time_budget_s=25.0, clock=ticking(10.0))
    store.run("first", lambda: {"v": 1})             # starts at 10 s, takes 10 s
    with pytest.raises(BudgetExhausted, match=r"stopped before run 'second'.*same command"):
        store.run("second", lambda: pytest.fail("started past the budget"))
    again = RunStore(tmp_path, fingerprint={}, time_budget_s=25.0, clock=ticking(10.0))
    assert again.run("first", lambda: pytest.fail("recomputed")) == {"v": 1}
    # the pace is known from the stored run: 10 s elapsed + 10 s <= 25 s, so the second starts
    assert again.run("second", lambda: {"v": 2}) == {"v": 2}
    assert again.loaded == ["first"] and again.computed == ["second"]


def test_without_a_budget_nothing_stops():
    store = RunStore(None, fingerprint={}, clock=ticking(1e6))
    for key in "abc":
        store.run(key, lambda: {})
    assert store.computed == list("abc")


def test_tensors_round_trip_under_the_same_fingerprint_only(tmp_path):
    state = {"w": torch.arange(6.0).view(2, 3), "b": torch.zeros(2)}
    RunStore(tmp_path, fingerprint={"seed": 0}).save_tensors("robotic parts/pretrain", state)
    loaded = RunStore(tmp_path, fingerprint={"seed": 0}).load_tensors("robotic parts/pretrain")
    assert set(loaded) == {"w", "b"} and torch.equal(loaded["w"], state["w"])
    assert RunStore(tmp_path, fingerprint={"seed": 1}).load_tensors("robotic parts/pretrain") is None
    assert RunStore(tmp_path, fingerprint={"seed": 0}).load_tensors("missing") is None
    (tmp_path / "robotic_parts_pretrain.pt").write_bytes(b"not a checkpoint")
    assert RunStore(tmp_path, fingerprint={"seed": 0}).load_tensors("robotic parts/pretrain") is None
    none = RunStore(None, fingerprint={})
    none.save_tensors("x", state)  # no directory: nothing kept
    assert none.load_tensors("x") is None


def test_clear_removes_the_run_files_and_the_folder(tmp_path):
    store = RunStore(tmp_path / "runs", fingerprint={})
    store.run("a", lambda: {})
    store.save_tensors("b", {"w": torch.ones(1)})
    store.clear()
    assert not (tmp_path / "runs").exists()
    RunStore(tmp_path / "never", fingerprint={}).clear()  # nothing to remove: no error


@pytest.mark.parametrize("kwargs, error, match", [
    ({"fingerprint": ["seed"]}, TypeError, "fingerprint: expected a mapping"),
    ({"fingerprint": {}, "time_budget_s": 0.0}, ValueError, "time_budget_s: expected a finite number > 0"),
    ({"fingerprint": {}, "time_budget_s": float("nan")}, ValueError, "time_budget_s"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        RunStore(None, **kwargs)


def test_bad_key():
    with pytest.raises(ValueError, match="key: expected a non-empty string"):
        RunStore(None, fingerprint={}).run("", lambda: {})


# --------------------------------------------------------------------------- run_reproduction and the CLI


@pytest.fixture
def counting_reproduction():
    """A registered test double that 'trains' three runs through its store."""
    trained: list[str] = []

    @reproduce.register("unit-test-store", paper="none", description="a test double", trains=True)
    def _run(preset, *, data=None, seed=0, epochs=None, store=None):
        store.add_to_fingerprint(settings={"epochs": epochs or 5})
        rows = []
        for name in ("a", "b", "c"):
            res = store.run(name, lambda name=name: trained.append(name) or {"score": float(len(name) + seed)})
            rows.append({"table": "T", "row": name, "column": "score", "ours": res["score"], "paper": None})
        return rows

    yield trained
    reproduce._REGISTRY.pop("unit-test-store", None)


@pytest.mark.filterwarnings("ignore:unit-test-store. the full preset:RuntimeWarning")
def test_time_budget_exit_then_the_same_command_continues(counting_reproduction, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reproduce.time, "monotonic", ticking(60.0))  # every run takes a minute
    argv = ["reproduce", "unit-test-store", "--preset", "full", "--out", str(tmp_path), "--time-budget", "2.5",
            "--epochs", "2"]
    assert cli.main(argv) == cli.EXIT_BUDGET
    assert "stopped before run 'b'" in capsys.readouterr().err
    assert counting_reproduction == ["a"] and not (tmp_path / "unit-test-store.json").exists()
    assert [p.name for p in (tmp_path / "runs" / "unit-test-store").iterdir()] == ["a.json"]
    monkeypatch.setattr(reproduce.time, "monotonic", ticking(60.0))
    assert cli.main(argv[:-4] + ["--epochs", "2"]) == 0  # no budget this time
    assert counting_reproduction == ["a", "b", "c"]
    record = json.loads((tmp_path / "unit-test-store.json").read_text())
    results.validate_results(record)
    assert record["epochs"] == 2 and [r["row"] for r in record["rows"]] == ["a", "b", "c"]
    assert not (tmp_path / "runs").joinpath("unit-test-store").exists()  # removed once the file is written


def test_changed_epochs_do_not_reuse_runs(counting_reproduction, tmp_path):
    runs = tmp_path / "runs"
    reproduce.run_reproduction("unit-test-store", preset="fast", out_dir=tmp_path, runs_dir=runs, epochs=1,
                               command="x")
    assert counting_reproduction == ["a", "b", "c"] and not runs.exists()
    store = RunStore(runs, fingerprint={"name": "unit-test-store", "preset": "fast", "seed": 0, "epochs": 1,
                                        "data": None, "settings": {"epochs": 1}})
    store.run("a", lambda: {"score": 99.0})  # a leftover run of epochs=1
    reproduce.run_reproduction("unit-test-store", preset="fast", out_dir=tmp_path, runs_dir=runs, epochs=3,
                               command="x")
    assert json.loads((tmp_path / "unit-test-store.json").read_text())["rows"][0]["ours"] == 1.0


def test_full_preset_without_cuda_warns(counting_reproduction, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(RuntimeWarning, match="no CUDA device is available.*--epochs shortens it"):
        reproduce.run_reproduction("unit-test-store", preset="full", out_dir=tmp_path, command="x")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fast preset says nothing
        reproduce.run_reproduction("unit-test-store", preset="fast", out_dir=tmp_path, command="x")


def test_fast_preset_keeps_no_runs_by_default(counting_reproduction, tmp_path):
    reproduce.run_reproduction("unit-test-store", preset="fast", out_dir=tmp_path, command="x")
    assert not (tmp_path / "runs").exists()
    assert "epochs" not in json.loads((tmp_path / "unit-test-store.json").read_text())


def test_epochs_and_budget_rejected_where_nothing_trains(tmp_path):
    with pytest.raises(ValueError, match="soft-dice-table1' trains no network"):
        reproduce.run_reproduction("soft-dice-table1", out_dir=tmp_path, epochs=3)
    assert cli.main(["reproduce", "soft-dice-table1", "--time-budget", "5", "--out", str(tmp_path)]) == 2


@pytest.mark.parametrize("epochs, error", [(0, ValueError), (2.5, TypeError)])
def test_bad_epochs(counting_reproduction, tmp_path, epochs, error):
    with pytest.raises(error, match="epochs: expected an integer >= 1"):
        reproduce.run_reproduction("unit-test-store", out_dir=tmp_path, epochs=epochs)


def test_every_training_reproduction_is_registered_as_one():
    known = reproduce.registry()
    assert {n for n, r in known.items() if r.trains} >= {"dml-qubiq", "sauna-fives", "margin-calibration"}
    assert not known["soft-dice-table1"].trains


def test_results_schema_epochs():
    record = {"name": "x", "preset": "full", "device": "cpu", "created": "2026-01-01T00:00:00+00:00",
              "command": "c", "rows": [], "epochs": 20}
    results.validate_results(record)
    for bad in (0, 2.0, True, "20"):
        with pytest.raises(ValueError, match="key 'epochs': expected an integer >= 1"):
            results.validate_results({**record, "epochs": bad})
    assert results.preset_label(record) == "full (shortened: 20 epochs)"
    assert results.preset_label({**record, "preset": "fast", "epochs": None}) == "fast"


# --------------------------------------------------------------------------- the three reproductions


def _interrupted_then_continued(tmp_path, run_once):
    """Run ``run_once(store)`` with a budget that stops it after the first run, then again with a
    new store over the same folder; return (rows of the continued run, keys it loaded, computed)."""
    store = RunStore(tmp_path, fingerprint={"t": 1}, time_budget_s=25.0, clock=ticking(10.0))
    with pytest.raises(BudgetExhausted):
        run_once(store)
    assert len(store.computed) == 1
    again = RunStore(tmp_path, fingerprint={"t": 1})
    return run_once(again), again.loaded, again.computed


def _same_rows(a, b, skip=()):
    key = lambda r: (r["table"], r["row"], r["column"])  # noqa: E731
    assert sorted(map(key, a)) == sorted(map(key, b))
    ours_b = {key(r): r["ours"] for r in b}
    for r in a:
        if r["column"] not in skip:
            assert r["ours"] == pytest.approx(ours_b[key(r)], rel=1e-12, abs=1e-12), key(r)


def test_sauna_grid_continues_to_the_uninterrupted_rows(tmp_path):
    methods = ["hard", "sauna"]
    plain = sf.run_grid("fast", methods=methods, settings=SAUNA_TINY, progress=False)
    rows, loaded, computed = _interrupted_then_continued(
        tmp_path,
        lambda store: sf.run_grid("fast", methods=methods, settings=SAUNA_TINY, progress=False, store=store)["rows"])
    assert loaded == ["hard"] and computed == ["sauna"]
    _same_rows(rows, plain["rows"], skip=("Imgs/s",))  # throughput is a timing


def test_dml_grid_continues_to_the_uninterrupted_rows(tmp_path):
    plain, _ = dq.synthetic_grid(DML_TINY, progress=False)
    cut, loaded, computed = _interrupted_then_continued(
        tmp_path, lambda store: dq.synthetic_grid(DML_TINY, progress=False, store=store)[0])
    assert len(loaded) == 1 and len(loaded) + len(computed) == len(plain)
    assert all("prob" not in g for g in cut)
    table = "Table 2 (synthetic stand-in; paper: QUBIQ All)"
    _same_rows(dq.grid_rows(cut, table=table, dataset=None, paper_row="All"),
               dq.grid_rows(plain, table=table, dataset=None, paper_row="All"))


def test_margin_task_continues_without_pretraining_again(tmp_path, monkeypatch):
    settings = ((1.0, 1.0), (10.0, 1.0))
    plain = mc.run_task(mc.synthetic_splits(MARGIN_TINY), 5, cfg=MARGIN_TINY, settings=settings)
    trained = []
    real_train = mc._train
    monkeypatch.setattr(mc, "_train", lambda *a, **kw: trained.append(kw["name"]) or real_train(*a, **kw))
    res, loaded, computed = _interrupted_then_continued(
        tmp_path,
        lambda store: mc.run_task(mc.synthetic_splits(MARGIN_TINY), 5, cfg=MARGIN_TINY, settings=settings, store=store))
    assert trained.count("pretrain-ce") == 1  # the continued run loaded the pre-trained weights
    # the first stored run is the scoring of the pre-trained model itself (no fine-tuning)
    assert loaded == [f"margin-calibration/{mc.PRETRAINED}"] and len(computed) == 5
    assert res["selected"] == plain["selected"]
    _same_rows(mc.synthetic_rows(res), mc.synthetic_rows(plain))


def test_full_presets_benchmark_counts_the_presets(capsys):
    """``benchmarks/full_presets.py`` (no timing: FLOPs counted on the meta device)."""
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "full_presets.py"
    module = runpy.run_path(str(script), run_name="full_presets")
    sauna = next(p for p in module["presets"]() if p["name"] == "sauna-fives")
    assert (sauna["width"], sauna["hw"], sauna["epochs"], sauna["runs"]) == (64, (512, 512), 300, 9)
    assert 1.0e12 < module["flops_per_image"](sauna) < 1.3e12  # 1155 GFLOP: the classic U-Net, fwd + bwd
    module["main"](["--tflops", "100", "--budget", "20"])
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.split()[0] in ("sauna-fives", "dml-qubiq", "margin-calibration")]
    assert len(rows) == 3 and "of 300" in rows[0]


def test_margin_runs_from_other_pretrained_weights_are_fine_tuned_again(tmp_path):
    settings = ((1.0, 1.0), (10.0, 1.0))
    splits = mc.synthetic_splits(MARGIN_TINY)
    plain = mc.run_task(splits, 5, cfg=MARGIN_TINY, settings=settings)
    store = RunStore(tmp_path, fingerprint={"t": 1}, time_budget_s=25.0, clock=ticking(10.0))
    with pytest.raises(BudgetExhausted):
        mc.run_task(splits, 5, cfg=MARGIN_TINY, settings=settings, store=store)
    # a fresh machine: the pre-trained weights are gone, so pre-training runs again; on the CPU it
    # is deterministic, so the stored run (same digest) is kept
    (tmp_path / "margin-calibration_pretrain.pt").unlink()
    again = RunStore(tmp_path, fingerprint={"t": 1})
    res = mc.run_task(splits, 5, cfg=MARGIN_TINY, settings=settings, store=again)
    assert again.loaded == [f"margin-calibration/{mc.PRETRAINED}"]
    digests = {json.loads(f.read_text())["result"]["base"] for f in tmp_path.glob("*.json")}
    assert len(digests) == 1  # every run started from the same pre-trained weights
    _same_rows(mc.synthetic_rows(res), mc.synthetic_rows(plain))
    # a stored run that started from other weights is fine-tuned again from the ones in use
    path = tmp_path / "margin-calibration_Cross-entropy.json"
    record = json.loads(path.read_text())
    record["result"]["base"] = "0" * 64
    path.write_text(json.dumps(record))
    for other in tmp_path.glob("*.json"):
        if other != path:
            other.unlink()  # keep only the tampered run, so that the check sees two digests
    third = RunStore(tmp_path, fingerprint={"t": 1})
    res = mc.run_task(splits, 5, cfg=MARGIN_TINY, settings=settings, store=third)
    assert third.computed.count("margin-calibration/Cross-entropy") == 1
    assert len({json.loads(f.read_text())["result"]["base"] for f in tmp_path.glob("*.json")}) == 1
    assert json.loads(path.read_text())["result"]["base"] in digests
    _same_rows(mc.synthetic_rows(res), mc.synthetic_rows(plain))


def test_weights_digest_names_the_weights():
    torch.manual_seed(0)
    a = mc.UNet(3, 5, width=2, depth=1)
    b = mc.UNet(3, 5, width=2, depth=1)
    b.load_state_dict(a.state_dict())
    assert mc.weights_digest(a) == mc.weights_digest(b) and len(mc.weights_digest(a)) == 64
    with torch.no_grad():
        next(b.parameters()).view(-1)[0] += 1e-6
    assert mc.weights_digest(a) != mc.weights_digest(b)


def test_describe_device_names_the_cpu_kernels_and_threads(monkeypatch):
    # Two CPU runs agree bit for bit only on the same kernels and thread count, so the margin
    # chapter compares a committed run exactly only when this string matches.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    text = reproduce.describe_device()
    assert text.startswith("cpu (")
    assert f", {torch.backends.cpu.get_cpu_capability()}, " in text
    assert f"{torch.get_num_threads()} threads" in text and torch.__version__ in text
