"""Time of the synthetic part (S) of the soft-Dice Table 1 run, against its 3-minute budget.

The full run is 9 noise levels x 1000 maps of ``200 x 200`` x 200 iterates of gradient descent on
soft-Dice (:func:`softseg.experiments.soft_dice_table1.soft_dice_gradient_descent`), plus
generating the maps (:func:`softseg.data.blobs.synthetic_marginals`). By default this script runs
``--samples 100`` maps per noise level (a tenth) and extrapolates linearly to 1000 (the work is
the same for every map: 199 steps over 40 000 voxels); ``--samples 1000`` times the real thing.
It prints the time of each part, the throughput in voxel-steps per second, the (extrapolated)
full time and the verdict against the budget of 180 s on the 2-core CPU the book is built on,
with the machine's load average (other processes on 2 cores slow torch's two threads down a
lot). It never asserts. Run ``python benchmarks/soft_dice_gd.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from softseg.data.blobs import synthetic_marginals  # noqa: E402
from softseg.experiments.soft_dice_table1 import (  # noqa: E402
    SYNTHETIC_RHOS,
    TABLE1_ITERATIONS,
    soft_dice_gradient_descent,
)

BUDGET_S = 180.0
FULL_SAMPLES = 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100,
                        help=f"maps per noise level (default 100, extrapolated to {FULL_SAMPLES})")
    parser.add_argument("--size", type=int, default=200, help="maps are size x size (default 200)")
    parser.add_argument("--rhos", type=int, default=len(SYNTHETIC_RHOS), help="noise levels to run (default 9)")
    parser.add_argument("--chunk", type=int, default=None, help="maps per chunk (default: the module's)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = max(TABLE1_ITERATIONS) - 1
    voxels = args.size * args.size
    print(f"soft-Dice Table 1 (S): {args.rhos} rho x {args.samples} maps x {args.size}x{args.size} x "
          f"{max(TABLE1_ITERATIONS)} iterates, {args.device}, {torch.get_num_threads()} threads, "
          f"{platform.machine()}, torch {torch.__version__}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average before: {load:.2f} (on {os.cpu_count()} cores)")
    gen_s = gd_s = 0.0
    for k, rho in enumerate(SYNTHETIC_RHOS[: args.rhos]):
        t0 = time.perf_counter()
        maps = synthetic_marginals(rho, args.samples, size=args.size, seed=args.seed * 1000 + k).to(args.device)
        t1 = time.perf_counter()
        result = soft_dice_gradient_descent(maps, seed=args.seed * 1000 + 100 + k, chunk=args.chunk)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        gen_s += t1 - t0
        gd_s += t2 - t1
        print(f"  rho={rho:.2f}: maps {t1 - t0:6.2f} s, descent {t2 - t1:6.2f} s, "
              f"e0 l=200 {float(result.e0[:, -1].mean()):.4f}")
    done = args.rhos * args.samples
    rate = done * voxels * steps / gd_s
    scale = (len(SYNTHETIC_RHOS) * FULL_SAMPLES) / done
    full = (gen_s + gd_s) * scale
    print(f"measured: maps {gen_s:.1f} s + descent {gd_s:.1f} s = {gen_s + gd_s:.1f} s for {done} maps "
          f"({rate / 1e9:.2f} G voxel-steps/s, {1e9 / rate:.2f} ns per voxel-step)")
    kind = "measured" if scale == 1 else f"extrapolated x{scale:g}"
    verdict = "within" if full <= BUDGET_S else "OVER"
    print(f"full 9 x {FULL_SAMPLES} x 200 run ({kind}): {full:.0f} s — {verdict} the {BUDGET_S:.0f} s budget")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average after: {load:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
