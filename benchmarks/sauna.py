"""Seconds per 2048 x 2048 synthetic vessel mask for :func:`softseg.labels.sauna_transform`.

A branching tree of straight segments (widths 2-15 px by default, thinning at each branching,
six trunks around the centre, about 7 % foreground) is drawn with NumPy; the transform is
timed for both windows (``"paper"`` and ``"half"``) and, for reference, the building blocks the
plain scipy route would need (two exact EDTs ``scipy.ndimage.distance_transform_edt`` and two
``scipy.ndimage.maximum_filter`` of side ``2 floor(m) + 1``). Runs are round-robin (one repeat
of each in turn, so background load hits all alike); the median and minimum wall time and the
median CPU time of the process (less sensitive to other jobs on a shared machine) over
``--repeats`` runs after ``--warmup`` runs are printed. The budget in the brief is 0.25 s per
mask on a 2-core machine. Prints and never asserts; ``--help`` lists the options.
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from softseg.labels import sauna_transform  # noqa: E402


def vessel_tree(size: int = 2048, widths: tuple[float, float] = (2.0, 15.0), depth: int = 9,
                trunks: int = 6, seed: int = 0) -> np.ndarray:
    """A binary ``(size, size)`` mask of a branching tree of thick line segments.

    ``trunks`` trunks of width ``widths[1]`` leave a small ring around the centre; every segment ends in two
    children turned by 0.3-0.8 rad and 60-85 % as wide (never below ``widths[0]``), for
    ``depth`` generations; a segment of width ``w`` is ``(0.1-0.25) * size * (w / widths[1])^(1/4)``
    long. Each segment is the set of pixels within ``width / 2`` of it. The defaults give about
    7 % foreground and m = 8-9.5 on 2048 x 2048, close to fundus vessel masks.
    """
    rng = np.random.default_rng(seed)
    segments = []
    stack = []
    for k in range(trunks):                  # trunks start on a small ring: no blob at the centre
        angle = 2 * math.pi * k / trunks + rng.uniform(-0.3, 0.3)
        x0, y0 = size / 2 + 3 * widths[1] * math.cos(angle), size / 2 + 3 * widths[1] * math.sin(angle)
        stack.append((x0, y0, angle, widths[1], depth))
    while stack:
        x, y, angle, width, left = stack.pop()
        length = rng.uniform(0.1, 0.25) * size * (width / widths[1]) ** 0.25
        x2, y2 = x + length * math.cos(angle), y + length * math.sin(angle)
        segments.append((x, y, x2, y2, width))
        if left > 1:
            for turn in (-1, 1):
                child = max(width * rng.uniform(0.6, 0.85), widths[0])
                stack.append((x2, y2, angle + turn * rng.uniform(0.3, 0.8), child, left - 1))
    mask = np.zeros((size, size), dtype=bool)
    for x1, y1, x2, y2, width in segments:   # one box per segment (drawing, not the timed part)
        r = width / 2
        c0, c1 = max(int(min(x1, x2) - r - 1), 0), min(int(max(x1, x2) + r + 2), size)
        r0, r1 = max(int(min(y1, y2) - r - 1), 0), min(int(max(y1, y2) + r + 2), size)
        if c0 >= c1 or r0 >= r1:
            continue
        yy, xx = np.mgrid[r0:r1, c0:c1]
        dx, dy = x2 - x1, y2 - y1
        t = np.clip(((xx - x1) * dx + (yy - y1) * dy) / (dx * dx + dy * dy + 1e-12), 0.0, 1.0)
        mask[r0:r1, c0:c1] |= (xx - x1 - t * dx) ** 2 + (yy - y1 - t * dy) ** 2 <= r * r
    return mask


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2048, help="mask side in pixels")
    parser.add_argument("--widths", type=float, nargs=2, default=[2.0, 15.0], help="min and max vessel width")
    parser.add_argument("--depth", type=int, default=9, help="generations of branching")
    parser.add_argument("--trunks", type=int, default=6, help="trunks leaving the centre")
    parser.add_argument("--masks", type=int, default=3, help="different random trees (seeds seed, seed+1, ...)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per case and mask (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per case first")
    parser.add_argument("--no-scipy", action="store_true", help="skip the scipy reference timings")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from scipy import ndimage

    masks = [vessel_tree(args.size, tuple(args.widths), args.depth, args.trunks, seed=args.seed + k)
             for k in range(args.masks)]
    print(f"python {platform.python_version()}, numpy {np.__version__}, {len(os.sched_getaffinity(0))} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    for k, mask in enumerate(masks):
        d = ndimage.distance_transform_edt(mask)
        print(f"mask {k}: {args.size}x{args.size}, widths {args.widths[0]:g}-{args.widths[1]:g} px, "
              f"foreground {mask.mean():.1%}, m = {d.max():.2f}")

    def scipy_route(mask):
        d_fg = ndimage.distance_transform_edt(mask)
        d_bg = ndimage.distance_transform_edt(~mask)
        side = 2 * int(d_fg.max()) + 1
        ndimage.maximum_filter(d_fg.astype(np.float32), size=side)
        ndimage.maximum_filter(d_bg.astype(np.float32), size=side)

    cases = {
        'sauna_transform(window="paper")': lambda m: sauna_transform(m, window="paper"),
        'sauna_transform(window="half")': lambda m: sauna_transform(m, window="half"),
    }
    if not args.no_scipy:
        cases["scipy: 2 x distance_transform_edt + 2 x maximum_filter (reference)"] = scipy_route
    times: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for mask in masks:
        for _ in range(args.warmup):
            for fn in cases.values():
                fn(mask)
        for _ in range(args.repeats):
            for name, fn in cases.items():
                t0, c0 = time.perf_counter(), time.process_time()
                fn(mask)
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    print(f"\nseconds per mask ({args.masks} masks x {args.repeats} runs; budget 0.25 s):")
    for name, ts in times.items():
        print(f"  {name:68s} median {statistics.median(ts):.3f}  min {min(ts):.3f}  "
              f"cpu median {statistics.median(cpu[name]):.3f}")
    print(f"load average at the end {os.getloadavg()[0]:.2f} (other jobs on the machine inflate wall times)")


if __name__ == "__main__":
    main()
