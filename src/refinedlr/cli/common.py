"""What the commands share: errors, reading logs, telling schedules from logs, option groups."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..records import FORMATS, GradNormRecord, read_record

__all__ = [
    "CLIError",
    "MissingExtra",
    "add_log_options",
    "add_refine_options",
    "collect_warnings",
    "kind_of",
    "read_log",
]


class CLIError(Exception):
    """Bad input: reported as one line on stderr, exit status 2."""


class MissingExtra(Exception):
    """An optional dependency is missing: one line naming the extra, exit status 3."""


def read_log(path: str, args: argparse.Namespace) -> GradNormRecord:
    """Read a gradient-norm log with the command's ``--format``/``--column``/``--tag`` options."""
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
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return False
        return isinstance(doc, dict) and (
            "spec" in doc or "refinedlr_schedule" in doc or "name" in doc
        )
    if suffix == ".csv":
        try:
            with open(path, encoding="utf-8") as f:
                header = f.readline()
        except (OSError, UnicodeDecodeError):
            return False
        return "multiplier" in header
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False, mmap_mode="r")
        except (OSError, ValueError):
            return False
        return bool(
            arr.ndim == 1
            and arr.dtype.kind == "f"
            and arr.size > 0
            and float(np.max(arr)) == 1.0
            and float(arr[-1]) < 1.0
        )
    return False


def kind_of(path: str, forced: str | None) -> str:
    """``"schedule"`` or ``"log"``: ``forced`` (``--as``), else guessed from the file."""
    if forced:
        return forced
    p = Path(path)
    if not p.exists():
        raise CLIError(f"{path}: no such file")
    return "schedule" if p.is_file() and _looks_like_schedule(p) else "log"


@contextmanager
def collect_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Catch the library's warnings and print each as one ``refinedlr: warning:`` line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    print_warnings(caught)


def print_warnings(caught: Sequence[warnings.WarningMessage]) -> None:
    for w in caught:
        print(f"refinedlr: warning: {w.message}", file=sys.stderr)


def add_log_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reading the log")
    g.add_argument("--format", choices=list(FORMATS), help="log format (default: guessed)")
    g.add_argument("--column", help="column / key / metric holding the norm (CSV, JSONL, W&B)")
    g.add_argument("--tag", help="TensorBoard scalar tag (default: grad_norm or train/grad_norm)")


def add_refine_options(p: argparse.ArgumentParser) -> None:
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
