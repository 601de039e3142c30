"""``refinedlr plot PATH... -o OUT.png``: norms, smoothed norms and schedules on one figure."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..records.kinds import choose_norm
from ..refinement import refine_details
from ..registry import get_schedule
from ..schedules import Schedule
from .common import (
    FIGURE_SUFFIXES,
    about,
    add_log_options,
    add_refine_options,
    check_output,
    collect_warnings,
    kind_of,
    read_log,
    read_schedule,
    require,
    write_figure,
)

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "plot",
        help="plot norms, smoothed norms and schedules (PNG)",
        description="Plot logs (raw and smoothed norms, and their refined schedules) and schedule "
        "files on one figure.",
    )
    p.add_argument("paths", nargs="+", help="logs and/or schedule files")
    p.add_argument("-o", "--output", required=True, help="the figure to write (.png, .pdf or .svg)")
    p.add_argument(
        "--baselines", help="comma-separated schedule names to overlay, e.g. linear,cosine"
    )
    p.add_argument("--title")
    p.add_argument("--as", dest="as_", choices=["schedule", "log"], help="how to read the paths")
    add_refine_options(p)
    add_log_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = check_output(args.output, inputs=args.paths, suffixes=FIGURE_SUFFIXES)
    require("matplotlib", "refinedlr plot", "plot")
    from ..plot import plot_norms_and_schedules

    norms: dict[str, Any] = {}
    schedules: dict[str, Schedule] = {}
    T = 0
    for path in args.paths:
        name = Path(path).name
        if kind_of(path, args.as_) == "schedule":
            s = read_schedule(path)
            schedules[name] = s
            T = max(T, s.total_steps)
            continue
        record = read_log(path, args)
        choice = choose_norm(record.kinds, args.norm, meta=record.meta)
        print(f"{path}: norm {choice.reason}")
        with about(path), collect_warnings():
            d = refine_details(
                record, tau=args.tau, norm=choice.norm, power=args.power, kind=choice.column
            )
        norm = f"{choice.norm}{', assumed' if choice.assumed else ''}"
        norms[f"raw {name} ({norm})"] = d.norms
        norms[f"smoothed {name} (tau {args.tau})"] = d.smoothed
        schedules[f"refined {name} ({norm})"] = d.schedule
        T = max(T, d.norms.size)
    for b in [x.strip() for x in (args.baselines or "").split(",") if x.strip()]:
        schedules[b] = get_schedule(b, max(T, 2))
    fig = plot_norms_and_schedules(norms, schedules, title=args.title)
    write_figure(fig, out)
    print(f"wrote {out}")
    return 0
