"""Refine a gradient-norm log (one norm per optimizer step of a previous run, normally linear decay
at its best LR) into a schedule for the next run. Reads this library's CSV, plain CSV/TSV, .npy,
W&B CSV exports, JSON lines, Hugging Face trainer_state.json and TensorBoard event files.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import limits
from ..registry import get_schedule
from ..schedules import Schedule
from ..summary import summarize
from ..verify import VERIFY_THRESHOLD, verify_refinement
from . import common
from .common import CLIError, about, collect_warnings, read_log
from .verify import refuse_same_record

METHODS = ("paper", "verified")
HELP = "turn a gradient-norm log into a refined schedule"


def add_parser(sub: Any) -> None:
    p = common.command(sub, "refine", run, HELP, description=__doc__)
    p.add_argument("log", help="the gradient-norm log")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="schedule file: .json (spec and provenance), .npy (one multiplier per step) or .csv",
    )
    p.add_argument(
        "--steps",
        type=common.positive_int,
        help="horizon T of the next run if it differs from the log (resampled on t/T)",
    )
    p.add_argument("--plot", metavar="PNG", help="also write a figure of norms and schedule")
    g = p.add_argument_group("method")
    g.add_argument(
        "--method",
        choices=list(METHODS),
        default="paper",
        help="paper (default): the published algorithm. verified: refine, then verify with the "
        "norms of one run of the refined schedule (--check), as `refinedlr verify` does; keep it "
        "only if the last-iterate bound on its own norms beats linear decay's, else write linear "
        "decay",
    )
    g.add_argument(
        "--check",
        metavar="LOG",
        help="for --method verified: the norm log of a run with the paper's refined schedule",
    )
    g.add_argument(
        "--check-kind",
        help="column of both logs used for the check (default update_l2 when both have it, else l2)",
    )
    g.add_argument(
        "--verify-threshold",
        type=float,
        default=VERIFY_THRESHOLD,
        help=f"keep the refined schedule below this bound ratio (default {VERIFY_THRESHOLD})",
    )
    common.add_refine_options(p)


def run(args: argparse.Namespace) -> int:
    out, png = common.check_outputs(args, inputs=[args.log, args.check])
    assert out is not None  # (-o is required)
    if args.steps is not None and args.steps > limits.MAX_STEPS:
        raise CLIError(
            f"--steps {args.steps:,}: more than the limit of {limits.MAX_STEPS:,} steps "
            "(--max-steps raises it)"
        )
    record = read_log(args.log, args)
    print(record.describe())
    check = None
    if args.method == "verified":
        if not args.check:
            raise CLIError(
                "--method verified needs --check LOG: the norm log of a run that used the "
                "paper's refined schedule from this log"
            )
        check = read_log(args.check, args)
        refuse_same_record(args.log, record, args.check, check, "--method verified")
    elif args.check:
        raise CLIError("--check is only used with --method verified")
    d, choice, risk = common.refine_log(args.log, record, args, risk=True, total_steps=args.steps)
    schedule: Schedule = d.schedule
    if check is not None:
        with about(args.check), collect_warnings():
            v = verify_refinement(
                schedule,
                check,
                record,
                threshold=args.verify_threshold,
                kind=args.check_kind,
                adam_type=choice.norm == "l1",
            )
        for line in v.reasons():
            print(f"verify: {line}")
        print(f"verify: decision: {v.decision()}")
        schedule = v.schedule
    # everything is computed before anything is written: a refusal leaves no file behind
    with about(args.log):
        name = "refined" if schedule is d.schedule else "chosen"
        summary = summarize(schedule, d.norms, name=name)
    fig = None
    if png is not None:
        from ..plot import plot_refinement

        fig = plot_refinement(
            d,
            baselines={"linear decay": get_schedule("linear", d.norms.size)},
            title=f"{Path(args.log).name}: refinement",
        )
    said = f" ({schedule.total_steps} steps, fingerprint {schedule.fingerprint()})"
    common.write_schedule(schedule, out, said)
    print(summary)
    if check is None:
        common.advise(summary, risky=risk is not None)
    if png is not None:
        common.write_figure(fig, png)
    return 0
