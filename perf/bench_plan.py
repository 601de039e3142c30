"""Time planning on long horizons (issue 17: T = 10^6 in < 0.5 s, O(T)).

Run: .venv/bin/python perf/bench_plan.py [--sizes 100000 1000000 4000000] [--repeat 3]
For each horizon T it times, best of --repeat, on fresh schedule objects (so each schedule's
table of T multipliers is computed inside the timing): transfer_lr (linear decay at T to WSD with
a 20% 1-sqrt cooldown at T), the same with recorded norms (an array of T values), extend (WSD at
T/2, checkpoint at 0.4 T, to T; both families, both cooldown shapes) and predict (linear decay at
T, two candidates, 64 points). The time per million steps shows whether the cost is linear in T.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from refinedlr import Cosine, LinearDecay, WarmupStableDecay
from refinedlr.plan import extend, predict, transfer_lr


def _cases(T: int, norms: np.ndarray) -> dict[str, Callable[[], object]]:
    def wsd(n: int) -> WarmupStableDecay:
        return WarmupStableDecay(n, decay=0.2, decay_shape="1-sqrt")

    return {
        "transfer_lr": lambda: transfer_lr(3e-4, LinearDecay(T), wsd(T)),
        "transfer_lr, norms": lambda: transfer_lr(3e-4, LinearDecay(T), wsd(T), norms=norms),
        "extend": lambda: extend(wsd(T // 2), at_step=4 * T // 10, total_steps=T),
        "predict": lambda: predict(3e-4, LinearDecay(T), {"wsd": wsd(T), "cosine": Cosine(T)}),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 4_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    for T in args.sizes:
        norms = 1 + 9 * np.exp(-np.arange(T) / (0.05 * T)) + 0.2 * rng.random(T)
        for name, run in _cases(T, norms).items():
            best = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                run()
                best = min(best, time.perf_counter() - start)
            print(
                f"T={T:>10,d} {name:<20} {best:6.3f} s (best of {args.repeat}) "
                f"= {best / (T / 1e6):6.3f} s per million steps"
            )


if __name__ == "__main__":
    main()
