"""Print a readable summary. For a schedule file: peak, implied warm-up, time above half peak, late
LR mass (and with --norms the last-iterate bound relative to linear decay). For a log: its
shape, and the schedule refinement would produce from it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ..decision import bound_verdict
from ..records.kinds import choose_norm, describe_kind
from ..registry import get_schedule
from ..summary import summarize
from . import common
from .common import about, read_log

HELP = "summarise a schedule or a log (peak, warm-up, bound vs linear decay)"


def add_parser(sub: Any) -> None:
    p = common.command(sub, "show", run, HELP, description=__doc__)
    p.add_argument("path", help="a schedule file (.json/.npy/.csv) or a gradient-norm log")
    p.add_argument("--norms", help="a gradient-norm log to score the schedule against")
    p.add_argument(
        "--as", dest="as_", choices=["schedule", "log"], help="how to read PATH (default: guessed)"
    )
    common.add_refine_options(p)


def run(args: argparse.Namespace) -> int:
    if common.kind_of(args.path, args.as_) == "schedule":
        return _show_schedule(args)
    record = read_log(args.path, args)
    print(record.describe())
    for k in record.kinds:
        v = record.values[k]
        finite = v[np.isfinite(v)]
        if finite.size:
            print(
                f"  {k}: first {finite[0]:.4g}, median {np.median(finite):.4g}, "
                f"last {finite[-1]:.4g}, min {finite.min():.4g}, max {finite.max():.4g}"
            )
    d, choice, risk = common.refine_log(args.path, record, args, risk=True)
    with about(args.path):
        refined = summarize(d.schedule, d.norms, name="refined")
        cosine = summarize(get_schedule("cosine", d.norms.size), d.norms)
    column = d.schedule.provenance.get("kind", choice.column)
    print(f"refined with tau={args.tau} and norm={choice.norm}, from {describe_kind(str(column))}:")
    print(refined)
    assert cosine.bound_ratio_to_linear is not None
    verdict = bound_verdict(cosine.bound_ratio_to_linear, caveat=cosine.bound_caveat)
    print(f"  for comparison : cosine, {verdict.text}")
    common.advise(refined, risky=risk is not None)
    return 0


def _show_schedule(args: argparse.Namespace) -> int:
    schedule = common.read_schedule(args.path)
    norms = None
    if args.norms:
        rec = read_log(args.norms, args)
        column = choose_norm(rec.kinds, args.norm, meta=rec.meta).column
        with about(args.norms):
            column = rec.resolve_kind(column)
            norms = rec.norms(column)
        print(f"norms: {describe_kind(column)} of {args.norms}")
    with about(args.path):
        summary = summarize(schedule, norms, name=f"{Path(args.path).name}:")
    print(summary)
    prov = getattr(schedule, "provenance", None)
    if prov:
        print("  provenance     : " + ", ".join(f"{k}={v}" for k, v in prov.items()))
    print(f"  fingerprint    : {schedule.fingerprint()}")
    return 0
