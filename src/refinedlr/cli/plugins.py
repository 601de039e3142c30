"""Commands other packages add to ``refinedlr`` through the entry-point group
``refinedlr.commands``: each is a ``main(argv: list[str]) -> int``. The research suite adds
``bench`` and ``data``, the demo package ``demo``; without them those commands say in one line how
to get them."""

from __future__ import annotations

import argparse
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .common import MissingExtra, command

PLUGIN_GROUP = "refinedlr.commands"

#: The commands of the repository's other packages, listed (and explained when missing) whether or
#: not they are installed: name -> (help, how to get it)
_KNOWN = {
    "bench": (
        "benchmark suites: convex (logistic regression), deep (CNN, GPT), study "
        "(refinement variants vs linear decay)",
        "the research suite",
        "./research",
    ),
    "data": ("fetch and list the benchmark datasets", "the research suite", "./research"),
    "demo": (
        "the whole workflow on built-in data: run, refine, run again, verify, decide",
        "the demo, a package of its own (refinedlr-demo)",
        "./demo",
    ),
}
_HINT = (
    "'refinedlr {name}' is part of {what}, which is not installed: from a checkout of the "
    "refinedlr repository, pip install -e {where}"
)


def _plugins() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}


def add_parsers(sub: Any, reserved: set[str]) -> None:
    """One sub-command per plugin (and for the known ones of :data:`_KNOWN`, installed or not)."""
    plugins = {n: ep for n, ep in _plugins().items() if n not in reserved}
    for name in sorted({*_KNOWN, *plugins}):
        what = _KNOWN[name][0] if name in _KNOWN else f"added by {plugins[name].value}"
        p = command(sub, name, _run, help=what, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER, help="the command's own arguments")


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``parser.parse_args(argv)``, except that a plugin command's arguments go to it unparsed
    (argparse would take a leading ``--option`` of theirs for its own)."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = sub.choices.get(argv[0]) if argv else None
    if command is None or command.get_default("func") is not _run:
        return parser.parse_args(argv)
    args = parser.parse_args(argv[:1])
    args.rest = argv[1:]
    return args


def _run(args: argparse.Namespace) -> int:
    ep = _plugins().get(args.command)
    if ep is None:
        _, what, where = _KNOWN[args.command]
        raise MissingExtra(_HINT.format(name=args.command, what=what, where=where))
    try:
        main = ep.load()
    except ImportError as exc:
        raise MissingExtra(f"'refinedlr {args.command}' cannot start: {exc}") from exc
    result: int = main(list(args.rest))
    return result
