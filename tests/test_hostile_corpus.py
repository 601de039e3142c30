"""The hostile corpus (tests/hostile/): every case in its own process under a memory cap
(``RLIMIT_AS``, 4 GiB) and a time limit, with the outcome it must have. One pytest test per case;
the counts by outcome and the worst case's peak memory are printed at the end of the run.

The runner (tests/hostile/runner.py) is started once for the selected cases; it forks a child
per case, so a crash, a hang or an exhaustion is attributed to its case.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent / "hostile"
sys.path.insert(0, str(HERE))

from cases import CASES  # noqa: E402
from corpus import FAILURES, GOOD_OUTCOMES  # noqa: E402

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or sys.platform != "linux", reason="the corpus forks (Linux)"
)

BY_ID = {c.id: c for c in CASES}


@pytest.fixture(scope="module")
def corpus(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Run the runner once, for the cases this session selected."""
    selected = [
        item.callspec.params["case_id"]
        for item in request.session.items
        if getattr(item, "module", None) is request.module and hasattr(item, "callspec")
    ]
    out = tmp_path_factory.mktemp("hostile") / "results.jsonl"
    cmd = [sys.executable, str(HERE / "runner.py"), "--out", str(out)]
    if len(selected) < len(CASES):
        cmd += ["--only", ",".join(selected)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    runner, results = lines[0]["runner"], {r["id"]: r for r in lines[1:]}
    summary = _summary(runner, results)
    request.config.refinedlr_hostile_summary = summary  # type: ignore[attr-defined]
    return {"runner": runner, "results": results, "summary": summary}


def _summary(runner: dict[str, Any], results: dict[str, Any]) -> list[str]:
    ran = [r for r in results.values() if r["outcome"] != "unavailable"]
    by_outcome = collections.Counter(r["outcome"] for r in ran)
    by_surface = collections.Counter(r["surface"] for r in ran)
    measured = [r for r in ran if r.get("peak_kb")]
    worst = max(measured, key=lambda r: r["peak_kb"]) if measured else None
    slowest = max(ran, key=lambda r: r.get("seconds") or 0) if ran else None
    lines = [
        f"hostile corpus: {len(ran)} cases ({', '.join(f'{k} {v}' for k, v in sorted(by_surface.items()))}), "
        f"each forked under RLIMIT_AS {runner['cap_bytes'] / 2**30:g} GiB and a {runner['timeout_s']:g} s limit",
        "  by outcome: "
        + ", ".join(
            f"{k} {by_outcome.get(k, 0)}" for k in (*GOOD_OUTCOMES, *FAILURES) if by_outcome.get(k)
        ),
    ]
    if worst is not None:
        lines.append(
            f"  peak memory (max RSS): worst {worst['peak_kb'] / 1024:.0f} MiB ({worst['id']}), "
            f"runner baseline {runner['baseline_kb'] / 1024:.0f} MiB (shared with every child)"
        )
    if slowest is not None:
        lines.append(f"  slowest case: {slowest['id']} ({slowest['seconds']:.1f} s)")
    unavailable = len(results) - len(ran)
    if unavailable:
        lines.append(f"  {unavailable} case(s) not run: an optional package is missing")
    return lines


@pytest.mark.parametrize("case_id", [c.id for c in CASES])
def test_hostile_case(case_id: str, corpus: dict[str, Any]) -> None:
    r = corpus["results"][case_id]
    if r["outcome"] == "unavailable":
        pytest.skip(r["detail"])
    expected = BY_ID[case_id].expected
    assert r["outcome"] in expected, (
        f"{case_id}: {r['outcome']} (expected {'/'.join(expected)}): {r['detail']}"
    )


def test_the_corpus_is_large_and_varied() -> None:
    assert len(CASES) >= 250
    surfaces = collections.Counter(c.surface for c in CASES)
    assert surfaces["cli"] >= 150 and surfaces["api"] >= 50 and surfaces["writer"] >= 30
    assert surfaces["recorder"] >= 5
    expected = collections.Counter(e for c in CASES for e in c.expected)
    assert expected["accepted"] >= 30 and expected["warned"] >= 8  # no over-refusal either
