"""`refinedlr demo` end to end (quick mode) and its pieces."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from refinedlr.plan import transfer_lr  # noqa: E402
from refinedlr.records import read_record  # noqa: E402
from refinedlr.registry import get_schedule  # noqa: E402

from refinedlr_demo.workflow import (  # noqa: E402
    ARMS,
    PLANS,
    SCHEDULES,
    DemoConfig,
    load_digits_split,
    steps_per_run,
    train_one,
)


def test_data_splits_are_disjoint_and_fixed() -> None:
    a = load_digits_split()
    b = load_digits_split()
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    n_train, n_val, n_test = a[0].shape[0], a[2].shape[0], a[4].shape[0]
    assert n_train + n_val + n_test == 1797
    flat = [t.reshape(t.shape[0], -1) for t in (a[0], a[2], a[4])]
    rows = {tuple(r.tolist()) for r in flat[0]}
    assert not any(tuple(r.tolist()) in rows for r in flat[2])  # no test image in training


@pytest.mark.parametrize("arm", ARMS, ids=lambda a: a.name)
def test_training_run_records_one_row_per_step(arm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = load_digits_split()
    cfg = DemoConfig(epochs=1, seeds=1)
    T = steps_per_run(data, cfg)
    lr = arm.lrs[1]
    run = train_one(arm, get_schedule("linear", T), lr, 0, data, cfg, tmp_path / "n.csv")
    rec = read_record(tmp_path / "n.csv")
    assert len(rec) == T and list(rec.steps) == list(range(T)) and rec.kinds == arm.kinds
    for k in arm.kinds:
        assert np.all(np.isfinite(rec.norms(k))) and np.all(rec.norms(k) > 0)
    assert 0.0 < run.train_loss < 2.5 and 0.0 < run.val_loss < 2.5 and run.test_acc > 0.3
    again = train_one(arm, get_schedule("linear", T), lr, 0, data, cfg, None)
    assert again.val_loss == pytest.approx(run.val_loss, rel=1e-5)  # seeded: reproducible


@pytest.mark.slow
def test_demo_quick_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "refinedlr.cli",
            "demo",
            "--quick",
            "--no-progress",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "| schedule | best LR | final train loss | validation loss | test accuracy |" in r.stdout
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    plan_names = {f"{name} (plan)" for name in PLANS}
    assert {row["schedule"] for row in rows} == set(SCHEDULES) | plan_names
    assert {row["arm"] for row in rows} == {a.name for a in ARMS}
    checks = sum(len(m) for _, m in PLANS.values())
    assert len(rows) == len(ARMS) * (len(SCHEDULES) * 2 + checks)  # 2 LRs x 1 seed when quick
    assert all(np.isfinite(float(row["val_loss"])) for row in rows)
    table = (out / "table.md").read_text()
    for arm in ARMS:
        name = arm.name.lower()
        assert (out / f"{name}_norms_and_schedules.png").stat().st_size > 10_000
        assert f"## {arm.name}" in table
        # the printed verify command reproduces the demo's decision from the files it wrote
        line = next(x for x in table.splitlines() if f"{name}_run1.csv" in x)
        cmd = line.split("`")[1].split()[1:]
        assert cmd[0] == "verify"
        v = subprocess.run(
            [sys.executable, "-m", "refinedlr.cli", *cmd[:-1], str(tmp_path / f"{name}.json")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert v.returncode == 0, v.stderr
        decision = next(x for x in v.stdout.splitlines() if "decision:" in x).split("decision: ")[1]
        assert f"**decision: {decision}**" in table
    assert "Risk diagnosis:" in table and "| **verified** (= " in table
    # the planning step: each planned LR is transfer_lr's from linear decay's best LR, and ran
    for arm in ARMS:
        assert (out / f"{arm.name.lower()}_plan.png").stat().st_size > 10_000
        linear = {float(r["lr"]): float(r["val_loss"]) for r in rows
                  if r["arm"] == arm.name and r["schedule"] == "linear"}  # fmt: skip
        best = min(linear, key=linear.__getitem__)
        section = table.split(f"## {arm.name}")[1]
        assert f"Planning from run 1's tuned LR {best:g}" in section
        for name, (factor, multiples) in PLANS.items():
            ran = sorted(float(r["lr"]) for r in rows
                         if r["arm"] == arm.name and r["schedule"] == f"{name} (plan)")  # fmt: skip
            steps = 33  # the quick demo's horizon: one epoch of 33 batches
            want = transfer_lr(
                best, get_schedule("linear", steps), get_schedule(name.split()[0], factor * steps)
            )
            assert ran == pytest.approx(sorted(want * m for m in multiples), rel=1e-12)
            assert f"| {name}, {factor * steps} steps | {want:.3g} |" in section


def test_the_progress_bar_counts_runs_as_they_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow group submitted first does not hold the bar: runs are counted as they finish."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from refinedlr_demo import workflow as demo

    release = threading.Event()

    def task(arm, name, schedule, lr, seed, cfg, path):  # type: ignore[no-untyped-def]
        if name == "linear":
            release.wait(10)  # the first group submitted finishes last
        return demo.Run(arm.name, name, lr, seed, 1.0, 1.0, 0.5, 0.0)

    monkeypatch.setattr(demo, "_task", task)
    counted: list[str] = []

    class Bar:
        def advance(self, run: demo.Run) -> None:
            counted.append(run.schedule)

    cfg = DemoConfig(seeds=2)
    arm = ARMS[0]
    with ThreadPoolExecutor(max_workers=4 * len(ARMS[0].lrs) * 2) as pool:
        runs = demo._Runs(pool, cfg, Bar())  # type: ignore[arg-type]
        runs.submit(arm, "linear", get_schedule("linear", 10), None)
        runs.submit(arm, "cosine", get_schedule("cosine", 10), None)
        finished = []
        while len(finished) < 1:
            finished += runs.finished_groups()
        assert finished == [(arm.name, "cosine")]  # counted while linear still runs
        assert counted == ["cosine"] * (2 * len(arm.lrs))
        release.set()
        while runs.pending:
            finished += runs.finished_groups()
        time.sleep(0)
    assert finished[-1] == (arm.name, "linear") and len(counted) == 4 * len(arm.lrs)
    assert [r.lr for r in runs.group(arm, "linear")] == sorted(
        r.lr for r in runs.group(arm, "linear")
    )


def test_verify_follows_the_decision_rule_and_the_report_says_so(tmp_path: Path) -> None:
    """Issue 18's SGD arm: a loss difference within the seed spread and a bound ratio inside the
    tie band: a tie, so linear decay, and the report names what decided."""
    from refinedlr.records import GradNormRecord
    from refinedlr.refinement import refine_details

    from refinedlr_demo.workflow import ArmOutcome, FirstRun, Run, _arm_report, verify_run2

    arm = ARMS[0]
    T = 200
    t = np.arange(T)
    rng = np.random.default_rng(0)

    def record(seed: int) -> GradNormRecord:
        r = np.random.default_rng(seed)
        return GradNormRecord.from_arrays(
            {"l2": (1 + 0.3 * np.exp(-t / 10)) * r.uniform(0.9, 1.1, T)}
        )

    runs = []
    for name in SCHEDULES:
        for lr in arm.lrs:
            for seed in range(3):
                val = 0.40 + 0.004 * rng.standard_normal() + (0.0 if lr == arm.lrs[2] else 0.1)
                rec = (
                    record(seed + 10 * (name == "refined"))
                    if name in ("linear", "refined")
                    else None
                )
                runs.append(Run(arm.name, name, lr, seed, val, val, 0.9, 0.0, rec))
    run1 = GradNormRecord.from_arrays(
        {"l2": np.median([record(s).norms("l2") for s in range(3)], axis=0)}
    )
    details = refine_details(run1, tau=0.1)
    first = FirstRun(arm.lrs[2], run1, details, None)
    o: ArmOutcome = verify_run2(arm, first, runs, tmp_path)
    v = o.verification
    assert 0.95 < v.bound_ratio < 1 / 0.95
    assert v.decided_by == "tie" and not v.kept
    assert "--metric-spread" in o.verify_command
    text = "\n".join(_arm_report(o, DemoConfig()))
    assert (
        "- a tie (the metrics differ by no more than their seed spread; the bound ratio is inside its tie band); a tie goes to linear decay, the simpler schedule"
        in text
    )
    assert "- **decision: fall back to linear decay**" in text
    assert "the refined schedule rises from" in text or "the refined schedule starts" in text
    assert "implied warm-up" not in text
    assert "| **verified** (= linear) |" in text
    assert (
        "Test accuracy, on images no choice looked at: refined minus linear decay +0.0000" in text
    )


@pytest.mark.parametrize(
    "argv",
    [["--seeds", "0"], ["--epochs", "-1"], ["--arms", "Lion"], ["--seeds", "two"], ["--bogus"]],
)
def test_bad_options_are_one_line_and_exit_2_before_any_work(
    tmp_path: Path, argv: list[str]
) -> None:
    out = tmp_path / "demo"
    r = subprocess.run(
        [sys.executable, "-m", "refinedlr_demo", "--out", str(out), *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("refinedlr demo: error: ") and r.stderr.count("\n") == 1, r.stderr
    assert r.stdout == "" and not out.exists()
