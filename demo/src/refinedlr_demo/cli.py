"""``refinedlr demo``: the library's command line finds this command through the entry-point group
``refinedlr.commands`` (:func:`main`); ``python -m refinedlr_demo`` runs it too. Needs PyTorch and
scikit-learn (the library's ``demo`` extra, which this package requires).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

HELP = "the whole workflow on built-in data: run, refine, run again, verify, decide"
DESCRIPTION = """\
The recommended workflow on scikit-learn's digits: train a small CNN with linear decay over an
LR sweep while recording gradient norms, refine, diagnose the risk, retrain with the refined
schedule at its own best LR, verify on a held-out validation split and with the bound check, and
print the decision beside cosine and step-wise baselines; then plan other schedules' LRs from the
tuned one and check them with a short sweep. Needs the demo extra (torch, scikit-learn,
matplotlib).
"""


def build_parser() -> argparse.ArgumentParser:
    """The command's parser (the library's CLI reference renders its help)."""
    from refinedlr.cli.common import Parser  # one-line errors, exit status 2

    p = Parser(prog="refinedlr demo", description=DESCRIPTION)
    p.add_argument("--out", default="refinedlr-demo", help="directory for the table and plots")
    p.add_argument("--seeds", type=int, help="seeds per configuration (default 3)")
    p.add_argument("--epochs", type=int, help="epochs per run (default 8)")
    p.add_argument("--quick", action="store_true", help="a tiny run for smoke tests")
    p.add_argument("--no-progress", action="store_true", help="do not show progress bars")
    p.add_argument(
        "--arms", nargs="+", metavar="ARM", help="optimizer arms to run (default: all: SGD AdamW)"
    )
    p.add_argument("--workers", type=int, help="parallel training processes (default: cores)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit status (3, with one line, when PyTorch or scikit-learn is
    missing)."""
    from refinedlr.cli.common import MissingExtra

    parser = build_parser()
    args = parser.parse_args(argv)
    missing = []
    for module, package in (("torch", "PyTorch"), ("sklearn", "scikit-learn")):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise MissingExtra(
            f"the demo needs PyTorch and scikit-learn ({' and '.join(missing)} not installed): "
            f"pip install 'refinedlr[demo]'"
        )
    from .workflow import configure, run_demo

    try:  # bad sizes or arm names: one line, exit status 2, before any work
        configure(args.quick, args.seeds, args.epochs, args.arms)
    except ValueError as exc:
        parser.error(str(exc))
    options = {k: getattr(args, k) for k in ("out", "seeds", "epochs", "quick", "workers", "arms")}
    run_demo(progress=not args.no_progress, **options)
    return 0
