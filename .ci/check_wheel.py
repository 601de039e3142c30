#!/usr/bin/env python3
"""Check that the library's wheel holds no module of the research suite or of the demo.

Usage: check_wheel.py WHEEL

Fails (exit 1, one line per finding) when the wheel holds a benchmark, study or dataset-fetching
module: a path with a part named like ``bench*``, ``study*``, ``dataset*`` or ``fetch*``, a module
that shells out to ``apt-get``/``dpkg``/``pip download`` or imports ``refinedlr_bench``, or an
entry point in the group ``refinedlr.commands`` (the research suite registers those). Exit 2 on a
file that is not a readable wheel.
"""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import PurePosixPath

FORBIDDEN_PART = re.compile(r"^(bench|benchmark|study|dataset|fetch|demo)", re.IGNORECASE)
FORBIDDEN_CODE = re.compile(
    r"apt-get|\bdpkg\b|pip['\"]?,?\s*['\"]?download|^\s*(from|import)\s+refinedlr_(bench|demo)",
    re.MULTILINE,
)


def findings(wheel: str) -> list[str]:
    """What makes ``wheel`` hold a part of the research suite (empty: nothing)."""
    out = []
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        if not any(n.endswith(".dist-info/WHEEL") for n in names):
            raise zipfile.BadZipFile("no .dist-info/WHEEL")
        for name in names:
            path = PurePosixPath(name)
            if path.parts[0].endswith((".dist-info", ".data")):
                if path.name == "entry_points.txt":
                    text = zf.read(name).decode("utf-8")
                    if "[refinedlr.commands]" in text:
                        out.append(
                            f"{name}: registers refinedlr.commands (the research suite's or the demo's)"
                        )
                continue
            stems = [p.split(".")[0] for p in path.parts]
            if any(FORBIDDEN_PART.match(s) for s in stems):
                out.append(f"{name}: a benchmark, study, dataset or demo module")
            elif path.suffix == ".py":
                m = FORBIDDEN_CODE.search(zf.read(name).decode("utf-8", "replace"))
                if m:
                    out.append(f"{name}: {m.group(0).strip()!r} (research-suite or demo code)")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: check_wheel.py WHEEL", file=sys.stderr)
        return 2
    try:
        found = findings(argv[0])
    except (OSError, zipfile.BadZipFile) as exc:
        print(f"check_wheel: {argv[0]}: not a readable wheel ({exc})", file=sys.stderr)
        return 2
    for line in found:
        print(f"check_wheel: {line}", file=sys.stderr)
    if found:
        return 1
    with zipfile.ZipFile(argv[0]) as zf:
        n = sum(1 for n in zf.namelist() if n.endswith(".py"))
    print(f"check_wheel: {argv[0]}: {n} modules, none of the research suite or the demo")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
