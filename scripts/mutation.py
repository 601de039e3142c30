"""Mutation score of one library module (``scripts/mutation MODULE [TEST ...]``).

Runs mutmut (pinned in constraints.txt, installed by scripts/mutation) on ``src/refinedlr/MODULE.py``
against the module's own tests (:data:`TESTS`, or the test files given) and its doctests, in a
scratch copy of the project (``.mutation/MODULE/``), and prints

    MODULE: S% of N mutants killed (K killed, T timed out, U survived, X without tests) in W s

then the surviving mutants (``cd .mutation/MODULE && ../../.venv/bin/mutmut show NAME`` shows one).
Exit status 0, or 1 when the score is below ``--min`` (default 0: report only). Not part of every
CI run: it takes minutes per module.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The tests that describe each module (each also runs the module's doctests).
TESTS: dict[str, list[str]] = {
    "bounds": ["tests/test_bounds.py", "tests/test_core_contracts.py"],
    "refinement": ["tests/test_refine.py", "tests/test_core_contracts.py"],
    "schedules": [
        "tests/test_schedules_contracts.py",
        "tests/test_schedules.py",
        "tests/test_registry.py",
        "tests/test_core_contracts.py",
    ],
    "risk": ["tests/test_risk_contracts.py", "tests/test_verify.py"],
    "verify": [
        "tests/test_verify_contracts.py",
        "tests/test_verify.py",
        "tests/test_cli_verify.py",
    ],
    "plan": ["tests/test_plan.py", "tests/test_cli_plan.py", "tests/test_plan_contracts.py"],
}


def _config(module: str, tests: list[str]) -> str:
    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join(json.dumps(x) for x in items) + "]"

    return f"""
[tool.mutmut]
source_paths = ["src"]
only_mutate = ["src/refinedlr/{module}.py"]
pytest_add_cli_args_test_selection = {toml_list([*tests, f"src/refinedlr/{module}.py"])}
pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:randomly"]
use_git_change_detection = false
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("module", help="a module of src/refinedlr, e.g. bounds")
    parser.add_argument("tests", nargs="*", help="test files (default: the module's own)")
    parser.add_argument("--min", type=float, default=0.0, help="fail below this score (percent)")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    source = ROOT / "src" / "refinedlr" / f"{args.module}.py"
    if not source.is_file():
        parser.error(f"no module {source.relative_to(ROOT)}")
    tests = args.tests or TESTS.get(args.module) or [f"tests/test_{args.module}.py"]
    tests = [t for t in tests if (ROOT / t).exists()]
    if not tests:
        parser.error(f"no tests for {args.module}: name the test files")
    work = ROOT / ".mutation" / args.module
    shutil.rmtree(work, ignore_errors=True)
    (work / "tests").mkdir(parents=True)
    shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for t in [*tests, "tests/conftest.py"]:
        if (ROOT / t).exists():
            shutil.copy2(ROOT / t, work / t)
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    (work / "pyproject.toml").write_text(pyproject + _config(args.module, tests), encoding="utf-8")
    mutmut = [sys.executable, "-m", "mutmut"]
    env = {**os.environ, "HYPOTHESIS_PROFILE": "ci", "PYTHONDONTWRITEBYTECODE": "1"}
    t0 = time.monotonic()
    run = subprocess.run(
        [*mutmut, "run", "--max-children", str(args.max_children)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - t0
    if run.returncode != 0:
        sys.stderr.write(run.stdout[-3000:] + run.stderr[-3000:])
        print(f"scripts/mutation: mutmut run failed (status {run.returncode})", file=sys.stderr)
        return 2
    subprocess.run([*mutmut, "export-cicd-stats"], cwd=work, env=env, capture_output=True)
    stats = json.loads((work / "mutants" / "mutmut-cicd-stats.json").read_text())
    killed = stats["killed"] + stats["timeout"]
    total = stats["total"] - stats["skipped"]
    score = 100.0 * killed / total if total else 0.0
    print(
        f"{args.module}: {score:.1f}% of {total} mutants killed ({stats['killed']} killed, "
        f"{stats['timeout']} timed out, {stats['survived']} survived, {stats['no_tests']} without "
        f"tests, {stats['suspicious']} suspicious) in {seconds:.0f} s; tests: {' '.join(tests)}"
    )
    results = subprocess.run(
        [*mutmut, "results"], cwd=work, env=env, capture_output=True, text=True
    ).stdout
    survivors = [line.strip() for line in results.splitlines() if line.strip()]
    if survivors:
        print(
            f"surviving mutants ({len(survivors)}; `cd {work.relative_to(ROOT)} && "
            f"mutmut show NAME`):"
        )
        for line in survivors:
            print(f"  {line}")
    return 1 if score < args.min else 0


if __name__ == "__main__":
    sys.exit(main())
