"""The ``refinedlr`` command line: one module per command, assembled here (reference:
docs/reference/cli.md). Exit status 0 on success, 2 on bad input (one line naming the file and the
problem), 3 when an optional dependency is missing; the commands that write files write all of
their outputs or none (:func:`refinedlr.fileio.transaction`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from ..fileio import transaction
from ..records.record import MissingExtraError
from . import plan, plot, plugins, refine, show, verify
from .common import LIBRARY_ERRORS, CLIError, MissingExtra, Parser, one_line, step_limit

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
  refinedlr verify run1/norms.csv run2/norms.csv --metric eval_loss -o next.json
  refinedlr plan --lr 3e-4 --from linear --steps 10000 --to wsd:decay=0.2 --to-steps 40000
  refinedlr show refined.json --norms runs/norms.csv
  refinedlr plot runs/norms.csv --baselines linear,cosine -o norms.png
  refinedlr demo --out demo-results
"""

_COMMANDS = (refine, verify, plan, show, plot)
#: The commands whose outputs are written in one transaction (not the plugins, the demo among them,
#: which read back what they write)
_TRANSACTIONAL = frozenset({"refine", "verify", "plan", "show", "plot"})


class _Failed(Exception):
    """A command's non-zero exit status, raised to leave its transaction: nothing is written."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (also used to generate the CLI reference)."""
    parser = Parser(
        prog="refinedlr",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"refinedlr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in _COMMANDS:
        command.add_parser(sub)
    plugins.add_parsers(sub, reserved=set(sub.choices))
    return parser


def _fail(exc: BaseException | str, status: int) -> int:
    print(one_line(f"refinedlr: error: {exc}"), file=sys.stderr)  # one line, whatever it holds
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    for stream in (sys.stdout, sys.stderr):  # a log's odd names never stop a report
        with contextlib.suppress(AttributeError, OSError, ValueError):
            getattr(stream, "reconfigure")(errors="backslashreplace")  # noqa: B009
    args = plugins.parse(build_parser(), sys.argv[1:] if argv is None else list(argv))
    func: Callable[[argparse.Namespace], int] = args.func
    outputs = transaction() if args.command in _TRANSACTIONAL else contextlib.nullcontext()
    try:
        with step_limit(getattr(args, "max_steps", None)), outputs:
            status = func(args)
            if status != 0:
                raise _Failed(status)
            return status
    except _Failed as failed:
        return int(failed.args[0])
    except (MissingExtra, MissingExtraError) as exc:
        return _fail(exc, 3)
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stdout = open(os.devnull, "w")  # silence the flush at exit
        return 0
    except (CLIError, *LIBRARY_ERRORS, OSError) as exc:  # OSError: a file unread or unwritten
        return _fail(exc, 2)
    except MemoryError:
        why = "is --max-steps higher than the run was long?"
        return _fail(f"out of memory: the input is too large for this machine ({why})", 2)
    except KeyboardInterrupt:
        print("refinedlr: interrupted", file=sys.stderr)
        return 130
