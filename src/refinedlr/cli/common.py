"""What the commands share: errors, options, reading logs and schedules, refining a log, checking
and writing outputs. Bad input is one line naming the file and the problem (:class:`CLIError`,
exit status 2); outputs are checked before any work is done and written in one transaction per
command (:func:`refinedlr.fileio.transaction`): all of them or none.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import re
import stat
import sys
import warnings
from argparse import ArgumentTypeError
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from .. import limits
from ..bounds import BoundError
from ..decision import advice_before_run, bound_verdict
from ..fileio import after_commit, atomic_write
from ..plan import PlanError
from ..records import FORMATS, GradNormRecord, RecordError, read_record
from ..records.inputs import describe_mode, load_json, open_regular
from ..records.kinds import NormChoice, choose_norm
from ..records.record import brief, elide
from ..refinement import RefineError, Refinement, refine_details
from ..risk import RefinementRisk, refinement_risk
from ..schedule_io import SCHEDULE_SUFFIXES, load_schedule, save_schedule
from ..schedules import Schedule, ScheduleError
from ..summary import ScheduleSummary

#: Output file types of the figures (schedules: :data:`refinedlr.schedule_io.SCHEDULE_SUFFIXES`).
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")
#: Gradient norms outside this range cannot be scored: the bounds square the norms and the
#: refinement weights take their inverse squares, which overflow float64 beyond it.
NORM_RANGE = (1e-150, 1e150)
#: The longest error line, not counting the file it names first: a longer message keeps its start
#: (the file and the problem) and its end (the advice), and loses its middle.
LINE_WIDTH = 200
#: The library's refusals of bad input (exit status 2).
LIBRARY_ERRORS = (RecordError, RefineError, ScheduleError, BoundError, PlanError)
_PREAMBLE = re.compile(r"(?:[\w.-]+: (?:error|warning): )?")


def one_line(text: str, width: int = LINE_WIDTH) -> str:
    """``text`` on one line: the file (or option) it names first, up to ``": "``, then at most
    about ``width`` characters (a longer rest loses its middle).

    >>> one_line("a.csv: bad\\n  value " + "x" * 300 + " (use --column)", 60)
    'a.csv: bad value xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx ...  (use --column)'
    """
    line = " ".join(text.split())
    start = _PREAMBLE.match(line).end()  # type: ignore[union-attr]  # it matches ""
    colon = line.find(": ", start, start + 4100)
    keep = start if colon < 0 else colon + 2
    return line[:keep] + elide(line[keep:], width)


class CLIError(Exception):
    """Bad input: reported as one line on stderr, exit status 2."""


class MissingExtra(Exception):
    """An optional dependency is missing: one line naming the extra, exit status 3."""


class Parser(argparse.ArgumentParser):
    """argparse, reporting a bad argument as one line (with where to find help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, one_line(f"{self.prog}: error: {message} (see {self.prog} --help)") + "\n")


def require(module: str, what: str, extra: str) -> None:
    """Import ``module`` or raise :class:`MissingExtra`: one line naming the extra to install."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise MissingExtra(
            f"{what} needs {module.split('.')[0]}, which is not installed: "
            f"pip install 'refinedlr[{extra}]'"
        ) from None


@contextmanager
def step_limit(max_steps: int | None) -> Iterator[None]:
    """``--max-steps``: the one step limit, :data:`refinedlr.limits.MAX_STEPS`, for the duration
    of a command (the readers and the schedules read it when they check a size); restored after,
    for a caller that runs commands in its own process."""
    saved = limits.MAX_STEPS
    limits.MAX_STEPS = saved if max_steps is None else max_steps
    try:
        yield
    finally:
        limits.MAX_STEPS = saved


@contextmanager
def about(path: str | os.PathLike[str]) -> Iterator[None]:
    """Errors raised inside (a refusal of the norms, a schedule that cannot be scored) that do
    not name ``path`` are reported as ``path: problem``."""
    try:
        yield
    except LIBRARY_ERRORS as exc:
        if str(path) in str(exc):
            raise
        raise CLIError(f"{path}: {exc}") from None


def _check_norm_range(path: str, record: GradNormRecord) -> None:
    low, high = NORM_RANGE
    for kind, v in record.values.items():
        a = np.abs(v)
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(np.isfinite(a) & ((a > high) | ((a > 0) & (a < low))))
        if bad.size:
            i = int(bad[0])
            raise CLIError(
                f"{path}, step {int(record.steps[i])}: {kind} value {float(v[i]):g} is out of the "
                f"range a gradient norm can take here ({low:g} .. {high:g}: its square and inverse "
                f"square must stay finite); {bad.size} value(s) out of range. Is this column a "
                "gradient norm, and did the run diverge?"
            )


def read_log(path: str, args: argparse.Namespace) -> GradNormRecord:
    """Read a gradient-norm log with the command's ``--format``/``--column``/``--tag`` and
    ``--step-offset`` options (``--max-steps`` acts through :func:`step_limit`), refusing values
    no gradient norm can take; what the reader worked around is printed as warnings."""
    options = {k: getattr(args, k, None) for k in ("format", "column", "tag", "step_offset")}
    with collect_warnings():
        record = read_record(path, **options)
    _check_norm_range(path, record)
    return record


def is_schedule_file(text: str) -> bool:
    """Whether a schedule argument names a file (its suffix, or it exists) rather than a schedule."""
    try:
        return Path(text).suffix.lower() in SCHEDULE_SUFFIXES or Path(text).exists()
    except OSError:  # e.g. a name too long to be a file: then it is a schedule name
        return False


def read_schedule(path: str, total_steps: int | None = None) -> Schedule:
    """Load a schedule file; its horizon is checked against ``--max-steps`` before use."""
    p = Path(path)
    if not p.exists():
        raise CLIError(f"{path}: no such file")
    if not p.is_dir():
        open_regular(p).close()  # a named pipe or a device: refused, not waited on
    try:
        with about(path):
            schedule = load_schedule(p, total_steps=total_steps)
    except MemoryError:
        raise CLIError(
            f"{path}: too large to load (its header claims more data than fits in memory; a "
            "damaged file?)"
        ) from None
    if schedule.total_steps > limits.MAX_STEPS:
        raise CLIError(
            f"{path}: the schedule spans {schedule.total_steps:,} steps, more than the limit of "
            f"{limits.MAX_STEPS:,} (--max-steps raises it)"
        )
    return schedule


def check_output(
    path: str, *, inputs: Sequence[str | None] = (), suffixes: Sequence[str], option: str = "-o"
) -> Path:
    """Refuse an output path before any work is done: an unknown file type, a directory, a
    device or pipe, a read-only file, a path under a regular file, or one of the command's input
    files."""
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        choices = ", ".join(suffixes[:-1]) + f" or {suffixes[-1]}"
        raise CLIError(
            f"{path}: unknown output type {out.suffix or '(none)'!r} for {option}; use {choices}"
        )
    try:
        st = out.stat()
    except (FileNotFoundError, NotADirectoryError):  # (a parent that is a file: see below)
        st = None
    except OSError as exc:
        raise CLIError(f"{path}: cannot use as output: {exc.strerror or exc}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise CLIError(f"{path}: {describe_mode(st.st_mode)}; {option} needs a file name")
    if st is not None and not st.st_mode & 0o222:
        raise CLIError(
            f"{path}: a read-only file, which {option} never replaces; remove it, make it "
            f"writable (chmod u+w) or choose another {option}"
        )
    parent = next(q for q in out.absolute().parents if q.exists())  # (the root exists)
    if not parent.is_dir():
        raise CLIError(f"{path}: {parent} is a file, not a directory")
    for src in [Path(x) for x in inputs if x is not None and st is not None]:
        read = [src]  # a checkpoint or run directory: the files read from it
        if src.is_dir():
            read = [src / "trainer_state.json", *src.glob("events.out.tfevents.*")]
        if any(c.exists() and os.path.samefile(c, out) for c in read):
            raise CLIError(
                f"{path}: the output would overwrite an input file ({src}); choose another {option}"
            )
    return out


def check_outputs(
    args: argparse.Namespace, inputs: Sequence[str | None]
) -> tuple[Path | None, ...]:
    """Check the schedule (``-o``) and the figure (``--plot``, which needs matplotlib) to write."""
    outputs = [(args.output, SCHEDULE_SUFFIXES, "-o"), (args.plot, FIGURE_SUFFIXES, "--plot")]
    out, png = (
        check_output(x, inputs=inputs, suffixes=s, option=o) if x else None for x, s, o in outputs
    )
    if out is not None and png is not None and out.absolute() == png.absolute():
        raise CLIError(f"{png}: --plot and -o name the same file")
    if png is not None:
        require("matplotlib", "--plot", "plot")
    return out, png


@contextmanager
def _writing(out: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise CLIError(f"{out}: cannot write: {exc.strerror or exc}; nothing written") from None


def write_schedule(schedule: Schedule, out: Path, said: str = "") -> None:
    """Save a schedule (atomically, and with the command's other outputs: all or none); once they
    are all in place, print ``wrote OUT`` and what ``said`` adds."""
    with _writing(out):
        save_schedule(schedule, out)
    after_commit(lambda: print(f"wrote {out}{said}"))


def write_figure(fig: Any, out: Path) -> None:
    """Save a matplotlib figure, in the format its name says (atomically, and with the command's
    other outputs: all or none; ``wrote OUT`` once they are in place). A figure that cannot be
    drawn is an error naming the file."""
    try:
        with _writing(out), atomic_write(out, binary=True) as f:
            fig.savefig(f, format=out.suffix.lower().lstrip("."), dpi=120)
    except (ValueError, RuntimeError, OverflowError, MemoryError) as exc:
        what = brief(" ".join(str(exc).split()), 100)
        raise CLIError(
            f"{out}: cannot draw the figure ({type(exc).__name__}: {what}); nothing written"
        ) from None
    after_commit(lambda: print(f"wrote {out}"))


def _looks_like_schedule(path: Path) -> bool:
    suffix = path.suffix.lower()
    try:
        if suffix == ".json" and path.name != "trainer_state.json":
            with open_regular(path) as f:
                doc = load_json(path, f.read(limits.max_bytes() // 2 + 1).decode("utf-8"))
            return isinstance(doc, dict) and bool({"spec", "refinedlr_schedule", "name"} & set(doc))
        if suffix == ".csv":
            with open(path, encoding="utf-8") as f:
                return "multiplier" in f.readline(4096)
        if suffix == ".npy":  # a schedule peaks at 1 and ends below it
            a = np.load(path, allow_pickle=False, mmap_mode="r")
            if a.ndim != 1 or a.dtype.kind != "f" or not a.size:
                return False
            return bool(a.max() == 1.0 and a[-1] < 1.0)
    except (OSError, ValueError):  # (a RecordError or a UnicodeDecodeError is a ValueError)
        return False
    return False


def kind_of(path: str, forced: str | None) -> str:
    """``"schedule"`` or ``"log"``: ``forced`` (``--as``), else guessed from the file."""
    if forced:
        return forced
    p = Path(path)
    if not p.exists():
        raise CLIError(f"{path}: no such file")
    return "schedule" if p.is_file() and _looks_like_schedule(p) else "log"  # a pipe: a log


@contextmanager
def collect_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Catch the library's warnings and print each as one ``refinedlr: warning:`` line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    for w in caught:
        print(one_line(f"refinedlr: warning: {w.message}", 2 * LINE_WIDTH), file=sys.stderr)


def warn(text: str) -> None:
    """Print ``text`` as a ``refinedlr: warning:`` on stderr."""
    print(f"refinedlr: warning: {text}", file=sys.stderr)


def refine_log(
    path: str,
    record: GradNormRecord,
    args: argparse.Namespace,
    *,
    says: str = "norm: ",
    risk: bool = False,
    **kw: Any,
) -> tuple[Refinement, NormChoice, RefinementRisk | None]:
    """Refine the log ``path`` with the command's ``--norm``, ``--tau`` and ``--power`` (and
    ``kw``: ``total_steps``), printing the norm chosen (after ``says``) and what refinement warns
    about (with ``risk``, also :func:`refinedlr.risk.refinement_risk`); a refusal names ``path``."""
    choice = choose_norm(record.kinds, args.norm, meta=record.meta)
    print(f"{says}{choice.reason}")
    with about(path), collect_warnings():
        d = refine_details(
            record, tau=args.tau, norm=choice.norm, power=args.power, kind=choice.column, **kw
        )
        danger = refinement_risk(d.norms, norm=choice.norm) if risk else None
    if danger is not None:
        warn(danger.message())
    return d, choice, danger


def advise(summary: ScheduleSummary, *, risky: bool) -> None:
    """Print the advice before a run with the schedule ``summary`` describes."""
    if summary.bound_ratio_to_linear is not None:
        verdict = bound_verdict(summary.bound_ratio_to_linear, caveat=summary.bound_caveat)
        print(f"advice: {advice_before_run(verdict, risky=risky)}")


def command(
    sub: Any, name: str, run: Callable[[argparse.Namespace], int], help: str, **kw: Any
) -> argparse.ArgumentParser:
    """A sub-command ``name`` (``kw``: its parser's) that runs ``run(args)``."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help, **kw)
    p.set_defaults(func=run)
    return p


def _int(text: str) -> int:
    if len(text) > 30:
        raise ArgumentTypeError(f"not a whole number of at most 30 digits: {text[:20]!r}...")
    try:
        return int(text)
    except ValueError:
        raise ArgumentTypeError(f"not a whole number: {text!r}") from None


def positive_int(text: str) -> int:
    n = _int(text)
    if n < 1:
        raise ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def step_count(text: str) -> int:
    """A number of steps (``--max-steps``): at least 1, and not more than memory can hold
    (:func:`refinedlr.limits.steps_problem`)."""
    n = positive_int(text)
    if (problem := limits.steps_problem(n, limit=n)) is not None:
        raise ArgumentTypeError(problem)
    return n


def step_offset(text: str) -> int:
    """``--step-offset``: a whole number within the range of step numbers (+-2^53)."""
    n = _int(text)
    if abs(n) > 2**53:
        raise ArgumentTypeError(
            f"{n:,} is out of the range of step numbers (at most 2^53 either way)"
        )
    return n


def _finite_float(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(x):
        raise ArgumentTypeError(f"must be finite, got {text!r}")
    return x


def add_log_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reading the log")
    g.add_argument("--format", choices=list(FORMATS), help="log format (default: guessed)")
    g.add_argument("--column", help="column / key / metric holding the norm (CSV, JSONL, W&B)")
    g.add_argument("--tag", help="TensorBoard scalar tag (default: grad_norm or train/grad_norm)")
    g.add_argument(
        "--step-offset",
        type=step_offset,
        metavar="N",
        help="add N to every step as written in the log (default: the format's convention: -1 "
        "for trainer_state.json, -1 for a 1-based TensorBoard log, else 0)",
    )
    g.add_argument(
        "--max-steps",
        type=step_count,
        metavar="N",
        help=f"refuse logs and schedules spanning more than N steps (default {limits.MAX_STEPS:,}; "
        "the byte and line budgets of a log follow it); raise it if a run really was longer, up "
        "to what this machine's memory holds",
    )


def add_refine_options(p: argparse.ArgumentParser) -> None:
    """The refinement's options, then the log reader's (:func:`add_log_options`)."""
    g = p.add_argument_group("refinement")
    g.add_argument(
        "--tau",
        type=_finite_float,
        default=0.1,
        help="median-smoothing window as a fraction of the run (default 0.1; the paper used 0.1 "
        "for deep learning, 0.5 for convex problems)",
    )
    g.add_argument(
        "--norm",
        choices=["l2", "l1"],
        help="l2: SGD-type, weights norm^-2 (Algorithm 1); l1: Adam-type, weights norm^-1 "
        "(Algorithm 2). Default: the norm the log's column names (sched/gnorm_l1: l1), else l2, "
        "assumed; the output says which. The log's column of that name is used when present.",
    )
    g.add_argument(
        "--power", type=_finite_float, help="weights norm^-POWER instead (overrides --norm)"
    )
    add_log_options(p)
