"""Time refinement of long records (issue: 1e6 steps < 1 s, 1e7 steps < 10 s, memory linear in T).

Run: .venv/bin/python perf/bench_refine.py [--sizes 1000000 10000000] [--tau 0.1]
Prints wall time (best of --repeat) and peak traced memory per size.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from refinedlr.refinement import refine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--tau", type=float, default=0.1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    for n in args.sizes:
        t = np.arange(n)
        norms = 1 + 9 * np.exp(-t / (0.05 * n)) + 0.2 * rng.random(n)
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            s = refine(norms, tau=args.tau)
            best = min(best, time.perf_counter() - start)
        tracemalloc.start()
        refine(norms, tau=args.tau)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert s.values.shape == (n,)
        print(
            f"T={n:>10,d} tau={args.tau}: {best:6.3f} s (best of {args.repeat}); "
            f"peak extra memory {peak / 2**20:7.1f} MiB = {peak / (8 * n):.1f} float64 per step"
        )


if __name__ == "__main__":
    main()
