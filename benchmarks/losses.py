"""Forward + backward time of every loss in :mod:`softseg.losses`, as ratios to two baselines.

For a batch ``8 x 2 x 512 x 512`` (default) of float32 on the CPU, each public ``*_loss``
function (and those named in ``ALSO_LOSSES``) of ``softseg.losses.{dice, sauna, margin}`` — whichever of those modules exist when
this runs — is timed (forward and ``.backward()`` with respect to the prediction) and divided by

* ``torch.nn.functional.binary_cross_entropy`` on the same probabilities and soft target, and
* MONAI's ``DiceLoss(soft_label=True)`` (the same formula as DML1), when ``monai`` is importable.
  MONAI is not a softseg dependency; install it somewhere throwaway, e.g.::

      pip install --target /tmp/monai_pkg --no-deps monai
      PYTHONPATH=/tmp/monai_pkg python benchmarks/losses.py

The losses are run round-robin (one repeat of each in turn, so that background load hits all
of them alike) and the median of ``--repeats`` runs after ``--warmup`` runs is reported. The
script prints and never asserts. Run ``python benchmarks/losses.py --help`` for the options.

What the argument checks cost: every loss is also timed with the value-range check
(:func:`softseg._checks.check_range`, one ``aminmax`` pass and one device-to-host copy per checked
tensor) replaced by a no-op — the ``x unchecked`` column is checked / unchecked time. With
``--device cuda`` the ``syncs`` column counts the host synchronisations of one forward + backward
(``torch.cuda.set_sync_debug_mode("warn")``): the price of raising a clear ``ValueError`` instead
of training on NaN.

Each loss is called with the first input recipe it accepts (probabilities in [0, 1] and a soft
target; logits and a soft one-hot target; values in [-1, 1]; logits and integer labels);
required extra arguments are filled from ``EXTRA_ARGS``; a loss that accepts none is listed as
skipped with the reason.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

SUBMODULES = ("dice", "sauna", "margin")
#: public loss functions whose names do not end in "_loss"
ALSO_LOSSES = {"generalized_jml"}
#: values for required arguments beyond (prediction, target), by parameter name
EXTRA_ARGS = {"rho": 0.5, "margin": 0.5, "gamma": 2.0, "alpha": 0.5, "beta": 0.5}
MONAI_HINT = ("monai not importable: MONAI's DiceLoss(soft_label=True) column left out. It is not a "
              "softseg dependency; to measure it: pip install --target /tmp/monai_pkg --no-deps monai "
              "&& PYTHONPATH=/tmp/monai_pkg python benchmarks/losses.py")


def recipes(shape: tuple[int, ...], seed: int, device: str = "cpu") -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Input pairs (prediction, target) tried in this order; predictions get requires_grad."""
    g = torch.Generator().manual_seed(seed)
    n, c, *spatial = shape
    prob = torch.rand(shape, generator=g)
    soft = torch.rand(shape, generator=g)
    logits = torch.randn(shape, generator=g)
    onehot_soft = torch.softmax(2 * torch.randn(shape, generator=g), dim=1)
    labels = torch.randint(0, c, (n, *spatial), generator=g)
    pairs = {
        "probabilities, soft target": (prob, soft),
        "logits, soft one-hot target": (logits, onehot_soft),
        "values in [-1, 1]": (2 * prob - 1, 2 * soft - 1),
        "logits, integer labels": (logits, labels),
    }
    return {k: (x.to(device), y.to(device)) for k, (x, y) in pairs.items()}


@contextlib.contextmanager
def range_checks_off():
    """Replace ``check_range`` by a no-op wherever the loss modules call it."""
    modules = [importlib.import_module("softseg._checks")]
    for sub in SUBMODULES:
        with contextlib.suppress(Exception):
            modules.append(importlib.import_module(f"softseg.losses.{sub}"))
    saved = [(m, m.check_range) for m in modules if hasattr(m, "check_range")]
    try:
        for m, _ in saved:
            m.check_range = lambda *args, **kwargs: None
        yield
    finally:
        for m, fn in saved:
            m.check_range = fn


def count_syncs(call) -> int:
    """Host synchronisations of one ``call()`` on CUDA (warnings of the sync debug mode)."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            call()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def discover_losses() -> tuple[dict[str, object], list[str]]:
    """Public ``*_loss`` functions (and ``ALSO_LOSSES``) of the submodules that import."""
    found, notes = {}, []
    for sub in SUBMODULES:
        try:
            module = importlib.import_module(f"softseg.losses.{sub}")
        except Exception as err:  # a module being written now may not import yet
            notes.append(f"softseg.losses.{sub}: not benchmarked ({type(err).__name__}: {err})")
            continue
        for name in getattr(module, "__all__", []):
            fn = getattr(module, name, None)
            if inspect.isfunction(fn) and (name.endswith("_loss") or name in ALSO_LOSSES):
                found[f"{sub}.{name}"] = fn
    return found, notes


def bind(fn) -> tuple[dict, str | None]:
    """Keyword values for required parameters after the first two, or the missing name."""
    params = list(inspect.signature(fn).parameters.values())[2:]
    extra = {}
    for p in params:
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            if p.name not in EXTRA_ARGS:
                return {}, p.name
            extra[p.name] = EXTRA_ARGS[p.name]
    return extra, None


def make_call(fn, inputs):
    """A zero-argument forward+backward closure on the first recipe ``fn`` accepts."""
    extra, missing = bind(fn)
    if missing:
        return None, f"skipped: needs argument {missing!r} (add it to EXTRA_ARGS)"
    errors = []
    for recipe, (x, y) in inputs.items():
        x = x.detach().clone().requires_grad_(True)
        try:
            fn(x, y, **extra).backward()
        except Exception as err:
            errors.append(f"{type(err).__name__}")
            continue

        def call(fn=fn, x=x, y=y, extra=extra):
            x.grad = None
            fn(x, y, **extra).backward()

        return call, recipe
    return None, "skipped: no input recipe accepted (" + ", ".join(errors) + ")"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=int, nargs="+", default=[8, 2, 512, 512], help="N C *spatial")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per loss (median)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per loss first")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch.set_num_threads (default: the CPUs this process may use)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    shape = tuple(args.shape)
    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    inputs = recipes(shape, args.seed, args.device)
    prob, soft = inputs["probabilities, soft target"]

    calls, notes = {}, []
    x_ref = prob.clone().requires_grad_(True)

    def bce():
        x_ref.grad = None
        F.binary_cross_entropy(x_ref, soft).backward()

    calls["baseline: F.binary_cross_entropy"] = (bce, "probabilities, soft target")
    monai_loss = None
    try:
        from monai.losses import DiceLoss

        monai_loss = DiceLoss(soft_label=True)

        def monai():
            x_ref.grad = None
            monai_loss(x_ref, soft).backward()

        calls["baseline: monai DiceLoss(soft_label=True)"] = (monai, "probabilities, soft target")
    except ImportError:
        notes.append(MONAI_HINT)

    losses, more = discover_losses()
    notes += more
    for name, fn in losses.items():
        call, info = make_call(fn, inputs)
        if call is None:
            notes.append(f"{name}: {info}")
        else:
            calls[name] = (call, info)

    def timed(call) -> float:
        sync()
        t0 = time.perf_counter()
        call()
        sync()
        return time.perf_counter() - t0

    times = {name: [] for name in calls}
    unchecked = {name: [] for name in calls}
    for r in range(args.warmup + args.repeats):
        for name, (call, _) in calls.items():
            t = timed(call)
            with range_checks_off():
                t_off = timed(call)
            if r >= args.warmup:
                times[name].append(t)
                unchecked[name].append(t_off)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    med_off = {name: statistics.median(ts) for name, ts in unchecked.items()}
    syncs = {name: count_syncs(call) for name, (call, _) in calls.items()} if cuda else {}
    t_bce = med["baseline: F.binary_cross_entropy"]
    t_monai = med.get("baseline: monai DiceLoss(soft_label=True)")

    where = f"CUDA ({torch.cuda.get_device_name()})" if cuda else "CPU"
    print(f"softseg loss benchmark: forward + backward, shape {shape}, float32, {where}")
    print(f"torch {torch.__version__}, {args.threads} thread(s), {platform.processor() or platform.machine()}, "
          f"median of {args.repeats} after {args.warmup} warm-up, load average {os.getloadavg()[0]:.2f}")
    head = (f"{'loss':48s} {'median ms':>10s} {'x BCE':>7s} {'x MONAI':>8s} {'x unchecked':>12s}"
            f"{' syncs' if cuda else ''}  input")
    print(head)
    print("-" * len(head))
    for name, (_, recipe) in calls.items():
        ratio_m = f"{med[name] / t_monai:8.2f}" if t_monai else f"{'-':>8s}"
        n_sync = f" {syncs[name]:5d}" if cuda else ""
        print(f"{name:48s} {med[name] * 1e3:10.2f} {med[name] / t_bce:7.2f} {ratio_m} "
              f"{med[name] / med_off[name]:12.2f}{n_sync}  {recipe}")
    if monai_loss is not None and "dice.dice_semimetric_loss" in losses:
        dml = losses["dice.dice_semimetric_loss"]
        with torch.no_grad():
            ours = dml(prob, soft, 1, 1e-5).item()
            theirs = monai_loss(prob, soft).item()
        print(f"check: DML1 (eps=1e-5) = {ours:.7f}, MONAI DiceLoss(soft_label=True) = {theirs:.7f}")
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1) - 0.5:
        notes.append(f"the machine is busy (load average {load:.2f} on {os.cpu_count()} CPUs): with several "
                     "threads each op can stall on a descheduled thread, so ratios then track op counts; "
                     "compare with --threads 1")
    for note in notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
