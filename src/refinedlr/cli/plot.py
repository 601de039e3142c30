"""Plot logs (raw and smoothed norms, and their refined schedules) and schedule files on one
figure.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..registry import get_schedule
from ..schedules import Schedule
from . import common

HELP = "plot norms, smoothed norms and schedules (PNG)"


def add_parser(sub: Any) -> None:
    p = common.command(sub, "plot", run, HELP, description=__doc__)
    p.add_argument("paths", nargs="+", help="logs and/or schedule files")
    p.add_argument("-o", "--output", required=True, help="the figure to write (.png, .pdf or .svg)")
    p.add_argument(
        "--baselines", help="comma-separated schedule names to overlay, e.g. linear,cosine"
    )
    p.add_argument("--title")
    p.add_argument("--as", dest="as_", choices=["schedule", "log"], help="how to read the paths")
    common.add_refine_options(p)


def run(args: argparse.Namespace) -> int:
    out = common.check_output(args.output, inputs=args.paths, suffixes=common.FIGURE_SUFFIXES)
    common.require("matplotlib", "refinedlr plot", "plot")
    from ..plot import plot_norms_and_schedules

    norms: dict[str, Any] = {}
    schedules: dict[str, Schedule] = {}
    T = 2  # the baselines' horizon: the longest of the others
    for path in args.paths:
        name = Path(path).name
        if common.kind_of(path, args.as_) == "schedule":
            schedules[name] = s = common.read_schedule(path)
            T = max(T, s.total_steps)
            continue
        record = common.read_log(path, args)
        d, choice, _ = common.refine_log(path, record, args, says=f"{path}: norm ")
        norm = f"{choice.norm}{', assumed' if choice.assumed else ''}"
        norms[f"raw {name} ({norm})"] = d.norms
        norms[f"smoothed {name} (tau {args.tau})"] = d.smoothed
        schedules[f"refined {name} ({norm})"] = d.schedule
        T = max(T, d.norms.size)
    for b in [x.strip() for x in (args.baselines or "").split(",") if x.strip()]:
        schedules[b] = get_schedule(b, T)
    fig = plot_norms_and_schedules(norms, schedules, title=args.title)
    common.write_figure(fig, out)
    return 0
