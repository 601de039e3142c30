"""``refinedlr show PATH``: a readable summary of a schedule file or a gradient-norm log."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..refinement import refine_details
from ..registry import get_schedule
from ..risk import refinement_risk
from ..summary import summarize
from .common import (
    about,
    add_log_options,
    add_refine_options,
    collect_warnings,
    kind_of,
    read_log,
    read_schedule,
)

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "show",
        help="summarise a schedule or a log (peak, warm-up, bound vs linear decay)",
        description="Print a readable summary. For a schedule file: peak, implied warm-up, time "
        "above half peak, late LR mass (and with --norms the last-iterate bound relative to "
        "linear decay). For a log: its shape, and the schedule refinement would produce from it.",
    )
    p.add_argument("path", help="a schedule file (.json/.npy/.csv) or a gradient-norm log")
    p.add_argument("--norms", help="a gradient-norm log to score the schedule against")
    p.add_argument(
        "--as", dest="as_", choices=["schedule", "log"], help="how to read PATH (default: guessed)"
    )
    add_refine_options(p)
    add_log_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if kind_of(args.path, args.as_) == "schedule":
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
    with about(args.path):
        with collect_warnings():
            d = refine_details(record, tau=args.tau, norm=args.norm, power=args.power)
            risk = refinement_risk(d.norms, norm=args.norm)
        refined = summarize(d.schedule, d.norms, name="refined")
        r = summarize(get_schedule("cosine", d.norms.size), d.norms).bound_ratio_to_linear
    if risk is not None:
        print(f"refinedlr: warning: {risk.message()}", file=sys.stderr)
    print(f"refined with tau={args.tau}, norm={args.norm}:")
    print(refined)
    print(f"  for comparison : cosine has bound ratio {r:.4f} to linear decay on these norms")
    return 0


def _show_schedule(args: argparse.Namespace) -> int:
    schedule = read_schedule(args.path)
    norms = None
    if args.norms:
        rec = read_log(args.norms, args)
        with about(args.norms):
            norms = rec.norms(rec.resolve_kind(args.norm if args.norm in rec.kinds else None))
    with about(args.norms or args.path):
        summary = summarize(schedule, norms, name=f"{Path(args.path).name}:")
    print(summary)
    prov = getattr(schedule, "provenance", None)
    if prov:
        print("  provenance     : " + ", ".join(f"{k}={v}" for k, v in prov.items()))
    print(f"  fingerprint    : {schedule.fingerprint()}")
    return 0
