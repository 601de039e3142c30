"""Plan the next run from the last-iterate bound (Schaipp et al. 2025): the peak LR of another
schedule or horizon from one you tuned (--to), or the rest of a run continued from a checkpoint
to a longer horizon (--at). Schedules are NAME[:KEY=VALUE,...] (e.g. linear, cosine,
wsd:decay=0.2,decay_shape=1-sqrt; a value is a number, true/false, numbers joined by / for a
sequence, or text) or schedule files (.json, .npy, .csv). See refinedlr.plan.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..plan import extension_options, predict
from ..records import read_record
from ..records.record import brief
from ..schedule_io import as_schedule
from ..schedules import Schedule
from .common import (
    CLIError,
    about,
    add_log_options,
    check_outputs,
    collect_warnings,
    command,
    is_schedule_file,
    positive_int,
    read_log,
    read_schedule,
    write_figure,
    write_schedule,
)

HELP = "the peak LR for another schedule or horizon, or a continued run, from the bound"
_EPILOG = """examples:
  refinedlr plan --lr 3e-4 --from linear --steps 10000 --to wsd:decay=0.2,decay_shape=1-sqrt --to-steps 40000
  refinedlr plan --lr 0.1 --from linear --steps 5000 --to cosine --to linear@20000 --norms run1/norms.csv --plot plan.png
  refinedlr plan --lr 3e-4 --from wsd:decay=0.2 --steps 10000 --at 8000 --to-steps 20000 -o longer.json"""


def _positive_lr(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(x) and x > 0.0):
        raise argparse.ArgumentTypeError(f"must be a positive finite learning rate, got {text!r}")
    return x


def add_parser(sub: Any) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    p = command(sub, "plan", run, HELP, description=__doc__, epilog=_EPILOG, formatter_class=raw)
    p.add_argument("--lr", type=_positive_lr, required=True, help="the peak LR tuned for --from")
    p.add_argument("--from", dest="source", required=True, metavar="SCHEDULE", help="its schedule")
    p.add_argument(
        "--steps", type=positive_int, help="its horizon (a schedule file's own if omitted)"
    )
    p.add_argument(
        "--to",
        action="append",
        default=[],
        metavar="SCHEDULE[@STEPS]",
        help="a schedule to plan for (repeatable); @STEPS gives its own horizon",
    )
    p.add_argument(
        "--to-steps",
        type=positive_int,
        help="the new horizon: of every --to without @STEPS (default: --from's), or of the run "
        "continued with --at",
    )
    p.add_argument(
        "--at",
        type=positive_int,
        metavar="STEP",
        help="continue the --from run from its checkpoint after STEP optimizer steps to "
        "--to-steps (no --to)",
    )
    p.add_argument(
        "--family",
        choices=["best", "rescale", "cooldown"],
        default="best",
        help="with --at: rescale (a new LR level, then a cooldown), cooldown (keep the LR in use: "
        "no re-warm-up) or best (default: the lower bound)",
    )
    p.add_argument(
        "--norms",
        metavar="LOG",
        help="the --from run's gradient-norm log (default: constant norms, the worst case)",
    )
    p.add_argument("--kind", help="which series of --norms to use (default: l2, or its only one)")
    p.add_argument(
        "--losses",
        metavar="LOG",
        help="the --from run's loss log: fits loss ~ C + M x bound and predicts each target's "
        "final loss",
    )
    p.add_argument("--loss-column", default="loss", help="the column of --losses (default: loss)")
    p.add_argument("-o", "--output", help="write the planned schedule (.json, .npy or .csv)")
    p.add_argument("--plot", metavar="PNG", help="write a figure of the LRs and predicted curves")
    add_log_options(p)


def _value(text: str) -> Any:
    """A schedule argument as written: a number, true/false, numbers joined by ``/`` (a sequence,
    e.g. ``milestones=0.5/0.75``), or else text."""
    words = {"true": True, "false": False, "none": None, "null": None}
    if text.lower() in words:
        return words[text.lower()]
    numbers: list[int | float] = []
    for part in text.split("/") if len(text) <= 1000 else [text]:
        for kind in (int, float):
            try:
                numbers.append(kind(part) if len(part) <= 30 else math.nan)
                break
            except ValueError:
                continue
        else:
            return text
    return tuple(numbers) if len(numbers) > 1 else numbers[0]


def parse_schedule(text: str, total_steps: int | None, what: str) -> Schedule:
    """``NAME[:KEY=VALUE,...]`` or a schedule file, on ``total_steps`` when given."""
    if is_schedule_file(text):
        schedule = read_schedule(text, total_steps=total_steps)
        if not np.any(schedule.preview() > 0.0):
            raise CLIError(f"{text}: the schedule is zero on every step; it trains nothing")
        return schedule
    name, _, rest = text.partition(":")
    kwargs: dict[str, Any] = {}
    for item in filter(None, (x.strip() for x in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise CLIError(
                f"{what} {brief(text)!r}: expected NAME:KEY=VALUE,..., got {brief(item)!r}"
            )
        kwargs[key.strip()] = _value(value.strip())
    if total_steps is None:
        raise CLIError(
            f"{what} {brief(text)!r}: a schedule given by name needs its horizon (--steps)"
        )
    try:
        return as_schedule(name.strip(), total_steps, **kwargs)
    except (TypeError, ValueError) as exc:
        raise CLIError(f"{what} {brief(text, 24)!r}: {exc}") from None


def _targets(args: argparse.Namespace, source: Schedule) -> dict[str, Schedule]:
    out: dict[str, Schedule] = {}
    for text in args.to:
        spec, at, steps = text.rpartition("@") if "@" in text else (text, "", "")
        horizon = args.to_steps or source.total_steps
        if at:
            try:
                horizon = positive_int(steps)
            except argparse.ArgumentTypeError as exc:
                raise CLIError(f"--to {brief(text)!r}: the horizon after @ {exc}") from None
        out[text] = parse_schedule(spec, horizon, "--to")
    return out


def _norms(args: argparse.Namespace, source: Schedule) -> Any:
    """The ``--norms`` record's series, checked against the horizon it must cover."""
    record = read_log(args.norms, args)
    if args.kind is not None and args.kind not in record.kinds:
        have = ", ".join(brief(k) for k in record.kinds[:6])
        raise CLIError(f"{args.norms}: no series {brief(args.kind)!r} (--kind); it has {have}")
    with about(args.norms):
        norms = record.norms(
            record.resolve_kind(args.kind or ("l2" if "l2" in record.kinds else None))
        )
    T = source.total_steps
    if len(norms) < (args.at or T) or (args.at is None and len(norms) != T):
        need = f"{T:,} (--from's horizon)" if args.at is None else f"{args.at:,} (--at)"
        raise CLIError(f"{args.norms}: {len(norms):,} steps of norms; the plan needs {need}")
    return norms


def run(args: argparse.Namespace) -> int:
    out, png = check_outputs(args, inputs=[args.norms, args.losses])
    if (args.at is None) == (not args.to):
        raise CLIError("give either --to SCHEDULE (transfer) or --at STEP (extend), not both")
    if out is not None and len(args.to) > 1:
        raise CLIError("-o writes one planned schedule: give a single --to")
    source = parse_schedule(args.source, args.steps, "--from")
    norms = _norms(args, source) if args.norms else None
    shown = {k: v for k, v in source.to_spec().items() if k not in _NOT_SHOWN}
    params = ", ".join(f"{k}={v}" for k, v in shown.items())
    print(
        f"source: {source.kind}{f' ({params})' if params else ''}, {source.total_steps:,} steps, "
        f"peak LR {args.lr:.4g} (tuned); norms: "
        + (f"{args.norms} ({len(norms):,} steps)" if norms is not None else _CONSTANT)
    )
    with collect_warnings():
        (_transfer if args.at is None else _extend)(args, source, norms, out, png)
    return 0


_CONSTANT = "constant (the bound's worst case; --norms LOG uses the run's record)"
_NOT_SHOWN = ("name", "total_steps", "values", "provenance", "base")


def _transfer(args: argparse.Namespace, source: Schedule, norms: Any, out: Any, png: Any) -> None:
    targets = _targets(args, source)
    losses = None
    if args.losses:
        losses = read_record(args.losses, column=args.loss_column).norms()
        if len(losses) != source.total_steps:
            raise CLIError(
                f"{args.losses}: {len(losses):,} steps of losses; the plan needs one per step of "
                f"--from ({source.total_steps:,})"
            )
    with about(args.source):
        p = predict(args.lr, source, targets, norms=norms, losses=losses)
    what = "final loss" if p.fit is not None else "final bound"
    print(
        f"{'target':<40} {'steps':>10} {'peak LR':>10} {'x source LR':>12} {what + ' vs source':>22}"
    )
    for c in p.candidates:
        print(
            f"{c.name:<40} {c.schedule.total_steps:>10,} {c.lr:>10.4g} "
            f"{c.lr / args.lr:>12.4g} {p.ratio(c):>22.4f}"
        )
    if p.fit is not None:
        finals = ", ".join(f"{c.name} {c.final:.4g}" for c in p.candidates)
        print(
            f"fit: loss ~ {p.fit[0]:.4g} + {p.fit[1]:.4g} x bound on {args.losses}; predicted "
            f"final loss: source {p.source.final:.4g}, {finals}"
        )
    else:
        print(
            "the bound ranks the targets; below 1, the bound expects a lower final loss than the "
            "source's (--losses LOG predicts losses)"
        )
    if out is not None:
        write_schedule(
            p.candidates[0].schedule, out, f": train it with peak LR {p.candidates[0].lr:.4g}"
        )
    _figure(p, png)


def _extend(args: argparse.Namespace, source: Schedule, norms: Any, out: Any, png: Any) -> None:
    if args.to_steps is None:
        raise CLIError("--at needs --to-steps: the new horizon of the continued run")
    families = ("rescale", "cooldown") if args.family == "best" else (args.family,)
    with about(args.source):
        options = extension_options(
            source, at_step=args.at, total_steps=args.to_steps, norms=norms, families=families
        )
    lr_in_use = args.lr * float(source(args.at - 1))
    print(f"continue from step {args.at:,} to {args.to_steps:,} steps; LR in use {lr_in_use:.4g}")
    print(
        f"  {'family':<9} {'cooldown':<8} {'LR after step ' + format(args.at, ','):>22} "
        f"{'cooldown steps':>15} {'bound vs fresh tuned run':>25}"
    )
    for i, o in enumerate(options):
        s = o.schedule
        print(
            f"{'*' if i == 0 else ' '} {o.family:<9} {s.cooldown_shape:<8} "
            f"{args.lr * s.level:>22.4g} {s.cooldown_steps:>15,} {o.bound_ratio:>25.4f}"
        )
    chosen = options[0].schedule
    print(
        f"chosen: {options[0].family}: hold LR {args.lr * chosen.level:.4g} from step {args.at:,}, "
        f"then a {chosen.cooldown_shape} cooldown over the last {chosen.cooldown_steps:,} steps "
        "(same base LR; the first steps are unchanged)"
    )
    if out is not None:
        loader = f'ScheduleLR(optimizer, load_schedule("{out}"))'
        write_schedule(
            chosen, out, f": resume the checkpoint with {loader}; it accepts this planned extension"
        )
    if png is not None:
        named = {f"{o.family} ({o.schedule.cooldown_shape})": o.schedule for o in options}
        _figure(predict(args.lr, source, named, norms=norms, carry="step", same_lr=True), png)


def _figure(p: Any, png: Path | None) -> None:
    if png is not None:
        from ..plot import plot_plan

        write_figure(plot_plan(p), png)
