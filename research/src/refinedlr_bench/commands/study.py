"""``refinedlr bench study``: the command line of the refinement study (issue 7).

``convex`` tunes the study's arms (:mod:`refinedlr_bench.study_arms`) on the convex datasets of a
split (:mod:`refinedlr_bench.study_design`), ``deep`` runs the chosen methods on a deep task
(:mod:`refinedlr_bench.study_deep`), ``report`` writes the report
(:mod:`refinedlr_bench.study_report`).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from refinedlr.fileio import atomic_write

from refinedlr_bench.commands.convex import DEFAULT_OUT as CONVEX_OUT
from refinedlr_bench.commands.deep import DEFAULT_OUT as DEEP_OUT
from refinedlr_bench.convex import ConvexProtocol, load_data
from refinedlr_bench.cpu_kernels import pin_cpu_kernels
from refinedlr_bench.runlog import append_runlog
from refinedlr_bench.study_arms import STUDY_ARMS
from refinedlr_bench.study_convex import dumps, outcome_to_json, run_arms
from refinedlr_bench.study_deep import run_task
from refinedlr_bench.study_design import (
    DEEP_TASKS,
    DEV_DATASETS,
    HELDOUT_ARMS,
    HELDOUT_DATASETS,
)
from refinedlr_bench.study_diagnose import diagnose
from refinedlr_bench.study_report import write_report

__all__ = ["DEFAULT_OUT", "build_parser", "main"]

#: Where the study's results go by default (relative to the repository root).
DEFAULT_OUT = Path("research/results/refinement-study")


def _convex(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, args.threads))
    datasets = list(args.datasets or (DEV_DATASETS if args.split == "dev" else HELDOUT_DATASETS))
    arms = list(args.arms or (STUDY_ARMS if args.split == "dev" else HELDOUT_ARMS))
    unknown = [a for a in arms if a not in STUDY_ARMS]
    if unknown:
        print(
            f"refinedlr bench study: unknown arm(s) {unknown}; known: {list(STUDY_ARMS)}",
            file=sys.stderr,
        )
        return 2
    out: Path = args.out
    (out / "convex").mkdir(parents=True, exist_ok=True)
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / ".gitignore").write_text("*\n", encoding="utf-8")
    protocol = ConvexProtocol()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    for name in datasets:
        oc = run_arms(
            load_data(name, args.data_dir),
            protocol,
            arms=arms,
            cache_root=cache,
            fallback_root=args.convex_cache,
            log=log,
        )
        doc = outcome_to_json(oc, cache, args.convex_cache)
        doc["split"] = "dev" if name in DEV_DATASETS else "heldout"
        for key, arm_doc in doc["arms"].items():
            opt, arm = key.split("|", 1)
            dg = diagnose(oc, opt, arm)
            arm_doc["diagnosis"] = None if dg is None else dataclasses.asdict(dg)
        with atomic_write(out / "convex" / f"{name}.json") as fh:
            fh.write(dumps(doc))
        log(
            f"{name}: {oc.trained_runs} runs trained in {oc.train_seconds:.1f} s "
            f"({oc.seconds:.1f} s wall)"
        )
    entry = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": "refinedlr bench study " + shlex.join(args.argv),
        "seconds": round(time.perf_counter() - t0, 1),
        "datasets": datasets,
        "arms": arms,
    }
    append_runlog(out, entry)
    return 0


def _deep(args: argparse.Namespace) -> int:
    out: Path = args.out / "deep"
    out.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    run_task(
        args.task,
        out,
        suite=args.suite / args.task,
        data_dir=args.data_dir,
        threads=args.threads,
        pilot_only=args.pilot_only,
        log=log,
    )
    entry = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": "refinedlr bench study " + shlex.join(args.argv),
        "seconds": round(time.perf_counter() - t0, 1),
        "task": args.task,
    }
    append_runlog(args.out, entry)
    return 0


def _report(args: argparse.Namespace) -> int:
    path = write_report(args.out, plots=not args.no_plots, convex=args.convex, deep=args.deep)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``refinedlr bench study`` argument parser."""
    p = argparse.ArgumentParser(
        prog="refinedlr bench study",
        description="The refinement study (issue 7): candidates vs linear decay, dev/held-out.",
    )
    sub = p.add_subparsers(dest="part", required=True)
    c = sub.add_parser("convex", help="tune the arms on the convex datasets of a split")
    c.add_argument("--split", choices=("dev", "heldout"), default="dev")
    c.add_argument("--datasets", nargs="+", metavar="NAME", help="default: the split's datasets")
    c.add_argument(
        "--arms",
        nargs="+",
        metavar="ARM",
        help="default: every registered arm (dev), HELDOUT_ARMS (heldout)",
    )
    c.add_argument("--out", type=Path, default=DEFAULT_OUT)
    c.add_argument(
        "--convex-cache",
        type=Path,
        default=CONVEX_OUT / "cache",
        help="the convex suite's cache, read for runs it already made",
    )
    c.add_argument("--data-dir", help="dataset cache (default: $REFINEDLR_DATA or ~/.cache)")
    c.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    c.set_defaults(func=_convex)
    d = sub.add_parser("deep", help="the chosen methods on a deep task (after the deep suite)")
    d.add_argument("--task", choices=DEEP_TASKS, required=True)
    d.add_argument("--out", type=Path, default=DEFAULT_OUT)
    d.add_argument(
        "--suite",
        type=Path,
        default=DEEP_OUT,
        help="the deep suite's output (its cached runs are reused)",
    )
    d.add_argument("--data-dir", help="dataset cache (default: $REFINEDLR_DATA or ~/.cache)")
    d.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    d.add_argument("--pilot-only", action="store_true", help="only the short pilot runs")
    d.set_defaults(func=_deep)
    r = sub.add_parser("report", help="write report.md, summary.csv and the figures")
    r.add_argument("--out", type=Path, default=DEFAULT_OUT)
    r.add_argument("--no-plots", action="store_true", help="skip the figures")
    r.add_argument(
        "--convex",
        type=Path,
        default=Path("research/results/convex"),
        help="the convex suite's output (its summary.json supplies the other baselines; "
        "default research/results/convex)",
    )
    r.add_argument(
        "--deep",
        type=Path,
        default=Path("research/results/deep"),
        help="the deep suite's output (TASK/runs.csv supplies the other baselines of the deep "
        "tasks; default research/results/deep)",
    )
    r.set_defaults(func=_report)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``refinedlr bench study``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    pin_cpu_kernels()
    args = build_parser().parse_args(argv)
    args.argv = argv
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
