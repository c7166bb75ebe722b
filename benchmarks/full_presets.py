"""What the ``full`` presets of the training reproductions cost, and how many epochs fit a budget.

For each training reproduction (``sauna-fives``, ``dml-qubiq``, ``margin-calibration``, on their
synthetic data) the script prints, from the preset's own settings:

* the U-Net of the preset and the floating-point operations of one training image (forward +
  backward, counted by :class:`torch.utils.flop_counter.FlopCounterMode` at the preset's size);
* the training images the whole reproduction processes (training-set size × epochs × runs);
* the hours it takes at a sustained rate of ``--tflops`` TFLOP/s (default: measured here with
  ``--measure``, else 100, a guess for bfloat16 U-Net training on one H100), and the number of
  epochs that fit in ``--budget`` minutes of device time.

Why it exists: a GPU is lent to a session for 30 minutes (10 per command), and the papers' own
schedules — SAUNA: 9 networks × 300 epochs of 600 images of 512 × 512 — need hours. The printed
``--epochs`` is what ``python -m softseg reproduce NAME --preset full --epochs E --time-budget 9``
can finish within the budget, one 10-minute command after another (see ``book/running.md``).

``--measure`` times a few training steps of each preset's model (bfloat16 autocast and
channels-last on CUDA, as :mod:`softseg.train`) and uses the achieved rate instead of the guess.
Validation, data loading and evaluation are not counted: the estimates are lower bounds.

    python benchmarks/full_presets.py                      # counts only, 100 TFLOP/s guessed
    python benchmarks/full_presets.py --measure --budget 20  # on the GPU machine
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark scripts

from softseg.experiments import dml_qubiq, margin_calibration, sauna_fives  # noqa: E402
from softseg.models import UNet  # noqa: E402
from train import timed  # noqa: E402  (benchmarks/train.py: median seconds per call over timed blocks)

GUESSED_TFLOPS = 100.0


def presets() -> list[dict]:
    """The full presets' model, input size, batch, training images per epoch, runs and epochs."""
    s = sauna_fives.preset_settings("full")
    n_sauna = len(sauna_fives.TABLE1_METHODS + sauna_fives.ABLATIONS)
    d = dml_qubiq.PRESETS["full"]
    n_dml = len(d["labels"]) * len(dml_qubiq.LOSSES)
    m = margin_calibration.PRESETS["full"]
    n_margin = 2 + len(margin_calibration.TABLE1_SETTINGS) + 1  # CE, no offsets, each (tau, nu), swapped
    return [
        {"name": "sauna-fives", "in": 3, "out": 1, "width": s["width"], "depth": s["depth"], "hw": (s["size"],) * 2,
         "batch": s["batch_size"], "n_train": s["n_train"], "runs": n_sauna, "epochs": s["epochs"],
         "epoch_units": n_sauna, "what": f"{n_sauna} methods"},
        {"name": "dml-qubiq", "in": 1, "out": 1, "width": d["width"], "depth": d["depth"], "hw": (d["size"],) * 2,
         "batch": d["batch_size"], "n_train": d["n_train"], "runs": n_dml, "epochs": d["epochs"],
         "epoch_units": n_dml, "what": f"{len(d['labels'])} label kinds x {len(dml_qubiq.LOSSES)} losses"},
        # pre-training once, then every run fine-tunes: epochs count (1 + runs) times
        {"name": "margin-calibration", "in": 3, "out": 5, "width": m["width"], "depth": m["depth"],
         "hw": tuple(m["size"]), "batch": m["batch_size"], "n_train": m["n_train"], "runs": n_margin,
         "epochs": m["finetune_epochs"], "epoch_units": 1 + n_margin,
         "what": f"CE pre-training + {n_margin} fine-tunings"},
    ]


def flops_per_image(p: dict) -> float:
    """Forward + backward FLOPs of one training image (counted on the meta device: no compute)."""
    model = UNet(p["in"], p["out"], width=p["width"], depth=p["depth"]).to("meta")
    x = torch.empty(1, p["in"], *p["hw"], device="meta")
    with FlopCounterMode(display=False) as counter:
        model(x).float().sum().backward()
    return float(counter.get_total_flops())


def measure_tflops(p: dict, device: torch.device, steps: int) -> float:
    """Achieved TFLOP/s of ``steps`` Adam training steps (median of 3 blocks) at the preset's batch."""
    model = UNet(p["in"], p["out"], width=p["width"], depth=p["depth"]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(p["batch"], p["in"], *p["hw"], device=device)
    y = torch.rand(p["batch"], p["out"], *p["hw"], device=device)
    cuda = device.type == "cuda"
    if cuda:
        model, x = model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            out = model(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    seconds = timed(step, device, warmup=1, iters=steps, repeats=3)  # the warm-up: cuDNN's algorithm search
    return flops_per_image(p) * p["batch"] / seconds / 1e12


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tflops", type=float, default=None, help=f"sustained TFLOP/s (default: {GUESSED_TFLOPS:g}, "
                                                               "or measured with --measure)")
    ap.add_argument("--budget", type=float, default=20.0, help="minutes of device time for one reproduction")
    ap.add_argument("--measure", action="store_true", help="time a few training steps of each model here")
    ap.add_argument("--steps", type=int, default=None, help="steps per timed block (default: 10 CUDA, 1 CPU)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = ap.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    steps = args.steps or (10 if device.type == "cuda" else 1)
    print(f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    print(f"{'reproduction':20s} {'U-Net':>14s} {'input':>9s} {'GFLOP/img':>10s} {'images':>11s} "
          f"{'TFLOP/s':>8s} {'hours':>7s} {'epochs in ' + format(args.budget, 'g') + ' min':>16s}  runs")
    for p in presets():
        per_image = flops_per_image(p)
        rate = args.tflops or (measure_tflops(p, device, steps) if args.measure else GUESSED_TFLOPS)
        images = p["n_train"] * p["epochs"] * p["epoch_units"]
        hours = images * per_image / (rate * 1e12) / 3600
        fit = int(args.budget * 60 * rate * 1e12 / (per_image * p["n_train"] * p["epoch_units"]))
        print(f"{p['name']:20s} {'w' + str(p['width']) + ' d' + str(p['depth']):>14s} "
              f"{'x'.join(map(str, p['hw'])):>9s} {per_image / 1e9:10.1f} {images:11,d} {rate:8.1f} "
              f"{hours:7.2f} {str(min(fit, p['epochs'])) + ' of ' + str(p['epochs']):>16s}  {p['what']}")
    if not args.measure and args.tflops is None:
        print(f"(rate guessed at {GUESSED_TFLOPS:g} TFLOP/s; --measure on the GPU machine replaces the guess)")


if __name__ == "__main__":
    main()
