"""Run the hostile corpus: every case in its own forked process, under a memory cap
(``RLIMIT_AS``) and a time limit, one JSON line of results per case.

    python tests/hostile/runner.py --out results.jsonl [--only ID,ID] [--cap-gib 4] [--timeout 30]

The libraries are imported once here (numpy, matplotlib, tensorboard, torch), then each case runs
in a child forked from this process: the child caps its address space before it makes its input,
so the peak memory (``ru_maxrss`` of the child, from ``wait4``), a crash, a hang (the child is
killed after ``--timeout`` seconds) or an exhaustion belongs to that case alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import signal
import stat
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # fork-safe BLAS
    os.environ.setdefault(_var, "1")
os.environ.setdefault("MPLBACKEND", "Agg")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))  # the tests directory: test_hostile_inputs' cases


def _preload() -> None:
    import numpy  # noqa: F401

    import refinedlr.cli

    for module in ("matplotlib.pyplot", "tensorboard.backend.event_processing.event_file_loader"):
        if importlib.util.find_spec(module.split(".")[0]) is not None:
            importlib.import_module(module)
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(1)
        import refinedlr.pytorch  # noqa: F401


def _rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def _available(needs: tuple[str, ...]) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in needs)


def _remove(d: Path) -> None:
    for p in [d, *d.rglob("*")]:  # a case may leave read-only files or directories
        if p.is_dir() and not p.is_symlink():
            os.chmod(p, stat.S_IRWXU)
    shutil.rmtree(d, ignore_errors=True)


def run_case(case: object, base: Path, cap: int, timeout: float) -> dict[str, object]:
    from corpus import Case, dump, run_in_child

    assert isinstance(case, Case)
    work = Path(tempfile.mkdtemp(prefix="case-", dir=base))
    result_file = work.parent / f"{work.name}.result"
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the case's own process
        code = 0
        try:
            os.setpgid(0, 0)
            resource.setrlimit(resource.RLIMIT_AS, (cap, resource.RLIM_INFINITY))
            try:
                result = run_in_child(case, work)
            except MemoryError:
                result = {"outcome": "memory", "detail": "MemoryError outside the case's run"}
            result_file.write_text(dump(result))
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    status, usage, timed_out = 0, None, False
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - t0 > timeout:
            timed_out = True
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _, status, usage = os.wait4(pid, 0)
            break
        time.sleep(0.01)
    seconds = time.monotonic() - t0
    try:  # whatever the case started in its process group goes with it
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    out: dict[str, object] = {"id": case.id, "surface": case.surface, "expect": case.expected}
    if timed_out:
        out.update(outcome="hang", detail=f"still running after {timeout:.0f} s")
    elif os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status)).name
        out.update(outcome="crash", detail=f"killed by {sig}")
    elif not result_file.exists():
        out.update(
            outcome="crash", detail=f"exited with status {os.WEXITSTATUS(status)}, no result"
        )
    else:
        r = json.loads(result_file.read_text())
        out.update(outcome=r["outcome"], detail=r.get("detail", ""))
    out.update(seconds=round(seconds, 3), peak_kb=usage.ru_maxrss if usage is not None else None)
    result_file.unlink(missing_ok=True)
    _remove(work)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="JSON lines of results")
    parser.add_argument("--only", help="comma-separated case ids (default: every case)")
    parser.add_argument("--cap-gib", type=float, default=4.0, help="RLIMIT_AS of each case")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per case")
    args = parser.parse_args(argv)
    _preload()
    from cases import CASES

    baseline = _rss_kb()  # what every child starts with (ru_maxrss would carry the parent's)
    only = set(args.only.split(",")) if args.only else None
    cap = int(args.cap_gib * 2**30)
    base = Path(tempfile.mkdtemp(prefix="refinedlr-hostile-"))
    try:
        with open(args.out, "w", encoding="utf-8") as out:
            header = {"baseline_kb": baseline, "cap_bytes": cap, "timeout_s": args.timeout}
            out.write(json.dumps({"runner": header}) + "\n")
            for case in CASES:
                if only is not None and case.id not in only:
                    continue
                if not _available(case.needs):
                    r: dict[str, object] = {"id": case.id, "outcome": "unavailable"}
                    r["detail"] = f"needs {', '.join(case.needs)}"
                else:
                    r = run_case(case, base, cap, args.timeout)
                out.write(json.dumps(r) + "\n")
                out.flush()
    finally:
        _remove(base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
