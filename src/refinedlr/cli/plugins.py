"""Commands other packages add to ``refinedlr`` through the entry-point group
``refinedlr.commands``: each is a ``main(argv: list[str]) -> int``. The research suite adds
``bench`` and ``data``; without it those two commands say in one line how to get it."""

from __future__ import annotations

import argparse
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .common import MissingExtra, command

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


def _plugins() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}


def add_parsers(sub: Any, reserved: set[str]) -> None:
    """One sub-command per plugin (and for the research suite's commands, installed or not)."""
    plugins = {n: ep for n, ep in _plugins().items() if n not in reserved}
    for name in sorted({*_RESEARCH_COMMANDS, *plugins}):
        what = _RESEARCH_COMMANDS.get(name) or f"added by {plugins[name].value}"
        p = command(sub, name, _run, help=what, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER, help="the command's own arguments")


def _run(args: argparse.Namespace) -> int:
    ep = _plugins().get(args.command)
    if ep is None:
        raise MissingExtra(_RESEARCH_HINT.format(name=args.command))
    try:
        main = ep.load()
    except ImportError as exc:
        raise MissingExtra(f"'refinedlr {args.command}' cannot start: {exc}") from exc
    result: int = main(list(args.rest))
    return result
