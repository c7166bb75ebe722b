"""Time of :func:`softseg.theory.soft_dice_optimum` on a batch of maps, against its 1 s budget.

For a batch of ``1000`` maps of ``200 x 200`` float32 (default; the size of the soft-Dice paper's
synthetic experiment (S)) the optimal soft-Dice segmentation of every map is computed with
``soft_dice_optimum(m, batch_dims=1)``, and compared with two baselines on the same batch:

* ``torch.sort`` of every map alone (the sort that the straightforward method starts with), and
* the straightforward vectorized eq. (78): ``torch.sort``, cumulative sums of the sorted values,
  the ratio ``r_k`` for every ``k``, its maximum and the threshold ``m >= max r_k``.

Two kinds of maps are timed: ``paper`` — smooth blurred disks of radius about 0.2 with random
centres, radii and blur (like experiment (S), Sect. 6.2) — and ``uniform`` — ``U(0, 1)**3``
noise, where about a fifth of the pixels lie near the optimal threshold. The methods run
round-robin (one repeat of each in turn, so that background load hits all alike) and the
median and minimum of ``--repeats`` runs after ``--warmup`` runs are printed, with the ratio
of each baseline to ``soft_dice_optimum``. The budget (1 s for the default batch on the 2-core
CPU the book is built on) is printed with the verdict; the script never asserts.
Run ``python benchmarks/theory.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from softseg.theory import soft_dice_optimum  # noqa: E402

BUDGET_S = 1.0


def paper_like_maps(batch: int, size: int, seed: int) -> torch.Tensor:
    """Blurred disks: m = Phi((r - |x - c|) / rho) with random c, r ~ 0.2 and rho in [0.01, 0.09]."""
    g = torch.Generator().manual_seed(seed)
    axis = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    centre = 0.5 + 0.1 * (torch.rand(batch, 2, generator=g) - 0.5)
    radius = 0.2 * (1 + 0.2 * (torch.rand(batch, generator=g) - 0.5))
    rho = 0.01 + 0.08 * torch.rand(batch, generator=g)
    dist = torch.sqrt((xx - centre[:, 0, None, None]) ** 2 + (yy - centre[:, 1, None, None]) ** 2)
    z = (radius[:, None, None] - dist) / rho[:, None, None]
    return 0.5 * torch.erfc(-z / math.sqrt(2))  # the normal CDF: a disk blurred along its normal


def uniform_maps(batch: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, size, size, generator=g) ** 3


def torch_sort_only(m: torch.Tensor) -> torch.Tensor:
    return torch.sort(m.reshape(m.shape[0], -1), dim=1, descending=True).values


def straightforward_eq78(m: torch.Tensor) -> torch.Tensor:
    flat = m.reshape(m.shape[0], -1)
    s = torch.sort(flat, dim=1, descending=True).values
    k = torch.arange(1, s.shape[1] + 1, dtype=s.dtype, device=s.device)
    r = torch.cumsum(s, 1) / (s.sum(1, keepdim=True) + k)
    return (flat >= r.max(1, keepdim=True).values).to(m.dtype).reshape(m.shape)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=1000, help="number of maps (default 1000)")
    parser.add_argument("--size", type=int, default=200, help="maps are size x size (default 200)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per method (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--kinds", default="paper,uniform", help="comma-separated: paper, uniform")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-baselines", action="store_true", help="time soft_dice_optimum only")
    args = parser.parse_args(argv)

    print(f"soft_dice_optimum: batch {args.batch} x {args.size} x {args.size} float32 on {args.device}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}")
    print(f"median / min of {args.repeats} runs after {args.warmup} warm-up; budget {BUDGET_S:g} s "
          f"(for the default batch on the book's 2-core CPU)")
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    for kind in args.kinds.split(","):
        make = {"paper": paper_like_maps, "uniform": uniform_maps}[kind]
        m = make(args.batch, args.size, args.seed).to(args.device)
        methods = {"soft_dice_optimum": lambda m=m: soft_dice_optimum(m, batch_dims=1)}
        if not args.no_baselines:
            methods["torch.sort only"] = lambda m=m: torch_sort_only(m)
            methods["straightforward eq. (78)"] = lambda m=m: straightforward_eq78(m)
        times: dict[str, list[float]] = {name: [] for name in methods}
        for rep in range(args.warmup + args.repeats):
            for name, fn in methods.items():
                sync()
                t0 = time.perf_counter()
                fn()
                sync()
                if rep >= args.warmup:
                    times[name].append(time.perf_counter() - t0)
        # same answer as the straightforward method (up to pixels within rounding of t*)
        if not args.no_baselines:
            ours = soft_dice_optimum(m, batch_dims=1).segmentation
            differ = float((ours != straightforward_eq78(m)).float().mean())
        ref = statistics.median(times["soft_dice_optimum"])
        print(f"\n[{kind} maps]")
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"  {name:26s} median {med:6.3f} s   min {min(ts):6.3f} s   ratio to ours {med / ref:5.2f}")
        verdict = "within" if ref < BUDGET_S else "OVER"
        print(f"  soft_dice_optimum: {verdict} the {BUDGET_S:g} s budget (median {ref:.3f} s)")
        if not args.no_baselines:
            print(f"  fraction of pixels where it differs from the straightforward method: {differ:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
