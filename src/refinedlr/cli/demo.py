"""The recommended workflow on scikit-learn's digits: train a small CNN with linear decay over an
LR sweep while recording gradient norms, refine, diagnose the risk, retrain with the refined
schedule at its own best LR, verify on a held-out validation split and with the bound check, and
print the decision beside cosine and step-wise baselines. Needs the demo extra (torch, scikit-
learn, matplotlib).
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from .common import MissingExtra, Options, command

HELP = "the whole workflow on built-in data: run, refine, run again, verify, decide"
_OPTIONS: Options = (
    (("--out",), {"default": "refinedlr-demo", "help": "directory for the table and plots"}),
    (("--seeds",), {"type": int, "help": "seeds per configuration (default 3)"}),
    (("--epochs",), {"type": int, "help": "epochs per run (default 8)"}),
    (("--quick",), {"action": "store_true", "help": "a tiny run for smoke tests"}),
    (("--no-progress",), {"action": "store_true", "help": "do not show progress bars"}),
    (
        ("--arms",),
        {"nargs": "+", "metavar": "ARM", "help": "optimizer arms to run (default: all: SGD AdamW)"},
    ),
    (("--workers",), {"type": int, "help": "parallel training processes (default: cores)"}),
)


def add_parser(sub: Any) -> None:
    command(sub, "demo", run, HELP, _OPTIONS, description=__doc__)


def run(args: argparse.Namespace) -> int:
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
    from ..demo import run_demo

    options = {k: getattr(args, k) for k in ("out", "seeds", "epochs", "quick", "workers", "arms")}
    run_demo(progress=not args.no_progress, **options)
    return 0
