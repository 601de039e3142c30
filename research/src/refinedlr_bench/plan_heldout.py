"""The held-out check of issue 17's "Done when", with the design frozen on the development data.

``OUT/heldout.json`` holds the held-out datasets (:data:`refinedlr_bench.plan_data.HELDOUT`) and,
once frozen, the design chosen on the 19 development datasets::

    {"datasets": [...], "design": {"transfer": "constant", "extend_family": "best",
     "extend_norms": "constant", "fit_from": 0.1, "frozen": "...", "why": "..."}}

:func:`run` measures exactly the issue's numbers on them: linear decay tuned at ``T`` predicts
the peak LR of cosine and WSD 1-sqrt at ``T`` and of linear decay at ``4 T`` (trained at that LR,
against each target's own tuned LR and against reusing the source's LR), and WSD 1-sqrt tuned
at ``T`` is extended from ``0.8 T`` to ``2 T`` by ``extend`` (against a fresh WSD 1-sqrt run
tuned at ``2 T`` and against continuing at the same LR).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from refinedlr_bench.convex import ConvexProtocol, load_data
from refinedlr_bench.plan_convex import Experiment, run_datasets
from refinedlr_bench.plan_data import load_heldout

__all__ = ["DESIGN_KEYS", "Frozen", "NotFrozen", "experiment", "read_frozen", "run"]

Log = Callable[[str], None]

#: What the frozen design must say.
DESIGN_KEYS = ("transfer", "extend_family", "extend_norms", "fit_from")

#: The held-out file, relative to the output folder.
HELDOUT_FILE = "heldout.json"

#: The design ``--quick`` uses (to exercise the code on a development dataset).
QUICK_DESIGN = {
    "transfer": "constant",
    "extend_family": "best",
    "extend_norms": "constant",
    "fit_from": 0.1,
}


class NotFrozen(ValueError):
    """The held-out file is missing or holds no frozen design."""


@dataclasses.dataclass(frozen=True)
class Frozen:
    datasets: tuple[str, ...]
    design: Mapping[str, Any]


def read_frozen(out: Path | None) -> Frozen:
    """The held-out datasets and frozen design from ``out/heldout.json`` (``None``: the quick
    stand-in, a development dataset with :data:`QUICK_DESIGN`)."""
    if out is None:
        return Frozen((), QUICK_DESIGN)
    path = out / HELDOUT_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise NotFrozen(f"{path}: cannot read the held-out list: {exc}") from None
    design = doc.get("design")
    if not isinstance(design, dict) or any(k not in design for k in DESIGN_KEYS):
        raise NotFrozen(
            f"{path}: the design is not frozen (it needs {', '.join(DESIGN_KEYS)}); "
            "make every choice on the development datasets first"
        )
    return Frozen(tuple(doc["datasets"]), design)


def experiment(design: Mapping[str, Any]) -> Experiment:
    """The held-out measurement under ``design``: the issue's targets and the reuse baseline."""
    return Experiment(
        targets=("cosine", "wsd-1sqrt"),
        horizons={"linear": (4.0,)},
        methods=(str(design["transfer"]), "reuse"),
        extension=("extend", *design.get("secondary", ()), "same-lr"),
        extend_family=str(design["extend_family"]),
        extend_norms=str(design["extend_norms"]),
        prediction=False,
    )


def run(
    out: Path,
    frozen: Frozen,
    protocol: ConvexProtocol,
    *,
    datasets: Sequence[str] | None = None,
    data_dir: str | None = None,
    log: Log | None = None,
) -> None:
    """Measure the held-out numbers (``datasets`` replaces the held-out list: ``--quick`` runs
    the code on a development dataset) and write ``heldout_*.csv``."""
    names = list(datasets) if datasets is not None else list(frozen.datasets)

    def load(name: str) -> Any:
        return load_data(name, data_dir) if datasets is not None else load_heldout(name, data_dir)

    outcome = run_datasets(
        names,
        protocol,
        experiment(frozen.design),
        load=load,
        cache_root=out / "cache" / "heldout",
        log=log,
    )
    outcome.write(out, "heldout_")
