"""The held-out datasets: never part of the project's suites, and not run before the design is
frozen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refinedlr_bench import data
from refinedlr_bench.plan_data import HELDOUT
from refinedlr_bench.plan_heldout import DESIGN_KEYS, NotFrozen, experiment, read_frozen

RESULTS = Path(__file__).resolve().parents[1] / "results" / "plan"


def test_held_out_sets_are_not_the_suites_and_match_the_committed_list() -> None:
    doc = json.loads((RESULTS / "heldout.json").read_text())
    assert doc["datasets"] == list(HELDOUT)
    used = {s.members[0].rsplit("/", 1)[-1] for s in data._SPECS.values() if s.members}
    for name, spec in HELDOUT.items():
        assert name not in data.ALL_DATASETS
        assert spec.member.rsplit("/", 1)[-1] not in used, name


def test_held_out_part_refuses_an_unfrozen_design(tmp_path: Path) -> None:
    (tmp_path / "heldout.json").write_text(json.dumps({"datasets": ["x"], "design": None}))
    with pytest.raises(NotFrozen, match="not frozen"):
        read_frozen(tmp_path)
    with pytest.raises(NotFrozen, match="cannot read"):
        read_frozen(tmp_path / "nowhere")


def test_cli_exits_2_with_one_line_when_not_frozen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    from refinedlr_bench.commands.plan import main

    (tmp_path / "heldout.json").write_text(json.dumps({"datasets": ["x"], "design": None}))
    assert main(["--parts", "heldout", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not frozen" in err[0]


def test_experiment_measures_the_issues_targets() -> None:
    design = dict.fromkeys(DESIGN_KEYS, "x") | {"transfer": "constant", "extend_family": "best"}
    ex = experiment(design)
    assert ex.targets == ("cosine", "wsd-1sqrt") and dict(ex.horizons) == {"linear": (4.0,)}
    assert ex.methods == ("constant", "reuse") and ex.extension == ("extend", "same-lr")
    assert experiment(design | {"secondary": ["extend-cooldown"]}).extension == (
        "extend",
        "extend-cooldown",
        "same-lr",
    )
