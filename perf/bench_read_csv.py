"""Time :func:`refinedlr.records.read_record` on 1,000,000-row CSV files (issue: each < 2 s).

Writes, in a temporary directory, a record in this library's own format (``step,l2,l1``), a
plain one-column file (a header ``grad_norm`` and 1e6 numbers), the same column without a
header, a TSV with a ``global_step`` column and a text column, and a CSV with one empty cell
(which takes the line-by-line parser; no time limit applies to those two), then reads each once
and prints the time. Run: ``python perf/bench_read_csv.py``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from refinedlr.records import read_record


def _write(path: Path, header: str | None, columns: list[np.ndarray], delimiter: str = ",") -> None:
    cols = [c.astype(str) if c.dtype.kind in "iuU" else np.char.mod("%.9g", c) for c in columns]
    body = cols[0]
    for c in cols[1:]:
        body = np.char.add(np.char.add(body, delimiter), c)
    with open(path, "w", encoding="utf-8") as f:
        if header is not None:
            f.write(header + "\n")
        f.write("\n".join(body.tolist()) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--budget", type=float, default=2.0, help="seconds allowed per file")
    args = ap.parse_args()
    n = args.rows
    rng = np.random.default_rng(0)
    steps = np.arange(n)
    l2 = 1.0 + 9.0 * np.exp(-steps / (n / 10)) + 0.1 * rng.random(n)
    l2[rng.choice(n, 50, replace=False)] = np.nan
    l1 = 30.0 * l2
    cases = {
        "own format step,l2,l1": ("own.csv", "step,l2,l1", [steps, l2, l1], ",", True),
        "one column with header": ("one.csv", "grad_norm", [l2], ",", True),
        "one column, no header": ("bare.txt", None, [l2], ",", True),
        "TSV with a text column": (
            "mixed.tsv",
            "global_step\trun\tgrad_norm",
            [steps, np.full(n, "a"), l2],
            "\t",
            False,
        ),
        "CSV with empty cells (line by line)": (
            "gaps.csv",
            "epoch,step,grad_norm",
            [np.zeros(n, dtype=np.int64), steps, np.where(steps == 7, "", np.char.mod("%.9g", l2))],
            ",",
            False,
        ),
    }
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for label, (name, header, cols, delim, required) in cases.items():
            path = Path(tmp) / name
            _write(path, header, cols, delim)
            t0 = time.perf_counter()
            rec = read_record(path)
            dt = time.perf_counter() - t0
            keep = rec.steps if len(rec) < n else slice(None)
            ok = len(rec) >= n - 1 and np.allclose(
                rec.values[rec.kinds[0]], l2[keep], rtol=1e-8, equal_nan=True
            )
            mark = "" if not required else (" ok" if dt < args.budget else " TOO SLOW")
            failed |= (required and dt >= args.budget) or not ok
            size = path.stat().st_size / 2**20
            print(f"{label:38s} {n:>9,d} rows {size:6.1f} MiB  {dt:6.3f} s{mark}")
            if not ok:
                print("   values read back differ from the values written")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
