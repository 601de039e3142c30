"""``refinedlr bench convex``: the command line of the convex suite (:mod:`refinedlr_bench.convex`).

Example (a tiny configuration; the real suite is ``refinedlr bench convex``)::

    main(["--quick", "--datasets", "iris", "--out", "/tmp/convex-quick"])
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from refinedlr_bench.convex import (
    DEFAULT_GRID,
    OPTIMIZERS,
    QUICK_SUITE,
    ConvexProtocol,
    load_data,
    run_suite,
    write_runs_csv,
)
from refinedlr_bench.convex_report import write_report
from refinedlr_bench.cpu_kernels import cpu_kernels, pin_cpu_kernels
from refinedlr_bench.data import DEFAULT_SUITE
from refinedlr_bench.grid import k_of, lr_of
from refinedlr_bench.machine import loadavg, machine_info
from refinedlr_bench.schedule_arms import CANDIDATE_ARMS, DEFAULT_ARMS, get_schedule_arm

__all__ = ["DEFAULT_OUT", "build_parser", "main", "protocol_from_args"]

#: Where the results go by default (relative to the working directory: the repository root).
DEFAULT_OUT = Path("research/results/convex")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="refinedlr bench convex",
        description=(
            "The paper's logistic-regression study: every schedule (constant, 1/t, 1/sqrt t, "
            "step, cosine, WSD, linear, refined, schedule-free; momentum, iterate averaging and "
            "schedule-free's parts on equal terms) at its own tuned LR, Adam and SGD, several "
            "seeds; final objective gap to f*, held-out accuracy, paired comparisons with "
            "linear decay, bounds vs practice. Writes runs.csv, report.md, summary.json and "
            "plots to --out; resumes from OUT/cache."
        ),
    )
    p.add_argument("--quick", action="store_true", help="a small, fast configuration (CI)")
    p.add_argument("--datasets", nargs="+", metavar="NAME", help="datasets (default: the suite)")
    p.add_argument("--optimizers", nargs="+", choices=OPTIMIZERS, default=list(OPTIMIZERS))
    p.add_argument(
        "--methods",
        nargs="+",
        metavar="NAME",
        help=f"schedule arms (default: {', '.join(DEFAULT_ARMS)}; more: {', '.join(CANDIDATE_ARMS)})",
    )
    p.add_argument("--seeds", type=int, help="number of data-order seeds (default 5; quick 3)")
    p.add_argument(
        "--out", type=Path, help=f"output directory (default {DEFAULT_OUT}; quick: a subfolder)"
    )
    p.add_argument("--epochs", type=int, help="the same number of epochs for every dataset")
    p.add_argument(
        "--step-budget",
        type=int,
        help="epochs = min(max-epochs, budget // steps per epoch) (default 30000; quick 600)",
    )
    p.add_argument("--max-epochs", type=int, help="default 100 (quick 20)")
    p.add_argument("--l2", type=float, default=1e-4, help="weight penalty lambda (default 1e-4)")
    for opt, (lo, hi) in DEFAULT_GRID.items():
        p.add_argument(
            f"--{opt}-lrs",
            nargs=2,
            type=float,
            metavar=("LO", "HI"),
            help=(
                f"first {opt} LR grid, the same for every schedule (default "
                f"{lr_of(lo):.3g} {lr_of(hi):.3g}; extended at an edge)"
            ),
        )
    p.add_argument(
        "--grid-step",
        type=int,
        help="first-grid spacing in half-octaves (default 2: a factor 2 between points)",
    )
    p.add_argument(
        "--fine-step",
        type=int,
        help=(
            "final spacing around the best LR in half-octaves (default 1: factor sqrt 2; "
            "quick 2: no refinement)"
        ),
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help=(
            "torch threads (default 1: a step is many small tensor operations, and extra "
            "threads slow it down badly when other processes share the cores)"
        ),
    )
    p.add_argument("--data-dir", help="dataset cache (default: $REFINEDLR_DATA or ~/.cache)")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def protocol_from_args(args: argparse.Namespace) -> ConvexProtocol:
    """The :class:`~refinedlr_bench.convex.ConvexProtocol` for parsed arguments (``--quick``
    changes the defaults)."""
    quick = bool(args.quick)
    n_seeds = args.seeds if args.seeds is not None else (3 if quick else 5)
    if n_seeds < 2:
        raise SystemExit("refinedlr bench convex: --seeds must be at least 2 (for intervals)")

    def pick(value: Any, full: Any, fast: Any) -> Any:
        return value if value is not None else (fast if quick else full)

    step = int(args.grid_step or 2)
    grids = []
    for opt, (lo, hi) in DEFAULT_GRID.items():
        given = getattr(args, f"{opt}_lrs", None)
        if given is not None:
            lo, hi = sorted(k_of(v) for v in given)
        elif quick:
            lo += 8  # quick: a narrower first grid (2^-8 .. 2 for Adam, 2^-4 .. 32 for SGD)
        grids.append((opt, lo, hi))
    if step < 1 or (args.fine_step is not None and not 1 <= args.fine_step <= step):
        raise SystemExit("refinedlr bench convex: need 1 <= --fine-step <= --grid-step")

    return ConvexProtocol(
        seeds=tuple(range(n_seeds)),
        l2=float(args.l2),
        epochs=args.epochs,
        step_budget=pick(args.step_budget, 30_000, 600),
        max_epochs=pick(args.max_epochs, 100, 20),
        grid=tuple(grids),
        grid_step=step,
        fine_step=pick(args.fine_step, 1, step),
        extend_points=2,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``refinedlr bench convex`` (returns the exit status)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    pin_cpu_kernels()
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    load_start = loadavg()
    protocol = protocol_from_args(args)
    if args.threads and args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.datasets:
        datasets = list(args.datasets)
    elif args.quick:
        datasets = list(QUICK_SUITE)
    else:
        datasets = list(DEFAULT_SUITE)
    methods = list(args.methods) if args.methods else list(DEFAULT_ARMS)
    for m in methods:
        try:
            get_schedule_arm(m)
        except KeyError as exc:
            print(f"refinedlr bench convex: {exc.args[0]}", file=sys.stderr)
            return 2
    out = (
        args.out if args.out is not None else (DEFAULT_OUT / "quick" if args.quick else DEFAULT_OUT)
    )
    for name in datasets:  # fail early, with one line, on a dataset that cannot be loaded
        try:
            load_data(name, args.data_dir)
        except Exception as exc:  # the dataset layer's errors say how to fetch the data
            msg = " ".join(str(exc).split()) or type(exc).__name__
            print(f"refinedlr bench convex: dataset {name!r}: {msg}", file=sys.stderr)
            return 2
    out.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    log(
        f"refinedlr bench convex: {len(datasets)} datasets, optimizers {' '.join(args.optimizers)}, "
        f"{len(protocol.seeds)} seeds -> {out}"
    )
    outcomes = run_suite(
        datasets,
        protocol,
        out=out,
        methods=methods,
        optimizers=args.optimizers,
        data_dir=args.data_dir,
        progress=not args.no_progress,
        log=log,
    )
    write_runs_csv(outcomes, out / "runs.csv", protocol.seeds)
    command = "refinedlr bench convex" + ("" if not argv else " " + shlex.join(argv))
    entry = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": command,
        "train_seconds": round(sum(oc.train_seconds for oc in outcomes), 1),
        "trained_runs": sum(oc.trained_runs for oc in outcomes),
        "datasets": [oc.name for oc in outcomes],
        "cores": os.cpu_count(),
        "cpu_kernels": cpu_kernels(),
        "load_start": load_start,
        "load_end": loadavg(),
    }
    write_report(
        outcomes,
        protocol,
        out=out,
        methods=methods,
        optimizers=args.optimizers,
        command=command,
        machine=machine_info(),
        started=t0,
        run_entry=entry,
        plots=not args.no_plots,
    )
    log(f"done in {time.perf_counter() - t0:.1f} s: {out / 'report.md'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
