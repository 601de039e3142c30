"""``refinedlr bench study``: refinement that never loses to linear decay, and costs less.

Project issue 7. This module fixes the development / held-out split of the study *before any
study run*; the experiments are added below as the study proceeds.

The split is a seeded random permutation (``numpy.random.default_rng(SPLIT_SEED)``) of the
convex suite :data:`refinedlr_bench.data.DEFAULT_SUITE` in its listed order: the first
:data:`N_DEV` datasets are the development split (every method is chosen and tuned there), the
rest are held out and evaluated once. A second permutation of the deep tasks ``("image", "lm")``
from the same generator picks the development deep task; the other is held out.

>>> DEV_DATASETS
('dna', 'spam', 'satimage', 'breast_cancer', 'diabetes', 'wine', 'ionosphere', 'vowel', 'iris')
>>> HELDOUT_DATASETS
('letter', 'glass', 'credit-g', 'vehicle', 'vote', 'segment', 'musk', 'digits', 'shuttle', 'sonar')
>>> DEV_DEEP_TASK, HELDOUT_DEEP_TASK
('image', 'lm')
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from refinedlr_bench.data import DEFAULT_SUITE

__all__ = [
    "CHOSEN_CHEAP",
    "CHOSEN_METHOD",
    "DEEP_TASKS",
    "DEV_DATASETS",
    "DEV_DEEP_TASK",
    "HELDOUT_ARMS",
    "HELDOUT_DATASETS",
    "HELDOUT_DEEP_TASK",
    "N_DEV",
    "SPLIT_SEED",
    "main",
    "make_split",
]

#: Seed of the split (the issue number).
SPLIT_SEED = 7
#: Development datasets: at most half of the convex suite.
N_DEV = 9
DEEP_TASKS = ("image", "lm")


def make_split(
    datasets: tuple[str, ...] = DEFAULT_SUITE, seed: int = SPLIT_SEED, n_dev: int = N_DEV
) -> tuple[tuple[str, ...], tuple[str, ...], str, str]:
    """``(dev datasets, held-out datasets, dev deep task, held-out deep task)``."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(datasets))
    deep = rng.permutation(len(DEEP_TASKS))
    names = tuple(datasets[int(i)] for i in perm)
    return names[:n_dev], names[n_dev:], DEEP_TASKS[int(deep[0])], DEEP_TASKS[int(deep[1])]


DEV_DATASETS, HELDOUT_DATASETS, DEV_DEEP_TASK, HELDOUT_DEEP_TASK = make_split()

#: Chosen on the development split by :func:`~.study_stats.select_method` (fewest losses to
#: linear decay over Adam and SGD, then the mean log geometric-mean ratio; see
#: ``results/refinement-study/selection.md``): "refine, then verify" (``refined-verified``), and
#: among the pilot/prefix ("cheap") variants ``pilot-verified-0.1``.
CHOSEN_METHOD = "refined-verified"
CHOSEN_CHEAP = "pilot-verified-0.1"

#: The arms run once on the held-out split: the chosen methods (and the verification runs they
#: need), their unverified counterparts, and the references.
HELDOUT_ARMS: tuple[str, ...] = (
    "linear",
    "cosine",
    "refined-0.1",
    "refined-0.5",
    "pilot-0.1",
    "verify-linear",
    "verify-refined-0.1",
    "verify-refined-at-linear",
    "verify-linear-pilot-0.1",
    "verify-pilot-0.1",
)


# ----------------------------------------------------------------------------------------------
# the command


def _convex(args: argparse.Namespace) -> int:
    import torch

    from refinedlr_bench.convex import Protocol, load_data
    from refinedlr_bench.study_convex import ARMS, dumps, outcome_to_json, run_arms
    from refinedlr_bench.study_diagnose import diagnose

    torch.set_num_threads(max(1, args.threads))
    datasets = list(args.datasets or (DEV_DATASETS if args.split == "dev" else HELDOUT_DATASETS))
    arms = list(args.arms or (ARMS if args.split == "dev" else HELDOUT_ARMS))
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        print(f"refinedlr bench study: unknown arm(s) {unknown}; known: {list(ARMS)}")
        return 2
    out: Path = args.out
    (out / "convex").mkdir(parents=True, exist_ok=True)
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / ".gitignore").write_text("*\n", encoding="utf-8")
    protocol = Protocol()

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
        (out / "convex" / f"{name}.json").write_text(dumps(doc), encoding="utf-8")
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
    with (out / "runlog.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
    return 0


def _deep(args: argparse.Namespace) -> int:
    from refinedlr_bench.study_deep import run_task

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
    with (args.out / "runlog.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
    return 0


def _report(args: argparse.Namespace) -> int:
    from refinedlr_bench.study_report import write_report

    path = write_report(args.out, plots=not args.no_plots)
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
    c.add_argument("--out", type=Path, default=Path("results/refinement-study"))
    c.add_argument(
        "--convex-cache",
        type=Path,
        default=Path("results/convex/cache"),
        help="the convex suite's cache, read for runs it already made",
    )
    c.add_argument("--data-dir", help="dataset cache (default: $REFINEDLR_DATA or ~/.cache)")
    c.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    c.set_defaults(func=_convex)
    d = sub.add_parser("deep", help="the chosen methods on a deep task (after the deep suite)")
    d.add_argument("--task", choices=DEEP_TASKS, required=True)
    d.add_argument("--out", type=Path, default=Path("results/refinement-study"))
    d.add_argument(
        "--suite",
        type=Path,
        default=Path("results/deep"),
        help="the deep suite's output (its cached runs are reused)",
    )
    d.add_argument("--data-dir", help="dataset cache (default: $REFINEDLR_DATA or ~/.cache)")
    d.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    d.add_argument("--pilot-only", action="store_true", help="only the short pilot runs")
    d.set_defaults(func=_deep)
    r = sub.add_parser("report", help="write report.md, summary.csv and the figures")
    r.add_argument("--out", type=Path, default=Path("results/refinement-study"))
    r.add_argument("--no-plots", action="store_true", help="skip the figures")
    r.set_defaults(func=_report)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``refinedlr bench study``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
