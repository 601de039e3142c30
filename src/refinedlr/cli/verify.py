"""RUN1: the gradient-norm record of the linear-decay run the refined schedule was made from. RUN2:
the record of the run that used the refined schedule. Reports the last-iterate bound check (the
update_l2 column when both records have it, else l2) and, when given, the validation metric,
which then decides. Writes the chosen schedule to NEXT and prints the decision, why, and the
next run's command.
"""

from __future__ import annotations

import argparse
import math
import re
from typing import Any

import numpy as np

from ..fileio import after_commit
from ..records import GradNormRecord, RecordError, read_record
from ..schedule_io import SCHEDULE_SUFFIXES, as_schedule
from ..schedules import Schedule
from ..verify import VERIFY_THRESHOLD, verify_refinement
from . import common
from .common import CLIError, about, collect_warnings, read_log, read_schedule

#: Metric names taken as "higher is better" unless told otherwise.
_HIGHER = re.compile(r"acc|f1|bleu|rouge|auc|precision|recall|exact_match|score|map\b", re.I)


def higher_is_better(name: str) -> bool:
    """Guess the direction of a metric from its name (accuracy-like names: higher is better)."""
    return bool(_HIGHER.search(name))


def final_metric(path: str, name: str) -> float:
    """The last finite value of ``name`` in a log (a column, a JSON key, or a trainer_state key)."""
    record = read_record(path, column=name)
    kind = record.resolve_kind(name)
    values = record.values[kind]
    finite = values[np.isfinite(values)]
    if kind != name or finite.size == 0:
        raise RecordError(f"no value of the metric {name!r}", path=path)
    return float(finite[-1])


def refuse_same_record(
    path1: str, rec1: GradNormRecord, path2: str, rec2: GradNormRecord, what: str
) -> None:
    """Refuse two logs holding the same record (the same file twice, or a copy): the bound on
    the record a schedule was refined from favours it by construction, so it decides nothing."""
    same = rec1.kinds == rec2.kinds and np.array_equal(rec1.steps, rec2.steps)
    same = same and all(
        np.array_equal(rec1.values[k], rec2.values[k], equal_nan=True) for k in rec1.kinds
    )
    if same:
        raise CLIError(
            f"{path2}: the same record as {path1} (the same steps and norms): {what} needs the "
            "record of a second run, one that used the refined schedule"
        )


HELP = "decide between the refined schedule and linear decay after one run of each"


def add_parser(sub: Any) -> None:
    p = common.command(sub, "verify", run, HELP, description=__doc__)
    p.add_argument("run1", help="record of the linear-decay run (the refinement's source)")
    p.add_argument("run2", help="record of the run with the refined schedule")
    p.add_argument("-o", "--output", required=True, help="the chosen schedule (.json/.npy/.csv)")
    p.add_argument(
        "--schedule",
        metavar="FILE",
        help="the refined schedule run 2 used (default: refine RUN1 again with --tau/--norm)",
    )
    p.add_argument(
        "--source-schedule",
        metavar="FILE|NAME",
        default="linear",
        help="the schedule run 1 used, a schedule file or a name (default: linear, no warm-up); "
        "the bound check scores it, and it is the fallback",
    )
    g = p.add_argument_group("the metric (optional; it decides when given)")
    g.add_argument("--metric1", type=float, help="run 1's validation metric")
    g.add_argument("--metric2", type=float, help="run 2's validation metric")
    g.add_argument(
        "--metric-spread",
        type=float,
        metavar="SD",
        help="the metric's seed-to-seed standard deviation; a difference no larger is a tie "
        "(default: unknown, and the output says so)",
    )
    g.add_argument(
        "--metric",
        metavar="NAME",
        help="read the metric NAME (its last value) from both logs, e.g. eval_loss",
    )
    direction = g.add_mutually_exclusive_group()
    direction.add_argument("--higher-is-better", dest="higher", action="store_true", default=None)
    direction.add_argument("--lower-is-better", dest="higher", action="store_false")
    g = p.add_argument_group("the bound check")
    g.add_argument(
        "--check-kind", help="record column (default update_l2 if both have it, else l2)"
    )
    g.add_argument(
        "--threshold",
        type=float,
        default=VERIFY_THRESHOLD,
        help="the bound check favours the refined schedule below this ratio and linear decay "
        f"above its inverse; in between is a tie (default {VERIFY_THRESHOLD})",
    )
    common.add_refine_options(p)


def _metrics(args: argparse.Namespace, rec1: GradNormRecord) -> tuple[float | None, ...]:
    given = (args.metric1, args.metric2)
    if (given[0] is None) != (given[1] is None):
        raise CLIError("give both --metric1 and --metric2, or neither")
    if given[0] is not None and args.metric:
        raise CLIError("give --metric NAME or --metric1/--metric2, not both")
    for name, v in zip(("--metric1", "--metric2"), given, strict=True):
        if v is not None and not math.isfinite(v):
            raise CLIError(f"{name} must be a finite number, got {v}")
    name = args.metric
    if name is None and given[0] is None and rec1.meta.get("format") == "trainer_state":
        try:
            values = (final_metric(args.run1, "eval_loss"), final_metric(args.run2, "eval_loss"))
        except RecordError:
            return None, None, None
        print("verify: metric: eval_loss, read from both trainer_state.json files")
        return (*values, 0.0)
    if name is not None:
        values = (final_metric(args.run1, name), final_metric(args.run2, name))
        return (*values, 1.0 if higher_is_better(name) else 0.0)
    return given[0], given[1], None


def _source_schedule(spec: str, total_steps: int) -> Schedule:
    """Run 1's schedule: a schedule file, or a name (with its defaults) on run 1's horizon."""
    if common.is_schedule_file(spec):
        return read_schedule(spec, total_steps=total_steps)
    return as_schedule(spec, total_steps)


def run(args: argparse.Namespace) -> int:
    inputs = [args.run1, args.run2, args.schedule, args.source_schedule]
    out = common.check_output(args.output, inputs=inputs, suffixes=SCHEDULE_SUFFIXES)
    spread = args.metric_spread
    if spread is not None and not (math.isfinite(spread) and spread >= 0):
        raise CLIError(f"--metric-spread must be a number >= 0, got {spread}")
    rec1 = read_log(args.run1, args)
    rec2 = read_log(args.run2, args)
    refuse_same_record(args.run1, rec1, args.run2, rec2, "verify")
    if rec1.total_steps != rec2.total_steps:
        raise CLIError(
            f"{args.run1} has {rec1.total_steps} steps and {args.run2} {rec2.total_steps}: verify "
            "compares two runs of the same horizon"
        )
    print(f"run 1 (linear decay): {rec1.describe()}")
    print(f"run 2 (refined):      {rec2.describe()}")
    m1, m2, guessed_higher = _metrics(args, rec1)
    higher = args.higher if args.higher is not None else bool(guessed_higher)
    if args.schedule is not None:
        refined = read_schedule(args.schedule, total_steps=rec2.total_steps)
        if float(np.max(refined.preview())) <= 0:
            raise CLIError(f"{args.schedule}: the schedule is zero everywhere: no run used it")
        prov = getattr(refined, "provenance", None) or {}
        norm = args.norm or str(prov.get("norm", "")) or None
        origin = f"{args.schedule}, on run 2's {rec2.total_steps} steps"
        if norm:
            origin += f", refined with {norm} norms"
    else:
        d, choice, _ = common.refine_log(
            args.run1, rec1, args, says="verify: norm: ", total_steps=rec2.total_steps
        )
        refined, norm = d.schedule, choice.norm
        origin = f"refined again from run 1 (tau {args.tau}, {norm} norms)"
    print(f"verify: refined schedule: {origin}")
    source = _source_schedule(args.source_schedule, rec1.total_steps)
    with about(args.run2), collect_warnings():
        v = verify_refinement(
            refined,
            rec2,
            rec1,
            source_schedule=source,
            threshold=args.threshold,
            kind=args.check_kind,
            source_metric=m1,
            refined_metric=m2,
            higher_is_better=higher,
            metric_spread=spread,
            adam_type=norm == "l1",
        )
    if norm == "l1" and not str(v.kind).startswith("update"):
        common.warn(
            f"the bound check uses the gradient's norms (column {v.kind!r}) of an Adam-type run "
            "(refined with l1 norms): they did not predict the outcome there, so the bound check "
            "cannot decide; record the update direction too "
            '(GradNormRecorder(kinds=("l1", "update_l2"))), and give the metric '
            "(--metric1/--metric2)"
        )
    for line in v.reasons():
        print(f"verify: {line}")
    print(f"verify: decision: {v.decision()}")
    T = v.schedule.total_steps
    which = "run 2's (the refined run's)" if v.kept else "run 1's (the linear-decay run's)"
    loader = f'ScheduleLR(optimizer, load_schedule("{out}", total_steps=T))'
    common.write_schedule(v.schedule, out, f" ({T} steps, fingerprint {v.schedule.fingerprint()})")
    after_commit(lambda: print(f"next run: {loader}, at {which} peak learning rate"))
    return 0
