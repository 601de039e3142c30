"""``refinedlr bench deep``: the command line of the deep suite (:mod:`refinedlr_bench.deep`).

Example (tiny, on synthetic data; the real suite is ``refinedlr bench deep --task image``)::

    main(["--task", "lm", "--quick", "--synthetic", "--steps", "20", "--out", "/tmp/deep"])
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from refinedlr_bench.cpu_kernels import cpu_kernels, pin_cpu_kernels
from refinedlr_bench.deep import (
    ALL_SCHEDULES,
    TASKS,
    TINY,
    DeepSuite,
    TaskSpec,
    measure_parallel,
    task_spec,
)
from refinedlr_bench.deep_report import read_verified, write_outputs
from refinedlr_bench.deep_train import DataSource, load_task_data
from refinedlr_bench.machine import loadavg, machine_info
from refinedlr_bench.runlog import append_runlog

__all__ = ["DEFAULT_OUT", "build_parser", "main", "spec_from_args"]

#: Where the results go by default (relative to the repository root): ``DEFAULT_OUT/TASK``.
DEFAULT_OUT = Path("research/results/deep")

#: The refinement study's deep results (its ``refined-verified`` decision per task).
STUDY_DEEP = Path("research/results/refinement-study/deep")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="refinedlr bench deep",
        description=(
            "Deep-learning evidence on CPU: a batch-norm CNN on Fashion-MNIST (SGD, l2 "
            "refinement) or a character-level GPT on Shakespeare (AdamW, l1 refinement); "
            "linear decay, cosine, warmup-stable-decay, step-wise (image) and the refined "
            "schedule, each at its own tuned peak LR, several seeds. Writes runs.csv, report.md, "
            "summary.json and PNG plots to --out; resumes from OUT/cache."
        ),
    )
    p.add_argument("--task", choices=TASKS, required=True)
    p.add_argument("--quick", action="store_true", help="a small configuration (CI, < 3 min)")
    p.add_argument(
        "--out",
        type=Path,
        help=f"output directory (default {DEFAULT_OUT}/TASK; quick: TASK/quick)",
    )
    p.add_argument("--workers", type=int, default=2, help="worker processes (0: in-process)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    p.add_argument("--data-path", help="a user file/folder in the dataset's format (loader path=)")
    p.add_argument(
        "--data-dir", help="refinedlr dataset cache (default $REFINEDLR_DATA or ~/.cache)"
    )
    p.add_argument("--steps", type=int, help="optimizer steps per run (overrides the preset)")
    p.add_argument("--base-lr", type=float, help="prior centre of the LR grid (j = 0)")
    p.add_argument("--seeds", type=int, help="seeds on the LR grid (default 2)")
    p.add_argument("--extra-seeds", type=int, help="more seeds at the chosen LR (default 1)")
    p.add_argument("--grid-points", type=int, help="first grid size, factor 2 apart (default 3)")
    p.add_argument("--max-extensions", type=int, help="edge extensions per grid (default 3)")
    p.add_argument("--schedules", nargs="+", choices=ALL_SCHEDULES, help="subset of schedules")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    p.add_argument("--synthetic", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # tests: tiny models
    p.add_argument(
        "--measure-parallel",
        type=int,
        metavar="STEPS",
        help="only time 2 processes x 1 thread against 1 process x 2 threads (two runs of STEPS "
        "steps each) and write OUT/parallel.json",
    )
    return p


def spec_from_args(args: argparse.Namespace) -> TaskSpec:
    """The :class:`TaskSpec` for parsed arguments."""
    spec = task_spec(args.task, quick=args.quick)
    config = spec.config
    if getattr(args, "tiny", False):
        config = dataclasses.replace(config, **TINY[args.task])
    if args.steps is not None:
        config = dataclasses.replace(config, steps=int(args.steps))
    proto = spec.protocol
    changes: dict[str, Any] = {}
    if args.base_lr is not None:
        changes["base_lr"] = float(args.base_lr)
    if args.seeds is not None:
        if args.seeds < 1:
            raise SystemExit("refinedlr bench deep: --seeds must be at least 1")
        changes["grid_seeds"] = tuple(range(args.seeds))
    n_grid = len(changes.get("grid_seeds", proto.grid_seeds))
    if args.extra_seeds is not None:
        changes["extra_seeds"] = tuple(range(n_grid, n_grid + args.extra_seeds))
    elif "grid_seeds" in changes:
        changes["extra_seeds"] = tuple(range(n_grid, n_grid + len(proto.extra_seeds)))
    if args.grid_points is not None:
        changes["grid_points"] = int(args.grid_points)
    if args.max_extensions is not None:
        changes["max_extensions"] = int(args.max_extensions)
    if args.schedules:
        wanted = list(dict.fromkeys(args.schedules))
        if "refined" in wanted and "linear" not in wanted:
            wanted.insert(0, "linear")
        changes["schedules"] = tuple(s for s in ALL_SCHEDULES if s in wanted)
    return dataclasses.replace(spec, config=config, protocol=dataclasses.replace(proto, **changes))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``refinedlr bench deep`` (returns the exit status)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    pin_cpu_kernels()
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    load_start = loadavg()
    spec = spec_from_args(args)
    out = args.out or DEFAULT_OUT / args.task / ("quick" if args.quick else "")
    source = DataSource(
        task=args.task, path=args.data_path, cache_dir=args.data_dir, synthetic=args.synthetic
    )

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        data = load_task_data(source, spec.config)
    except Exception as exc:  # the loaders' errors say how to fetch the data
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"refinedlr bench deep: {args.task} data: {msg}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    if args.measure_parallel:
        measure_parallel(spec, source, out, args.measure_parallel, log)
        return 0
    suite = DeepSuite(
        spec,
        out,
        source,
        data.fingerprint,
        workers=args.workers,
        threads=args.threads,
        log=log,
    )
    log(
        f"refinedlr bench deep --task {args.task}: {len(spec.protocol.schedules)} schedules, "
        f"{spec.steps} steps per run, grid seeds {list(spec.protocol.grid_seeds)}, extra seeds "
        f"{list(spec.protocol.extra_seeds)}, {args.workers} workers x {args.threads} threads "
        f"-> {out} (cache {suite.cache.name}, {len(suite.results)} cached runs)"
    )
    suite.run()
    wall = time.perf_counter() - t0
    command = "refinedlr bench deep " + shlex.join(argv)
    entry = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": command,
        "wall_seconds": round(wall, 1),
        "trained_runs": len(suite.trained),
        "train_seconds": round(sum(d["seconds"] for d in suite.trained), 1),
        "workers": args.workers,
        "threads": args.threads,
        "load_start": load_start,
        "load_end": loadavg(),
        "load_at_run_ends": suite.loads,
        "cpu_kernels": cpu_kernels(),
    }
    append_runlog(out, entry)
    verified = None
    if not (args.quick or args.tiny or args.synthetic or args.steps is not None):
        verified = read_verified(STUDY_DEEP / f"{args.task}.json")
    write_outputs(
        suite, data, out=out, machine=machine_info(), plots=not args.no_plots, verified=verified
    )
    log(
        f"done: {len(suite.trained)} runs trained in {wall:.1f} s -> {out / 'report.md'}"
        if suite.trained
        else f"done: everything came from the cache ({wall:.1f} s) -> {out / 'report.md'}"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
