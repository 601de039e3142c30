"""``refinedlr bench plan``: the planning evidence of issue 17 (:mod:`refinedlr_bench.plan_convex`,
:mod:`refinedlr_bench.plan_deep`, :mod:`refinedlr_bench.plan_heldout`,
:mod:`refinedlr_bench.plan_report`).

One command makes the whole report; each part resumes from its cache under ``OUT/cache``, so a
rerun only rewrites the tables and the report. Parts, in order:

* ``convex``: the 19 development datasets (transfer across schedules and horizons, continued
  training, loss prediction); the convex suite's committed 1x sweeps are reused;
* ``deep``: the Fashion-MNIST CNN (horizons 1/2x and 2x, continued training) and the loss
  prediction on both deep tasks from their committed results;
* ``heldout``: the held-out datasets with the design frozen in ``OUT/heldout.json`` (refused while
  the design is not frozen);
* ``report``: ``report.md``, ``summary.json`` and the figures from the tables;
* ``extension`` (not in the default): the development part's continued training alone, retrained
  with the library as it is now; it rewrites ``extension.csv`` and the continuations' rows of
  ``runs.csv`` (for a change to :func:`refinedlr.plan.extend`).

``--quick`` (CI): the three scikit-learn datasets at the suite's quick protocol, a tiny CNN on
synthetic images, and the held-out part's code on a development dataset (never on held-out data),
written to ``OUT/quick``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from refinedlr_bench.convex import QUICK_SUITE, ConvexProtocol, load_data
from refinedlr_bench.cpu_kernels import pin_cpu_kernels
from refinedlr_bench.data import DEFAULT_SUITE
from refinedlr_bench.machine import loadavg, machine_info
from refinedlr_bench.runlog import append_runlog

__all__ = ["DEFAULT_OUT", "PARTS", "build_parser", "main"]

DEFAULT_OUT = Path("research/results/plan")
COMMITTED_CONVEX = Path("research/results/convex/runs.csv")
PARTS = ("convex", "deep", "heldout", "report", "extension")
DEFAULT_PARTS = ("convex", "deep", "heldout", "report")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="refinedlr bench plan",
        description=(
            "Planning from the last-iterate bound (refinedlr.plan), measured: LR transfer across "
            "schedules and horizons at the predicted LR itself, continued training with extend, "
            "loss prediction, and the held-out check. Writes CSV tables, report.md, "
            "summary.json and figures to --out; resumes from OUT/cache."
        ),
    )
    p.add_argument("--quick", action="store_true", help="a small, fast configuration (CI)")
    p.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=list(DEFAULT_PARTS),
        help=f"parts to run (default: {' '.join(DEFAULT_PARTS)})",
    )
    p.add_argument("--datasets", nargs="+", metavar="NAME", help="development datasets")
    p.add_argument("--out", type=Path, help=f"output folder (default {DEFAULT_OUT}; quick: /quick)")
    p.add_argument("--data-dir", help="dataset cache (default: $REFINEDLR_DATA or ~/.cache)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    return p


def quick_protocol() -> ConvexProtocol:
    """The convex suite's ``--quick`` protocol (3 seeds, 600-step budget, narrow grid, no
    sqrt(2) refinement)."""
    return ConvexProtocol(
        seeds=(0, 1, 2),
        step_budget=600,
        max_epochs=20,
        grid=(("adam", -16, 2), ("sgd", -8, 10)),
        fine_step=2,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``refinedlr bench plan`` (returns the exit status)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    pin_cpu_kernels()
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    load_start = loadavg()
    torch.set_num_threads(max(1, args.threads))
    out: Path = args.out or (DEFAULT_OUT / "quick" if args.quick else DEFAULT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    command = "refinedlr bench plan" + ("" if not argv else " " + shlex.join(argv))

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    from refinedlr_bench import plan_heldout, plan_report

    protocol = quick_protocol() if args.quick else ConvexProtocol()
    datasets = list(args.datasets or (QUICK_SUITE if args.quick else DEFAULT_SUITE))
    seconds: dict[str, float] = {}
    if "heldout" in args.parts:
        try:
            frozen = plan_heldout.read_frozen(out if not args.quick else None)
        except plan_heldout.NotFrozen as exc:
            print(f"refinedlr bench plan: {exc}", file=sys.stderr)
            return 2
    for part in args.parts:
        t_part = time.perf_counter()
        log(f"refinedlr bench plan: part {part} -> {out}")
        if part == "convex":
            from refinedlr_bench.plan_convex import Experiment, run_datasets

            outcome = run_datasets(
                datasets,
                protocol,
                Experiment(),
                load=lambda n: load_data(n, args.data_dir),
                cache_root=out / "cache" / "convex",
                committed=None if args.quick else COMMITTED_CONVEX,
                log=log,
            )
            outcome.write(out)
        elif part == "extension":
            from refinedlr_bench.plan_convex import EXTENSION_ONLY, replace_extension, run_datasets

            outcome = run_datasets(
                datasets,
                protocol,
                EXTENSION_ONLY,
                load=lambda n: load_data(n, args.data_dir),
                cache_root=out / "cache" / "convex",
                committed=None if args.quick else COMMITTED_CONVEX,
                log=log,
            )
            replace_extension(out, outcome)
        elif part == "deep":
            from refinedlr_bench import plan_deep

            plan_deep.run(out, quick=args.quick, data_dir=args.data_dir, log=log)
        elif part == "heldout":
            plan_heldout.run(
                out,
                frozen,
                protocol,
                datasets=QUICK_SUITE[1:2] if args.quick else None,
                data_dir=args.data_dir,
                log=log,
            )
        else:
            seconds["report"] = 0.0
        seconds[part] = round(time.perf_counter() - t_part, 1)
    entry = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": command,
        "parts": list(args.parts),
        "part_seconds": seconds,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "load_start": load_start,
        "load_end": loadavg(),
        "cores": machine_info()["cores"],
    }
    append_runlog(out, entry)
    if "report" in args.parts:
        plan_report.write_report(
            out, quick=args.quick, machine=machine_info(), plots=not args.no_plots
        )
    log(f"done in {time.perf_counter() - t0:.1f} s: {out / 'report.md'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
