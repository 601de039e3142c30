"""The held-out datasets of the planning evidence: classification sets the project never used.

Chosen before any planning experiment ran on them (``research/results/plan/heldout.json`` was
committed with this list first, then with the design frozen on the development datasets), from
the same Debian packages as the convex suite's data, but files the suite does not read:

========================  =====================================================  ============
name                      source (Debian package: file, target column)            rows x cols
========================  =====================================================  ============
ticdata                   r-cran-kernlab: ticdata.rda, CARAVAN (insurance)        9822 x 85
income                    r-cran-kernlab: income.rda, INCOME (9 brackets)         8993 x 13
promotergene              r-cran-kernlab: promotergene.rda, Class (+/-)           106 x 57
breastcancer-wisconsin    r-cran-mlbench: BreastCancer.rda, Class (Id dropped)    699 x 9
soybean                   r-cran-mlbench: Soybean.rda, Class (19 diseases)        683 x 35
unbalanced                weka: examples/unbalanced.arff, last column             856 x 32
breast-cancer-ljubljana   weka: examples/breast-cancer.arff, Class                286 x 9
========================  =====================================================  ============

(``breastcancer-wisconsin`` is Wolberg's original Wisconsin data, 9 cytology scores; the suite's
``breast_cancer`` is the later WDBC set, 30 image features of other patients.)

Encoding and split are the suite's (:mod:`refinedlr_bench.data`): factors one-hot encoded, the
fixed stratified 80/20 split with seed 0, missing values replaced by the training median,
standardised with training statistics. The ``.deb`` files are read from (or downloaded into) the
dataset cache's ``downloads`` folder; nothing is written to the suite's dataset cache.
"""

from __future__ import annotations

import dataclasses
import io
import warnings
from pathlib import Path

import numpy as np

from refinedlr_bench.convex import TabularData
from refinedlr_bench.data import resolve_cache_dir, standardize, stratified_split
from refinedlr_bench.datasets.formats import (
    default_arff_target,
    encode_columns,
    frame_to_columns,
    normalise_text,
    parse_arff_text,
)
from refinedlr_bench.datasets.sources import SourceSession, deb_members

__all__ = ["HELDOUT", "HeldoutSpec", "load_heldout"]

_KERNLAB = "usr/lib/R/site-library/kernlab/data/"
_MLBENCH = "usr/lib/R/site-library/mlbench/data/"
_WEKA = "usr/share/doc/weka/examples/"


@dataclasses.dataclass(frozen=True)
class HeldoutSpec:
    """Where a held-out dataset lives: Debian ``package``, ``member`` file, R object name (for
    ``.rda``), target column and dropped columns."""

    package: str
    member: str
    target: str = ""
    obj: str = ""
    drop: tuple[str, ...] = ()


HELDOUT: dict[str, HeldoutSpec] = {
    "ticdata": HeldoutSpec("r-cran-kernlab", f"{_KERNLAB}ticdata.rda", "CARAVAN", "ticdata"),
    "income": HeldoutSpec("r-cran-kernlab", f"{_KERNLAB}income.rda", "INCOME", "income"),
    "promotergene": HeldoutSpec(
        "r-cran-kernlab", f"{_KERNLAB}promotergene.rda", "Class", "promotergene"
    ),
    "breastcancer-wisconsin": HeldoutSpec(
        "r-cran-mlbench", f"{_MLBENCH}BreastCancer.rda", "Class", "BreastCancer", ("Id",)
    ),
    "soybean": HeldoutSpec("r-cran-mlbench", f"{_MLBENCH}Soybean.rda", "Class", "Soybean"),
    "unbalanced": HeldoutSpec("weka", f"{_WEKA}unbalanced.arff"),
    "breast-cancer-ljubljana": HeldoutSpec("weka", f"{_WEKA}breast-cancer.arff", "Class"),
}


def load_heldout(name: str, cache_dir: str | None = None) -> TabularData:
    """The held-out dataset ``name``, split and standardised as the convex suite's data."""
    spec = HELDOUT[name]
    downloads = resolve_cache_dir(cache_dir) / "downloads"
    deb = SourceSession(downloads).deb(spec.package)
    raw = deb_members(Path(deb), [spec.member])[spec.member]
    if spec.member.endswith(".rda"):
        import rdata

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Unknown encoding. Assumed ASCII."
            frame = rdata.read_rda(io.BytesIO(raw))[spec.obj]
        enc = encode_columns(frame_to_columns(frame), spec.target, spec.drop)
    else:
        columns = parse_arff_text(normalise_text(raw), Path(spec.member).name)
        enc = encode_columns(columns, spec.target or default_arff_target(columns), spec.drop)
    X = np.where(np.isinf(enc.X), np.nan, np.asarray(enc.X, dtype=np.float64))
    y = np.asarray(enc.y, dtype=np.int64)
    train, test = stratified_split(y, 0.2, seed=0)
    Xtr, Xte = X[train], X[test]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column
        fill = np.nanmedian(Xtr, axis=0)
    fill = np.where(np.isfinite(fill), fill, 0.0)
    for part in (Xtr, Xte):
        mask = np.isnan(part)
        part[mask] = np.broadcast_to(fill, part.shape)[mask]
    Xtr, Xte, *_ = standardize(Xtr, Xte)
    return TabularData(
        name,
        np.ascontiguousarray(Xtr),
        y[train],
        np.ascontiguousarray(Xte),
        y[test],
        int(y.max()) + 1,
    )
